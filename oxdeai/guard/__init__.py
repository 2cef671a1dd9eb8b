"""`oxdeai.guard`: decide before a tool runs, complete after it — the enforcement point
every framework adapter uses. See oxdeai/guard/core.py and docs/integrations.md."""

from oxdeai.guard.answers import AlreadyDone, Denial, Denied
from oxdeai.guard.authorized import Authorization, Executor, Unauthorized
from oxdeai.guard.core import Guard
from oxdeai.guard.signature import ToolMismatch

__all__ = ["AlreadyDone", "Authorization", "Denial", "Denied", "Executor", "Guard", "ToolMismatch", "Unauthorized"]
