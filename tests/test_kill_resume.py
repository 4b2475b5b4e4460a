"""A real ``kill -9`` of a running experiment, then resume: no record lost or duplicated, and
the final records equal an uninterrupted run's.

The run is a separate Python process (the runner and :class:`ResultStore` as the CLI uses
them) on a tiny masked-FGSM config: one model, four grid cells, batches of 2, so there are
dozens of record boundaries. The test polls ``records.jsonl`` and sends SIGKILL once it has
grown past a seeded random number of records, after a further seeded random delay, so kills
land between batches, inside an attack, or inside a write.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import need_shared
from fcrattack.experiments import read_records

# The child: a tiny config, configured the way tests/test_experiments.py does it.
ENTRY = r"""
import dataclasses, sys, time
import torch
torch.set_num_threads(1)
from fcrattack.attacks import ATTACKS, MaskedFGSM
from fcrattack.experiments import get_config, run
from fcrattack.experiments.machinery.spec import R20

out, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

class Paced(MaskedFGSM):
    # a few ms per batch, so that a poll every millisecond sees each record boundary
    def run(self, x, y, **kw):
        time.sleep(0.01)
        return super().run(x, y, **kw)

ATTACKS["masked-fgsm"] = Paced
cfg = get_config("masked-fgsm", "cpu", n=n)
part = cfg.parts[0]
part.models = [R20]
part.runs = part.runs[:4]
part.data = dataclasses.replace(part.data, batch_size=2)
run(cfg, out_dir=out, root=root, device="cpu")
"""

N_IMAGES = 12
TIMEOUT = 60


def _launch(out: Path, root: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", ENTRY, str(out), str(root), str(N_IMAGES)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _complete(out: Path, root: Path) -> None:
    proc = _launch(out, root)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err.decode()[-2000:]


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_after(out: Path, root: Path, k: int, delay: float) -> bool:
    """Run until records.jsonl has more than ``k`` complete lines, wait ``delay`` s, SIGKILL.
    True when the kill happened (False: the run finished first)."""
    path = out / "records.jsonl"
    proc = _launch(out, root)
    deadline = time.monotonic() + TIMEOUT
    try:
        while _lines(path) <= k and proc.poll() is None:
            assert time.monotonic() < deadline, "child run too slow"
            time.sleep(0.001)
        time.sleep(delay)
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
        assert proc.returncode == -signal.SIGKILL
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _comparable(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "time_s"}


def _same(a: dict, b: dict) -> bool:
    """Equal records: timings ignored, floats (norms) within 1e-5, everything else exact."""
    a, b = _comparable(a), _comparable(b)
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, float) and not isinstance(w, bool):
            if not (isinstance(w, (int, float)) and abs(v - w) <= 1e-5):
                return False
        elif v != w:
            return False
    return True


def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path):
    root = need_shared("the experiments read their data sets and models from it")
    ref_dir, out = tmp_path / "ref", tmp_path / "out"
    _complete(ref_dir, root)
    ref = {r["key"]: r for r in read_records(ref_dir / "records.jsonl")}
    total = len(ref)
    assert total >= 4 * 8, total  # 4 runs x the eligible images
    path = out / "records.jsonl"

    rng = random.Random(0)
    thresholds = sorted(rng.sample(range(2, total - 4), 3))
    kills, torn = 0, 0
    for k in thresholds:  # kill, resume and kill the resumed run again, ...
        before = list(read_records(path))
        if len(before) > k:  # an earlier kill came later than this threshold
            continue
        kills += _kill_after(out, root, k, rng.uniform(0.0, 0.03))
        torn += not path.read_bytes().endswith(b"\n")
        after = list(read_records(path))
        assert len(after) > k
        # the records finished before this kill (and the earlier ones): kept, unchanged, once
        assert after[: len(before)] == before
        keys = [r["key"] for r in after]
        assert len(keys) == len(set(keys))
        assert all(_same(r, ref[r["key"]]) for r in after)
    assert kills >= 2, "the child finished before it could be killed"

    before = list(read_records(path))
    _complete(out, root)  # ... then resume to completion
    final = list(read_records(path))
    assert final[: len(before)] == before  # nothing finished was lost or rewritten
    assert path.read_bytes().endswith(b"\n")  # a torn tail was cut off, not kept
    keys = [r["key"] for r in final]
    assert len(keys) == len(set(keys)) == total  # none duplicated, none missing
    assert set(keys) == set(ref)
    bad = [r["key"] for r in final if not _same(r, ref[r["key"]])]
    assert not bad, bad[:3]
    print(f"{kills} kills, {torn} left a torn last line, {total} records")
