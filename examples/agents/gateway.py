"""A payments gateway that executes only calls carrying a valid oxdeai authorization.

Run: .venv/bin/pip install -e '.[authz,serve]' && .venv/bin/python examples/agents/gateway.py

Two parties, as in a real deployment (docs/receipts.md):

- the agent host decides every tool call with `oxdeai.guard` in "issue" mode
  (examples/shop.oxp): an ALLOW comes back as a signed authorization for that exact
  call; it holds the signing key;
- the gateway (the executor, a Starlette app on uvicorn, here on a free loopback port)
  holds only the host's public keys (a JWKS document) and a replay store. It runs a
  charge only if `oxdeai.guard.Executor` accepts the authorization for that very call,
  once; anything else is 403 with the reason, and the card is never charged.

The script charges a card, replays the same authorization, stretches the amount under
the same signature, forges a token with another key, and tries a charge the policy
denies (no authorization is ever issued for it); then it reports the gateway's outcome
back, so the host's engine completes the call. It prints one line per step.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oxdeai import load_policy
from oxdeai.authz.keys import KeyRing, Signer
from oxdeai.authz.tokens import Issuer
from oxdeai.guard import Authorization, Executor, Guard
from oxdeai.pep import Refused

POLICY = Path(__file__).resolve().parent.parent / "shop.oxp"
AUDIENCE = "payments-gateway"


def gateway_app(jwks: dict[str, Any], charged: list[dict[str, Any]]) -> Starlette:
    """The executor: it trusts the signature, not the caller."""
    executor = Executor(keys=KeyRing.from_jwks(jwks), audience=AUDIENCE, replay="memory://")

    @executor.tool("pay.charge")
    def charge(amount: int, to: str, note: str) -> dict[str, Any]:
        charged.append({"amount": amount, "to": to})
        return {"charged": amount, "to": to}

    async def execute(request: Request) -> JSONResponse:
        try:
            envelope = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"refused": "malformed", "why": "the body is not JSON"}, status_code=400)
        result = executor.run(envelope)
        if isinstance(result, Refused):
            return JSONResponse({"refused": result.reason, "why": result.detail}, status_code=403)
        return JSONResponse(result)

    return Starlette(routes=[Route("/execute", execute, methods=["POST"])])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_in_thread(app: Starlette) -> tuple[uvicorn.Server, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def main() -> list[str]:
    signer = Signer.generate()  # the host's key; the gateway gets only the public half
    host = Guard(load_policy(POLICY), agent={"id": "agent-7", "tier": "pro"}, issuer=Issuer(signer, AUDIENCE, ttl=30))
    charged: list[dict[str, Any]] = []
    server, url = serve_in_thread(gateway_app(KeyRing.of(signer).jwks(), charged))
    out: list[str] = []

    def say(step: str, response: httpx.Response) -> None:
        out.append(f"{step}: {response.status_code} {response.text}")
        print(out[-1])

    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            authorization = host.authorize("pay.charge", {"amount": 25, "to": "acct-42"})
            assert isinstance(authorization, Authorization)
            envelope = authorization.to_dict()
            say("charge 25", http.post("/execute", json=envelope))
            host.report(authorization, "ok")  # the gateway's outcome completes the call at the host
            say("the same authorization again", http.post("/execute", json=envelope))
            stretched = {**envelope, "call": {**envelope["call"], "args": {**envelope["call"]["args"], "amount": 900}}}
            say("amount changed to 900 under the same signature", http.post("/execute", json=stretched))
            forger = Guard(load_policy(POLICY), agent={"id": "agent-7", "tier": "pro"},
                           issuer=Issuer(Signer.generate(), AUDIENCE))
            forged = forger.authorize("pay.charge", {"amount": 50, "to": "acct-666"})
            assert isinstance(forged, Authorization)
            say("signed with another key", http.post("/execute", json=forged.to_dict()))
            denied = host.authorize("pay.charge", {"amount": 80, "to": "acct-42"})  # over the rule's 60
            out.append(f"charge 80: no authorization, the host's policy denied it: {denied}")
            print(out[-1])
    finally:
        server.should_exit = True
    out.append(f"the gateway charged: {charged}")
    print(out[-1])
    return out


if __name__ == "__main__":
    main()
