"""Where the project's real data and models live (``data/``, ``models/``): resolved here only.

Order: an explicit ``root``, else ``$FCRATTACK_SHARED``, else the first existing ``shared``
folder beside the working directory or beside the project checkout (``../shared``).
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_root(root: str | Path | None = None) -> Path:
    """The shared root folder (it may not exist: callers say what is missing)."""
    if root is not None:
        return Path(root)
    if os.environ.get("FCRATTACK_SHARED"):
        return Path(os.environ["FCRATTACK_SHARED"])
    candidates = [Path.cwd().parent / "shared", Path(__file__).resolve().parents[4] / "shared"]
    return next((c for c in candidates if c.is_dir()), candidates[0])
