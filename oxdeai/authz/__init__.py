"""Signed authorizations (`oxdeai[authz]`): an ALLOW as a JWT the executor checks on its
own (docs/receipts.md). `keys.py` signing and verification keys, `tokens.py` issuing,
`replay.py` the single-use record; the executor's side is `oxdeai.pep`."""
