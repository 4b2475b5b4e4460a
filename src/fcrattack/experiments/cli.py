"""The ``reproduce`` and ``report`` subcommands, for ``fcrattack.cli`` to register:

    fcrattack reproduce NAME|all --preset {cpu,paper} --out DIR [--device D] [--n N]
    fcrattack report OUT

Data-parallel under torchrun (see :mod:`.distributed`)::

    torchrun --standalone --nproc_per_node 8 -m fcrattack.cli reproduce NAME --out DIR
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from .config import EXPERIMENTS, PRESETS

log = logging.getLogger(__name__)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run the experiment(s), then render the report into the same folder."""
    from .. import report
    from .distributed import is_main
    from .runner import run

    times = run(args.name, args.preset, args.out, args.device, n=args.n, root=args.shared)
    for name, seconds in times.items():
        log.info("%-24s %8.1f s", name, seconds)
    if not is_main():  # under torchrun: rank 0 renders the report
        return 0
    md, page = report.render(args.out)
    log.info("total %.1f s; report: %s, %s", sum(times.values()), md, page)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Render report.md and report.html from an output folder."""
    from .. import report

    md, page = report.render(args.out)
    log.info("report: %s, %s", md, page)
    return 0


def register(subparsers: argparse._SubParsersAction,
             parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add ``reproduce`` and ``report`` to an argparse subparsers object (with the CLI's global
    flags as ``parents``); each sets ``func`` (args -> exit code) as its handler."""
    p = subparsers.add_parser(
        "reproduce", parents=list(parents),
        help="reproduce a table/figure of the FCR paper (or all), resumably",
        description="Run a named experiment config (or 'all') into an output folder and render "
                    "its report. Rerunning with the same folder resumes: finished images are "
                    "not attacked again.")
    p.add_argument("name", choices=[*EXPERIMENTS, "all"], help="experiment name or 'all'")
    p.add_argument("--preset", choices=PRESETS, default="cpu",
                   help="'paper': the paper's scale (GPU); 'cpu': shrunk (default)")
    p.add_argument("--out", default="runs/reproduce", help="output folder (default: %(default)s)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--n", type=int, default=None, help="override the number of images per part")
    p.add_argument("--shared", default=None,
                   help="root of data/ and models/ (default: $FCRATTACK_SHARED or ../shared)")
    p.set_defaults(func=cmd_reproduce)
    r = subparsers.add_parser("report", parents=list(parents),
                              help="render report.md/report.html of a reproduce run")
    r.add_argument("out", help="output folder of 'fcrattack reproduce'")
    r.set_defaults(func=cmd_report)
