"""The gist of torch's errors of loading a file, for one-line messages."""

from __future__ import annotations

import re


def torch_reason(exc: BaseException) -> str:
    """The gist of a torch loading error: its first sentence, never torch's advice to load
    with ``weights_only=False`` or to allowlist globals (which would run code from the file)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    found = re.search(r"WeightsUnpickler error: ([^\n]*)", text)
    lines = (found.group(1) if found else text).strip().splitlines()
    sentences = re.split(r"(?<=\.)\s+", lines[0].strip() if lines else "")
    unsafe = re.compile(r"weights_only.{0,20}False|trust|allowlist|safe_globals", re.I)
    kept = [s for s in sentences if s and not unsafe.search(s)]
    return kept[0] if kept else type(exc).__name__


def named_reason(exc: BaseException) -> str:
    """``"Type: gist"`` of an exception a model's own code raised, or ``"Type"`` alone when it
    says nothing more (a bare ``GeneratorExit``)."""
    name, reason = type(exc).__name__, torch_reason(exc)
    return name if reason == name else f"{name}: {reason}"
