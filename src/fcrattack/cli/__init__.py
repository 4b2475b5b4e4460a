"""The ``fcrattack`` command line: argument parsing only (``parser``); each command calls one
library function (``commands``).

User errors (missing paths, unknown names, bad options, unusable devices or output folders,
an output folder that cannot be written) print one line ``fcrattack: error: ...`` and exit
with code 2 (``-v`` adds the traceback to the log); Ctrl-C prints one line saying what is kept
and exits with code 130.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

import torch

from ..base.warn import FcrattackWarning
from .commands import USER_ERRORS, CLIError, parse_opts
from .parser import build_parser

log = logging.getLogger("fcrattack.cli")

#: what an interrupted command keeps (Ctrl-C is reported in one line)
KEPT = {
    "attack": "; the images with a record are kept: the same command resumes the run",
    "reproduce": "; the records written so far are kept: the same command resumes the run",
    "train": "; the last epoch's checkpoint is kept: the same command resumes the run",
}


def _setup_logging(verbosity: int) -> None:
    """INFO (default), DEBUG (-v) or WARNING (-q) from the ``fcrattack`` loggers to stderr."""
    logger = logging.getLogger("fcrattack")
    for h in [h for h in logger.handlers if getattr(h, "_fcrattack_cli", False)]:
        logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._fcrattack_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """fcrattack's warnings as one line, ``fcrattack: warning: ...``; others as Python shows
    them."""
    if issubclass(category, FcrattackWarning):
        print(f"fcrattack: warning: {message}", file=file or sys.stderr)
    else:
        _default_show(message, category, filename, lineno, file, line)


_default_show: Any = warnings.showwarning


#: the longest error line the command line prints (-v logs the whole message)
MAX_ERROR = 500


def one_line(exc: BaseException) -> str:
    """An error's message as one line: its lines joined by `` | `` (a message of a user's
    factory or of a library may span several), cut at ``MAX_ERROR`` characters."""
    text = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if len(text) > MAX_ERROR:
        text = text[:MAX_ERROR] + "... (the whole message: rerun with -v)"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CLIError as exc:
        print(f"fcrattack: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    _setup_logging(-1 if args.quiet else 1 if args.verbose else 0)
    previous = torch.get_num_threads()
    threads = args.threads or (1 if args.command == "demo" else None)  # demo: small batches
    if threads:
        torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            warnings.simplefilter("always", FcrattackWarning)
            return int(args.func(args))
    except (CLIError, *USER_ERRORS) as exc:
        log.debug("error details", exc_info=True)
        print(f"fcrattack: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        log.debug("interrupted", exc_info=True)
        print(f"fcrattack: interrupted{KEPT.get(args.command, '')}", file=sys.stderr)
        return 130
    except BaseException as exc:  # not foreseen (a model's backward or SystemExit, a bug)
        log.debug("error details", exc_info=True)
        text = ": ".join(part for part in (type(exc).__name__, one_line(exc)) if part)
        print(
            f"fcrattack: unexpected error: {text} (the traceback: rerun with -v)", file=sys.stderr
        )
        return 1
    finally:
        torch.set_num_threads(previous)


__all__ = ["CLIError", "build_parser", "main", "parse_opts"]
