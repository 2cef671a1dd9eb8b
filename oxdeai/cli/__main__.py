"""`python -m oxdeai.cli`: the same command line as `oxdeai`."""

from oxdeai.cli import main

main()
