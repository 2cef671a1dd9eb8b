"""The Starlette app: routes over a `Service`, and every failure as a JSON answer.

Contract: every answer is JSON with a clear status (the metrics text excepted): no or
an unknown credential is 401 and decides nothing; a body over `max_body` bytes is
413 (by its Content-Length, or as it streams in); malformed JSON or a body that does
not fit its schema is 400; an unexpected error is 500 `{"error": "internal error"}`
with no detail on the wire (the traceback goes to the service's stderr).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import signal
import sys
import threading
import traceback
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oxdeai import __version__
from oxdeai.server.keys import Caller
from oxdeai.server.models import openapi
from oxdeai.server.reload import Reloader
from oxdeai.server.service import Answer, Service, error

MAX_BODY = 64 * 1024  # bytes


AUTHORIZATION_HEADER = "OxDeAI-Authorization"  # the signed authorization of an ALLOW (docs/receipts.md)


def json_response(answer: Answer | tuple[int, bytes, str]) -> Response:
    status, body = answer[0], answer[1]
    headers = {AUTHORIZATION_HEADER: answer[2]} if len(answer) == 3 else None
    return Response(body, status_code=status, media_type="application/json", headers=headers)


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


def build_app(service: Service, max_body: int = MAX_BODY, reloader: Reloader | None = None,
              reload_refusal: str | None = None) -> Starlette:
    """`reloader`: what `POST /v1/policy/reload` and SIGHUP run; `reload_refusal`: why a
    reload is refused instead (several workers), or None."""
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

    async def reload(request: Request) -> Response:
        caller = authorized(request)
        if not isinstance(caller, Caller):
            return json_response(caller)
        if not caller.admin:
            return json_response(error(403, f"the credential `{caller.name}` may not reload the policy (admin: true)"))
        if reloader is None or reload_refusal is not None:
            return json_response(error(409, reload_refusal or "this service does not reload"))
        return json_response(await reloader.reload())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        """SIGHUP reloads, as POST /v1/policy/reload does; the outcome goes to stderr."""
        loop = asyncio.get_running_loop()

        def on_hangup() -> None:
            async def run() -> None:
                status, body = await reloader.reload() if reloader and not reload_refusal else \
                    error(409, reload_refusal or "this service does not reload")
                print(f"oxdeai serve: SIGHUP reload: {status} {body.decode()}", file=sys.stderr, flush=True)
            tasks.add(task := asyncio.ensure_future(run()))
            task.add_done_callback(tasks.discard)

        tasks: set[asyncio.Future[None]] = set()
        hooked = threading.current_thread() is threading.main_thread()
        if hooked:
            loop.add_signal_handler(signal.SIGHUP, on_hangup)
        gc.collect()
        gc.freeze()  # what start-up built (policy, plans, models) is never scanned again: shorter GC pauses
        try:
            yield
        finally:
            if hooked:
                loop.remove_signal_handler(signal.SIGHUP)
            service.log.close()

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

    async def jwks(request: Request) -> Response:
        """The public keys of the authorizations and of the decision log's checkpoints."""
        signers = [s for s in (service.issuer.signer if service.issuer else None, service.log.chain.signer) if s]
        if not signers:
            return json_response(error(404, "this service signs nothing (start it with --signing-key or "
                                            "--log-signing-key)"))
        from oxdeai.authz.keys import KeyRing
        return Response(json.dumps(KeyRing.of(*signers).jwks()).encode(), media_type="application/json")

    async def internal_error(request: Request, exc: Exception) -> Response:
        traceback.print_exception(exc, file=sys.stderr)
        return json_response(error(500, "internal error"))

    async def not_found(request: Request, exc: Exception) -> Response:
        return json_response(error(404, f"no route {request.url.path}"))

    async def wrong_method(request: Request, exc: Exception) -> Response:
        return json_response(error(405, f"{request.method} is not served on {request.url.path}"))

    routes = [Route("/v1/decide", decide, methods=["POST"]), Route("/v1/complete", complete, methods=["POST"]),
              Route("/v1/policy/reload", reload, methods=["POST"]),
              Route("/v1/policy", policy, methods=["GET"]), Route("/healthz", healthz, methods=["GET"]),
              Route("/readyz", readyz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"]),
              Route("/openapi.json", openapi_json, methods=["GET"]),
              Route("/.well-known/jwks.json", jwks, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={Exception: internal_error, 404: not_found, 405: wrong_method})
