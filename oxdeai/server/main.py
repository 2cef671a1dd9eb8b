"""Building a service from its settings: what `oxdeai serve` checks before it starts,
and what each uvicorn worker runs (`app_from_environment`, a factory uvicorn imports).

Contract: `Settings` is everything a worker needs, passed to workers as JSON in the
environment variable OXDEAI_SERVE_SETTINGS. `build_service(settings)` loads the
policy, the keys file and the store, or raises `SetupError` with the place and the fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from oxdeai.audit.log import DecisionLog
from oxdeai.runtime.engine import Engine
from oxdeai.runtime.store import StoreError
from oxdeai.runtime.store_urls import open_store
from oxdeai.server.keys import KeysError, load_keys
from oxdeai.server.service import Service
from oxdeai.server.setup import SetupError, load_policy_file

__all__ = ["ENVIRONMENT", "Settings", "SetupError", "app_from_environment", "build_service"]

ENVIRONMENT = "OXDEAI_SERVE_SETTINGS"


@dataclass(frozen=True)
class Settings:
    policy: str
    keys: str  # the keys file's path
    store: str = "memory://"
    log: str | None = None  # a file, "-" for stdout, None for no decision log
    max_body: int = 64 * 1024
    workers: int = 1
    refuse_unknown: bool = False  # a reload refuses a version with a property `unknown`, not only `violated`
    signing_key: str | None = None  # a PEM file: ALLOWs carry signed authorizations (docs/receipts.md)
    audience: str = "oxdeai-executor"
    token_ttl: int = 60
    log_signing_key: str | None = None  # a PEM file: the decision log gets signed checkpoints
    log_checkpoint_every: int = 1_000  # records
    log_checkpoint_seconds: float = 60.0
    log_rotate_bytes: int | None = None

    def to_environment(self) -> str:
        return json.dumps(asdict(self))


def build_service(settings: Settings) -> Service:
    if not Path(settings.policy).is_file():
        raise SetupError(f"no policy file `{settings.policy}`")
    policy = load_policy_file(settings.policy)
    try:
        store = open_store(settings.store, policy)
    except StoreError as exc:
        raise SetupError(str(exc)) from None
    engine = Engine(policy, store=store)
    try:
        text = Path(settings.keys).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"cannot read the keys file `{settings.keys}`: {exc}") from None
    try:
        keys = load_keys(text, lambda record: [m for _, _, m in engine.schema.agent_record(record)[1]])
    except KeysError as exc:
        raise SetupError(f"{settings.keys}: {exc}") from None
    log_signer = _signer(settings.log_signing_key, "the decision log's signing key") \
        if settings.log_signing_key else None
    try:
        log = DecisionLog(settings.log, signer=log_signer, checkpoint_every=settings.log_checkpoint_every,
                          checkpoint_seconds=settings.log_checkpoint_seconds, rotate_bytes=settings.log_rotate_bytes)
    except OSError as exc:
        raise SetupError(f"cannot open the decision log `{settings.log}`: {exc}") from None
    return Service(engine, keys, log, _issuer(settings))


def _signer(path: str, what: str) -> Any:
    try:
        from oxdeai.authz.keys import KeyProblem, Signer
    except ImportError as exc:
        raise SetupError(f"{what} needs the authz extra ({exc}): pip install 'oxdeai[authz]'") from None
    try:
        return Signer.from_pem(Path(path))
    except (KeyProblem, OSError) as exc:
        raise SetupError(f"{what} `{path}`: {exc}") from None


def _issuer(settings: Settings) -> Any:
    if settings.signing_key is None:
        return None
    from oxdeai.authz.tokens import Issuer
    return Issuer(_signer(settings.signing_key, "the signing key"), settings.audience, settings.token_ttl)


def app_from_environment() -> Any:
    """The app one uvicorn worker serves, from the settings `oxdeai serve` put in the environment."""
    from oxdeai.server.app import build_app
    from oxdeai.server.reload import Reloader

    settings = Settings(**json.loads(os.environ[ENVIRONMENT]))
    service = build_service(settings)
    refusal = None if settings.workers == 1 else (
        f"this service runs {settings.workers} workers, each its own engine: a reload reaches only one. Stop the "
        "service, run `oxdeai state rollout`, and start it with the new file")
    return build_app(service, settings.max_body, Reloader(service, settings.policy, settings.store,
                                                          settings.refuse_unknown), refusal)
