"""`oxdeai serve`: the HTTP decision service (`oxdeai[serve]`). See docs/serve.md.

`models.py` the wire shapes (pydantic; the OpenAPI document is generated from them),
`keys.py` credentials to agent records, `log.py` the decision log, `metrics.py` the
Prometheus metrics, `service.py` one decision or completion end to end, `app.py` the
Starlette routes over it."""
