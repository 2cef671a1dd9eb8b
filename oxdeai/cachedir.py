"""The user's private cache directory for oxdeai (`$XDG_CACHE_HOME/oxdeai`, else
`~/.cache/oxdeai`): Lark's analysis of the grammar, `verify`'s kept answers.

Contract: `private_dir(*parts)` creates the directory (0700) and returns it only if
this user owns it and no one else may write it — what is read back from it is trusted
(a pickle, a proof) — else None, and the caller keeps nothing.
"""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(*parts: str) -> Path | None:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "oxdeai"
    folder = base.joinpath(*parts)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in (base, folder):
            info = path.stat()
            if (hasattr(os, "getuid") and info.st_uid != os.getuid()) or info.st_mode & 0o022:
                return None
    except OSError:
        return None
    return folder
