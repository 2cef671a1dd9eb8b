"""The Starlette app: routes over a `Service`, and every failure as a JSON answer.

Contract: every answer is JSON with a clear status (the metrics text excepted): no or
an unknown credential is 401 and decides nothing; a body over `max_body` bytes is
413 (by its Content-Length, or as it streams in); malformed JSON or a body that does
not fit its schema is 400; an unexpected error is 500 `{"error": "internal error"}`
with no detail on the wire (the traceback goes to the service's stderr).
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oxdeai import __version__
from oxdeai.server.keys import Caller
from oxdeai.server.models import openapi
from oxdeai.server.service import Answer, Service, error

MAX_BODY = 64 * 1024  # bytes


def json_response(answer: Answer) -> Response:
    status, body = answer
    return Response(body, status_code=status, media_type="application/json")


class TooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(service: Service, max_body: int = MAX_BODY) -> Starlette:
    document = json.dumps(openapi(__version__)).encode()

    def authorized(request: Request) -> Caller | Answer:
        caller = service.keys.find(request.headers)
        if caller is None:
            service.metrics.rejected.labels("401").inc()
            return error(401, "give a known credential: `Authorization: Bearer KEY` or `X-API-Key: KEY`")
        return caller

    async def call(request: Request, handler: Any) -> Response:
        caller = authorized(request)
        if not isinstance(caller, Caller):
            return json_response(caller)
        try:
            raw = await read_body(request, max_body)
        except TooLarge:
            service.metrics.rejected.labels("413").inc()
            return json_response(error(413, f"the body is larger than {max_body} bytes"))
        return json_response(await handler(caller, raw))

    async def decide(request: Request) -> Response:
        return await call(request, service.decide)

    async def complete(request: Request) -> Response:
        return await call(request, service.complete)

    async def policy(request: Request) -> Response:
        return Response(service.current.info(), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b'{"checks":{},"ok":true}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        problems = service.ready()
        body = json.dumps({"ok": not problems, "checks": problems}, sort_keys=True).encode()
        return Response(body, status_code=503 if problems else 200, media_type="application/json")

    async def metrics(request: Request) -> Response:
        return Response(service.metrics.render(service.log.failures), media_type=CONTENT_TYPE_LATEST)

    async def openapi_json(request: Request) -> Response:
        return Response(document, media_type="application/json")

    async def internal_error(request: Request, exc: Exception) -> Response:
        traceback.print_exception(exc, file=sys.stderr)
        return json_response(error(500, "internal error"))

    async def not_found(request: Request, exc: Exception) -> Response:
        return json_response(error(404, f"no route {request.url.path}"))

    async def wrong_method(request: Request, exc: Exception) -> Response:
        return json_response(error(405, f"{request.method} is not served on {request.url.path}"))

    routes = [Route("/v1/decide", decide, methods=["POST"]), Route("/v1/complete", complete, methods=["POST"]),
              Route("/v1/policy", policy, methods=["GET"]), Route("/healthz", healthz, methods=["GET"]),
              Route("/readyz", readyz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"]),
              Route("/openapi.json", openapi_json, methods=["GET"])]
    return Starlette(routes=routes, exception_handlers={Exception: internal_error, 404: not_found,
                                                        405: wrong_method})
