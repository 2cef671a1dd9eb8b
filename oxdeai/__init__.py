"""oxdeai: deterministic execution authorization for AI agents.

An agent proposes a tool call; before any side effect, the engine decides ALLOW
or DENY from (request, state, policy). Policies are `.oxp` files.
"""

from oxdeai.dsl.policy import CheckedPolicy, PolicyError, load_policy
from oxdeai.runtime.engine import CompletionError, Engine
from oxdeai.runtime.models import Decision

__version__ = "0.1.0"

__all__ = ["CheckedPolicy", "CompletionError", "Decision", "Engine", "PolicyError", "load_policy", "__version__"]
