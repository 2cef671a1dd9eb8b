"""`oxdeai serve POLICY --keys FILE [--store URL] [--host H] [--port P] [--log FILE|-] [--workers N]`:
the HTTP decision service (oxdeai/server/, docs/serve.md). The policy, the keys file and
the store are checked before uvicorn starts: a problem is exit 2 with the place and the fix.
"""

from __future__ import annotations

import os
import sys

import click

from oxdeai.cli.common import EXIT_OK, STORE_HELP, fail_usage


@click.command()
@click.argument("policy")
@click.option("--keys", "keys_path", required=True,
              help="The keys file: credentials (their SHA-256) and the agent record each decides as.")
@click.option("--store", "store_url", default="memory://", show_default=True,
              help=STORE_HELP)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8181, show_default=True)
@click.option("--log", "log_path", help="Append the decision log to this file (- for stdout).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="uvicorn worker processes (a shared store: SQLite or Redis).")
@click.option("--refuse-unknown", is_flag=True,
              help="A reload refuses a version with any property unknown, not only violated.")
@click.option("--signing-key", type=click.Path(dir_okay=False), default=None,
              help="An Ed25519 private key (PEM): every ALLOW carries a signed authorization.")
@click.option("--audience", default="oxdeai-executor", show_default=True, help="The executor the authorizations are for.")
@click.option("--token-ttl", type=click.IntRange(1, 3600), default=60, show_default=True,
              help="Seconds an authorization stays valid.")
@click.option("--log-signing-key", type=click.Path(dir_okay=False), default=None,
              help="An Ed25519 private key (PEM) that signs the decision log's checkpoints.")
@click.option("--log-checkpoint-every", type=click.IntRange(1), default=1_000, show_default=True,
              help="Records between two checkpoints.")
@click.option("--log-checkpoint-seconds", type=click.FloatRange(0.01), default=60.0, show_default=True,
              help="Seconds at most between a record and the checkpoint that signs it.")
@click.option("--log-rotate-mb", type=click.IntRange(1), default=None,
              help="Start a new log file past this size (one worker); the chain goes on across files.")
def serve(policy: str, keys_path: str, store_url: str, host: str, port: int, log_path: str | None,
          workers: int, refuse_unknown: bool, signing_key: str | None, audience: str, token_ttl: int,
          log_signing_key: str | None, log_checkpoint_every: int, log_checkpoint_seconds: float,
          log_rotate_mb: int | None) -> None:
    """Serve decisions over HTTP: POST /v1/decide, /v1/complete; health, metrics, OpenAPI."""
    try:
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        fail_usage(f"the decision service needs its extra ({exc}): pip install 'oxdeai[serve]'")
    from oxdeai.server.main import ENVIRONMENT, Settings, SetupError, build_service

    keys_path = keys_path[1:] if keys_path.startswith("@") else keys_path
    if workers > 1 and store_url.startswith("memory:"):
        fail_usage("several workers need a shared store (sqlite:///PATH or redis://...): each would count alone")
    if log_rotate_mb is not None and (workers > 1 or log_path in (None, "-")):
        fail_usage("--log-rotate-mb needs --log FILE and one worker (workers would rotate one file under each other)")
    if log_signing_key is not None and log_path is None:
        fail_usage("--log-signing-key signs the decision log: give --log FILE (or - for stdout) too")
    settings = Settings(policy=policy, keys=keys_path, store=store_url, log=log_path, workers=workers,
                        refuse_unknown=refuse_unknown, signing_key=signing_key, audience=audience, token_ttl=token_ttl,
                        log_signing_key=log_signing_key, log_checkpoint_every=log_checkpoint_every,
                        log_checkpoint_seconds=log_checkpoint_seconds,
                        log_rotate_bytes=None if log_rotate_mb is None else log_rotate_mb << 20)
    try:
        build_service(settings).log.close()  # everything checked once here, before any worker starts
    except SetupError as exc:
        fail_usage(str(exc))
    os.environ[ENVIRONMENT] = settings.to_environment()
    click.echo(f"oxdeai serve: {policy} on http://{host}:{port} ({workers} worker(s), store {store_url})", err=True)
    uvicorn.run("oxdeai.server.main:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)
    sys.exit(EXIT_OK)
