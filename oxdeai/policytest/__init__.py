"""`oxdeai test`: policy unit tests next to the policy, with rule coverage (docs/testing-policies.md).

`spec.py` the test file's shape, `run.py` running its cases through the engine,
`coverage.py` which rules, limits and effects the cases exercised, `report.py` the
text, JSON and JUnit reports."""
