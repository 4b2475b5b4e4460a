"""Data-parallel reproduce (``fcrattack.experiments.distributed``): two CPU processes under
``torchrun`` with gloo give the records of a one-process run, merged into one store."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from conftest import need_shared
from fcrattack.attacks import ATTACKS
from fcrattack.experiments import read_records, run

ENTRY = '''
import dataclasses, sys
from fcrattack.experiments import get_config, run
from fcrattack.experiments.machinery.spec import R20

def tiny():
    """whitebox shrunk: ResNet-20, 8 CIFAR-10 images in batches of 3, FCR and PGD-L2 at FCR's
    per-image L2 (budget_from: reads the other ranks' FCR records), 3 steps each."""
    cfg = get_config("whitebox", "cpu", n=8)
    part = cfg.parts[0]
    cfg.parts = [part]
    part.models = [R20]
    part.runs = [r for r in part.runs if r.key in ("fcr", "pgdl2-at-fcr-l2")]
    for r in part.runs:
        r.params["steps"] = 3
    part.data = dataclasses.replace(part.data, batch_size=3)
    return cfg

if __name__ == "__main__":
    run(tiny(), out_dir=sys.argv[1], device="cpu", root=sys.argv[2])
'''


def _torchrun() -> Path:
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available")
    exe = Path(sys.executable).parent / "torchrun"
    if not exe.is_file():
        pytest.skip(f"torchrun not found next to {sys.executable}")
    return exe


def _by_key(path: Path) -> dict[str, dict]:
    recs = list(read_records(path))
    keys = [r["key"] for r in recs]
    assert len(keys) == len(set(keys)), "duplicate records"
    return dict(zip(keys, recs))


def test_torchrun_two_processes_match_one_process(tmp_path):
    torchrun = _torchrun()
    root = need_shared("the experiments read their data sets and models from it")
    script = tmp_path / "entry.py"
    script.write_text(ENTRY)
    ref, out = tmp_path / "ref", tmp_path / "dp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(out), str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tiny = runpy.run_path(str(script))["tiny"]
    run(tiny(), out_dir=ref, device="cpu", root=root)

    a, b = _by_key(ref / "records.jsonl"), _by_key(out / "records.jsonl")
    n = json.loads((ref / "status.json").read_text())["whitebox"]["parts"]["cifar10"]["n_eligible"]
    assert n >= 4 and len(a) == 2 * n
    assert a.keys() == b.keys()
    for key, ra in a.items():
        rb = b[key]
        assert ra.keys() == rb.keys(), key
        for field, va in ra.items():
            if field == "time_s":
                continue
            if isinstance(va, float):
                assert rb[field] == pytest.approx(va, abs=1e-4), (key, field)
            else:
                assert rb[field] == va, (key, field)
    assert not list(out.glob("records.rank*.jsonl"))  # merged and removed
    for name in ("config.json", "env.json", "status.json"):
        assert (out / name).is_file()
    status = json.loads((out / "status.json").read_text())["whitebox"]["parts"]["cifar10"]
    assert status["n_eligible"] == n

    # resume with another world size: a part left by a killed rank is merged, nothing redone
    lines = (out / "records.jsonl").read_bytes().splitlines(keepends=True)
    (out / "records.jsonl").write_bytes(b"".join(lines[:-3]))
    (out / "records.rank1.jsonl").write_bytes(b"".join(lines[-3:-1]))  # last one lost
    calls = []
    original = ATTACKS["pgdl2"]

    class Spy(original):
        def run(self, x, y, **kw):
            calls.append(list(kw["ids"]))
            return super().run(x, y, **kw)

    ATTACKS["pgdl2"] = Spy
    try:
        run(tiny(), out_dir=out, device="cpu", root=root)
    finally:
        ATTACKS["pgdl2"] = original
    lost = json.loads(lines[-1])
    assert calls == [[lost["id"]]] and lost["attack_key"] == "pgdl2-at-fcr-l2"
    assert _by_key(out / "records.jsonl").keys() == a.keys()
    assert not list(out.glob("records.rank*.jsonl"))


def test_attack_command_under_torchrun_matches_one_process(tmp_path):
    """``fcrattack attack`` with 2 gloo processes: each attacks its shard, rank 0 writes the
    merged JSONL (in the images' order) and summary, equal to a single-process run."""
    from fcrattack.cli import main

    torchrun = _torchrun()
    args = [
        "--threads",
        "1",
        "-q",
        "attack",
        "--n",
        "7",
        "--attack",
        "pgd",
        "--opt",
        "steps=3",
        "--device",
        "cpu",
        "--batch-size",
        "3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "fcrattack",
            "--",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    rows = {
        k: [json.loads(line) for line in (tmp_path / k / "results.jsonl").open()]
        for k in ("one", "two")
    }
    assert len(rows["two"]) == 7
    assert [r["id"] for r in rows["two"]] == [r["id"] for r in rows["one"]]
    for a, b in zip(rows["one"], rows["two"]):
        for key, value in a.items():
            assert b[key] == (
                pytest.approx(value, abs=1e-5) if isinstance(value, float) else value
            ), key
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["n_images"] == 7
    assert all((tmp_path / "two" / r["adv_png"]).is_file() for r in rows["two"])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x' is not an integer"),
        ({"RANK": "3", "WORLD_SIZE": "2"}, "RANK=3 and WORLD_SIZE=2: the rank must lie in"),
        ({"RANK": "1", "WORLD_SIZE": "2"}, "MASTER_ADDR and MASTER_PORT not"),
    ],
)
def test_launcher_variables_are_checked_with_one_line_naming_them(
    tmp_path, monkeypatch, capsys, env, message
):
    """Regression: a malformed launcher environment gave Python's "invalid literal for int()"
    or torch's rendezvous error instead of naming the variable."""
    from fcrattack.cli import main

    for name in ("MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = ["-q", "attack", "--n", "2", "--attack", "fgsm", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "torchrun" in err[0]
