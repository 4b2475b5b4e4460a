"""Data-parallel ``fcrattack reproduce`` on ``torch.distributed``, launched by ``torchrun``.

Single node, 8 GPUs (or 2 CPU processes with gloo: add ``--device cpu``)::

    torchrun --standalone --nproc_per_node 8 -m fcrattack reproduce comparison \\
        --scale paper --out runs/paper

Two nodes of 8 GPUs (run the same command on both; ``--out`` must be one shared folder)::

    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        -m fcrattack reproduce comparison --scale paper --out /shared/out

torchrun's own parser rejects ``--n`` as an ambiguous abbreviation of its ``--nnodes``...:
put ``--`` after the module to pass ``--n``, e.g. ``torchrun ... -m fcrattack -- reproduce
whitebox --n 100 --out DIR``.

Without torchrun (no ``WORLD_SIZE``/``RANK`` in the environment, or a world of 1) nothing here
is active and a run is exactly the single-process run.

Design. Every rank loads the data and every model, runs the pre-flight checks and classifies
the images itself; rank 0's common-correct mask is then broadcast so that every rank attacks
from the same eligible set. Each *job* (one model x one attack run, or one model of the
importance experiment) splits its remaining images (eligible ids without a record, in the
store's order) deterministically as ``todo[rank::world]``; attack seeds are per image id, so
a record does not depend on which rank made it or with which batch (up to floating-point
noise of different batch compositions, and the ``time_s`` field).

Store: ``records.jsonl`` stays the one result file, written by rank 0 only. Each rank appends
its records of the job to its own part ``records.rank{r}.jsonl`` (same append/fsync/partial
line rules as ``ResultStore``). At the end of every job all ranks meet at a
barrier, rank 0 appends the parts' records whose key is new to ``records.jsonl`` (fsync'ed)
and only then deletes the parts, and after a second barrier every rank re-reads
``records.jsonl`` (so a later job, e.g. one with ``budget_from``, sees every rank's records).
A crash loses at most a partial last line; a leftover part (from a crash, with any world
size) is merged by rank 0 when the next run starts, so a rerun with the same or another
world size, or without torchrun, skips finished work (single-process runs merge leftover parts
too — see ``fcrattack.base.store.merge_parts``, the one merge, also of ``fcrattack attack``) and
never writes a key twice.

Only rank 0 writes ``config.json``, ``env.json``, ``status.json``, the visual experiment's
artifacts (rank 0 does that small experiment alone) and the report. Backend: ``nccl`` on
CUDA (rank r uses ``cuda:LOCAL_RANK``), ``gloo`` on the CPU.

Limitations: every rank holds all models and all drawn images; ranks wait for the slowest
at the end of each job; a run skipped because its attack cannot be built is noted in
``status.json`` only when rank 0 had images of it to attack.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from .store import RECORDS, ResultStore, Upgrade, merge_parts, part_file, read_records

log = logging.getLogger(__name__)

T = TypeVar("T")
#: how long a rank waits at a barrier (rank 0 alone runs the visual experiment)
TIMEOUT = timedelta(hours=float(os.environ.get("FCRATTACK_DIST_TIMEOUT_H", "6")))


#: what a launcher such as torchrun sets for each process of a data-parallel run
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str, default: str) -> int:
    """The integer environment variable ``name``, or a one-line error naming it."""
    text = os.environ.get(name, default)
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={text!r} is not an integer; a data-parallel run is "
            f"launched by torchrun, which sets {', '.join(LAUNCH_VARIABLES)}"
        ) from None


def launch_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) of this process, checked: 0 <= rank < world size and
    ``MASTER_ADDR``/``MASTER_PORT`` set in a world of > 1 (one-line errors naming the
    variable); (0, 1, 0) when no launcher set ``RANK``."""
    if "RANK" not in os.environ:
        return 0, 1, 0
    rank, world = _env_int("RANK", "0"), _env_int("WORLD_SIZE", "1")
    local = _env_int("LOCAL_RANK", "0")
    if world < 1 or not 0 <= rank < world:
        raise ValueError(
            f"environment variables RANK={rank} and WORLD_SIZE={world}: the rank must lie in "
            "[0, WORLD_SIZE); a data-parallel run is launched by torchrun, which sets them"
        )
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if world > 1 and v not in os.environ]
    if missing:
        raise ValueError(
            f"RANK and WORLD_SIZE={world} are set but {' and '.join(missing)} not: launch a "
            "data-parallel run with torchrun (or unset RANK for one process)"
        )
    return rank, world, local


def launched() -> bool:
    """True when torchrun (or another launcher) started this process in a world of > 1."""
    return launch_env()[1] > 1


def is_main() -> bool:
    """True on rank 0, and when not launched data-parallel."""
    return launch_env()[0] == 0


class Context:
    """Rank, world size and the collectives the runner needs; all no-ops in a world of 1."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0) -> None:
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.owns_group = False

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> tuple[Context, torch.device]:
        """The context of this process and its device; inits the process group when launched
        by torchrun (nccl on CUDA with ``cuda:LOCAL_RANK``, gloo on the CPU)."""
        rank, world, local = launch_env()
        if world == 1:
            return cls(), device
        ctx = cls(rank, world, local)
        if device.type == "cuda":
            device = torch.device("cuda", ctx.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
            ctx.owns_group = True
        log.info("data-parallel: rank %d of %d on %s", ctx.rank, ctx.world, device)
        return ctx, device

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's deterministic share: ``items[rank::world]``."""
        return list(items[self.rank :: self.world])

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def store(
        self,
        out_dir: str | Path,
        filename: str = RECORDS,
        *,
        upgrade: Upgrade | None = None,
        listed: Collection[str] | None = None,
    ) -> ResultStore:
        """The store of ``filename`` for this rank (records read by ``upgrade``): the plain
        ``ResultStore`` in a world of 1 (after merging leftover parts of an interrupted
        data-parallel run), else a ``RankStore``. ``listed``: the only part names merged
        (``merge_parts``; None: every part)."""
        if not self.active:
            return merge_parts(out_dir, filename, upgrade=upgrade, listed=listed)
        return RankStore(out_dir, self, filename, upgrade=upgrade, listed=listed)

    def sync(self, store: ResultStore) -> None:
        """End of a job: merge every rank's part into ``records.jsonl`` and reload it."""
        if isinstance(store, RankStore):
            store.sync()


class RankStore(ResultStore):
    """A rank's view of the store: reads ``records.jsonl`` (plus its own unmerged records),
    appends to ``records.rank{r}.jsonl``; ``sync`` merges (collective)."""

    def __init__(
        self,
        out_dir: str | Path,
        ctx: Context,
        filename: str = RECORDS,
        *,
        upgrade: Upgrade | None = None,
        listed: Collection[str] | None = None,
    ) -> None:
        self.ctx, self.filename, self.listed = ctx, filename, listed
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        if ctx.is_main:  # leftovers of an interrupted run, any world size
            merge_parts(out_dir, filename, upgrade=upgrade, listed=listed)
        ctx.barrier()
        self.merged = Path(out_dir) / filename
        super().__init__(out_dir, filename=part_file(filename, ctx.rank), upgrade=upgrade)
        self._reload()

    def _reload(self) -> None:
        merged: dict[str, dict[str, Any]] = {}
        for rec in read_records(self.merged):
            if rec["key"] not in merged:
                merged[rec["key"]] = self.upgrade(rec)
        for key, rec in self.records.items():
            merged.setdefault(key, rec)
        self.records = merged

    def sync(self) -> None:
        self.ctx.barrier()  # every rank has written its part of the job
        if self.ctx.is_main:
            merge_parts(self.dir, self.filename, upgrade=self.upgrade, listed=self.listed)
        self.ctx.barrier()  # the merged file is complete
        self._reload()
