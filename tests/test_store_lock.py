"""One writer per output folder (``fcrattack.base.lock.WriterLock``, taken by every command
that writes), records read once per key whatever a folder holds, and ``reproduce`` folders
whose records no ``config.json`` names refused."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from conftest import SHARED, _need
from fcrattack.base.lock import LOCK, WriterLock
from fcrattack.base.outputs import OutputFolder
from fcrattack.base.store import RECORDS, ResultStore, read_records
from fcrattack.cli import main
from fcrattack.data import Dataset
from fcrattack.experiments import run
from fcrattack.models.train import TrainConfig, train
from fcrattack.report import render
from test_experiments import tiny_masked_fgsm

SRC = Path(__file__).resolve().parents[1] / "src"
HOLD = (
    "import sys, time\n"
    "from fcrattack.base.lock import WriterLock\n"
    "lock = WriterLock(sys.argv[1])\n"
    "print('locked', flush=True)\n"
    "time.sleep(600)\n"
)


def _attack(out: Path) -> list[str]:
    return ["-q", "attack", "--attack", "fgsm", "--n", "2", "--out", str(out)]


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: two runs into one folder both appended, doubling every record."""
    out = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, env=env
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        busy = f"{out} is being written by another fcrattack run (process {holder.pid})"
        for argv in (
            _attack(out),
            ["-q", "cam", "--n", "2", "--out", str(out)],
            ["-q", "reproduce", "whitebox", "--out", str(out)],
        ):
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert busy in err and "\n" not in err, err
        images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
        data = Dataset(images, torch.zeros(4).long(), list("abcd"), ["a", "b"])
        with pytest.raises(ValueError, match="being written by another fcrattack run"):
            train(TrainConfig(epochs=1), data, None, out)
    finally:
        holder.kill()  # as a kill -9 would: the kernel releases the lock
        holder.wait()
    assert (out / LOCK).read_text() == str(holder.pid)  # the killed run's lock file
    assert main(_attack(out)) == 0
    assert not (out / LOCK).exists()  # regression: it stayed, rewritten by every later run


def test_one_process_cannot_open_a_folder_twice_and_close_releases_it(tmp_path: Path) -> None:
    with OutputFolder(tmp_path / "o", "cam", names=()):
        with pytest.raises(ValueError, match="being written by another fcrattack run"):
            OutputFolder(tmp_path / "o", "cam", names=())
        with pytest.raises(ValueError, match=f"process {os.getpid()}"):
            WriterLock(tmp_path / "o")
    with OutputFolder(tmp_path / "o", "cam", names=()):
        pass


def test_records_written_twice_are_counted_once_in_the_report(tmp_path: Path) -> None:
    """Regression: a folder into which two runs had appended the same records reported
    n = 40 where 20 images were attacked, with intervals computed on the duplicates."""
    root = _need(SHARED)
    out = tmp_path / "out"
    run(tiny_masked_fgsm(), out_dir=out, root=root)
    before = render(out)[0].read_text()
    path = out / RECORDS
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines + lines))  # what two writers appending both left
    assert len(list(read_records(path))) == 2 * len(lines)
    assert len(ResultStore.records_of(out)) == len(ResultStore(out)) == len(lines)
    assert render(out)[0].read_text() == before
    n = json.loads((out / "status.json").read_text())["masked-fgsm"]["parts"]["cifar10"][
        "n_eligible"
    ]
    recs = [r for r in ResultStore.records_of(out) if r["attack_key"] == "masked-fgsm-0.03-0.00"]
    assert len(recs) == n and f"({sum(r['success'] for r in recs)}/{n})" in before


def test_reproduce_refuses_records_without_the_config_that_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `reproduce` resumed a folder without config.json unchecked."""
    root = _need(SHARED)
    plain = tmp_path / "plain"
    ResultStore(plain).append([{"key": "whatever/x", "v": 1}])
    with pytest.raises(ValueError, match="records.jsonl, and no manifest.json"):
        run(tiny_masked_fgsm(), out_dir=plain, root=root)
    assert main(["-q", "reproduce", "masked-fgsm", "--out", str(plain)]) == 2
    assert "records.jsonl, and no manifest.json" in capsys.readouterr().err
    # a committed result folder (config.json, no manifest) resumes; without its config.json
    # its records are refused
    out = tmp_path / "out"
    run(tiny_masked_fgsm(4), out_dir=out, root=root)
    (out / "manifest.json").unlink()
    run(tiny_masked_fgsm(4), out_dir=out, root=root)
    assert json.loads((out / "manifest.json").read_text())["command"] == "reproduce"
    (out / "config.json").unlink()
    with pytest.raises(ValueError, match=r"holds records \(records.jsonl\) but no config.json"):
        run(tiny_masked_fgsm(4), out_dir=out, root=root)


def test_a_lock_file_removed_by_its_holder_is_not_taken_for_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock file is removed by the run that created it (a refused run leaves none): a
    writer that opened it just before is not left locking a removed file beside a new one."""
    import fcrattack.base.lock as store

    out = tmp_path / "o"
    first = WriterLock(out)
    stale = (out / LOCK).open("r+")  # a second writer opened the file ...
    first.close()  # ... which its holder removed on closing
    assert not (out / LOCK).exists()
    real, calls = store._open_lock, []

    def racing(path: Path) -> tuple[object, bool]:
        calls.append(path)
        return (stale, False) if len(calls) == 1 else real(path)

    monkeypatch.setattr(store, "_open_lock", racing)
    with WriterLock(out):  # the stale file is locked, found removed, and left
        assert len(calls) == 2 and (out / LOCK).read_text() == str(os.getpid())
        with pytest.raises(ValueError, match="being written by another fcrattack run"):
            WriterLock(out)
    assert not (out / LOCK).exists()
    (out / LOCK).write_text("")  # a lock file this run did not create stays
    WriterLock(out).close()
    assert (out / LOCK).exists()


@pytest.mark.parametrize(
    "text",
    [
        '{"my": "settings"}',
        "[1, 2]",
        "{}",
        "not json",
        '{"masked-fgsm": {"name": "masked-fgsm", "scale": "cpu"}}',
        '{"masked-fgsm": {"name": "whitebox", "version": 5, "scale": "cpu"}}',
    ],
)
def test_a_config_json_reproduce_did_not_write_is_refused(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `reproduce` took any folder holding a config.json for one of its own,
    merged its experiment into the file and crashed (AttributeError); `report` crashed too."""
    out = tmp_path / "mine"
    out.mkdir()
    files = {out / "config.json": text.encode(), out / "data.txt": b"keep"}
    for path, data in files.items():
        path.write_bytes(data)
    shared = ["--shared", str(tmp_path)]  # refused before any data is read
    for argv in (["reproduce", "masked-fgsm", "--n", "2", *shared, "--out"], ["report"]):
        assert main(["-q", *argv, str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("fcrattack: error: ") and "\n" not in err, err
        assert "config.json" in err and "Traceback" not in err
        assert {p: p.read_bytes() for p in out.iterdir()} == files


def test_the_committed_result_folders_are_reproduce_folders(tmp_path: Path) -> None:
    """Committed result folders hold config.json but no manifest.json (ignored by git): their
    config.json is recognised, so they resume and are reported."""
    from fcrattack.experiments.reproduction import OUTPUTS, _ours, saved_configs

    results = Path(__file__).resolve().parents[1] / "results"
    folders = sorted(p.parent for p in results.glob("*/config.json"))
    assert folders
    for folder in folders:
        assert saved_configs(folder)
        copy = tmp_path / folder.name
        copy.mkdir()
        (copy / "config.json").write_bytes((folder / "config.json").read_bytes())
        with OutputFolder(copy, "reproduce", names=OUTPUTS, resumable=True, adopt=_ours) as f:
            assert f.resumed


@pytest.mark.parametrize("link", ["report.md", "figures", "records.jsonl.gz"])
def test_report_refuses_links_out_of_the_folder(link: str, tmp_path: Path) -> None:
    """Regression: ``fcrattack report`` wrote through a ``report.md`` linked to a user's file
    (and read linked records) where ``reproduce`` refuses such links."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(Path(__file__).resolve().parents[1] / "results" / "whitebox-imagenet", out)
    mine = tmp_path / "mine"
    if link == "figures":
        mine.mkdir()
        (mine / "notes.txt").write_text("keep")
    else:
        mine.write_bytes((out / link).read_bytes() if (out / link).exists() else b"keep")
    before = sorted((p.name, p.read_bytes()) for p in [mine, *mine.glob("*")] if p.is_file())
    if (out / link).is_dir():
        shutil.rmtree(out / link)
    elif (out / link).exists():
        (out / link).unlink()
    (out / link).symlink_to(mine)
    with pytest.raises(ValueError, match="outside the output folder"):
        render(out)
    assert (
        sorted((p.name, p.read_bytes()) for p in [mine, *mine.glob("*")] if p.is_file()) == before
    )


def test_a_deeply_nested_config_is_one_line(tmp_path: Path, capsys) -> None:
    """Regression: a config.json nested 100,000 deep ended in a RecursionError traceback."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["-q", "report", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a config.json" in err[0], err


def _committed_copy(tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(Path(__file__).resolve().parents[1] / "results" / "whitebox-imagenet", out)
    return out


def _rewrite_records(out: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    packed = out / "records.jsonl.gz"
    lines = gzip.decompress(packed.read_bytes()).splitlines(keepends=True)
    packed.write_bytes(gzip.compress(b"".join(change(lines))))


def _first(field: str, value: str) -> Callable[[list[bytes]], list[bytes]]:
    """A change of the first record: ``field`` set to the JSON text ``value`` (or removed)."""

    def change(lines: list[bytes]) -> list[bytes]:
        record = json.loads(lines[0])
        record.pop(field, None)
        text = json.dumps(record)[:-1] + (f', "{field}": {value}}}' if value else "}")
        return [text.encode() + b"\n", *lines[1:]]

    return change


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("success", '"no"', "success is not true or false"),
        ("success", "2", "success is not true or false"),
        ("l2", '"big"', "l2 is not a number"),
        ("l2", "NaN", "l2 is not a finite number"),
        ("l2", "-3.0", "l2 is not a finite number >= 0"),
        ("l2", "1e308", "implies inf values"),
        ("l2_255", "1e300", "l2_255 1e+300 is not 255 times l2"),
        ("linf", "2.0", "linf is above 1"),
        ("experiment", '"zzz"', "its key does not name its experiment"),
        ("label", "-1", "label is not a class index"),
        ("model", "", "model is not text"),
        ("skipped", '"unreadable file"', "skipped is not a field of reproduce's records"),
        ("clean_correct", "false", "clean_correct does not say whether pred_clean equals"),
    ],
)
def test_a_record_of_another_form_is_refused_by_the_report(
    field: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a record whose ``success`` was the text "no" counted as a success, one
    whose ``l2`` was text or NaN was silently left out of the means, one of ``l2`` -3 or 1e308
    moved the mean, one naming another experiment was dropped unsaid, and one without its
    ``model`` stopped the report with a traceback."""
    out = _committed_copy(tmp_path)
    _rewrite_records(out, _first(field, value))
    assert main(["-q", "report", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(out) in err[0], err


def test_lines_that_are_no_records_are_skipped_and_a_damaged_gzip_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a records line ``[1, 2]`` or ``null`` and a records.jsonl.gz that is not
    gzip ended in tracebacks."""
    out = _committed_copy(tmp_path)
    assert main(["-q", "report", str(out)]) == 0
    before = (out / "report.md").read_text()
    huge = b'{"key": "k", "l2": ' + b"9" * 5000 + b"}\n"  # past Python's digit limit

    def other(lines: list[bytes]) -> bytes:  # a record of an experiment config.json lacks
        record = json.loads(lines[0])
        record["key"] = record["key"].replace(record["experiment"], "zzz", 1)
        return json.dumps({**record, "experiment": "zzz"}).encode() + b"\n"

    _rewrite_records(
        out, lambda lines: [b"[1, 2]\n", *lines, b"null\n", b'{"key": 3}\n', huge, other(lines)]
    )
    capsys.readouterr()
    assert main(["-q", "report", str(out)]) == 0
    assert (out / "report.md").read_text() == before
    err = capsys.readouterr().err
    assert err.count("not a record with a key") == 3 and "unreadable line" in err
    assert "leaving out the records of experiments config.json does not hold: 'zzz'" in err
    (out / "records.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert main(["-q", "report", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged gzip file of records" in err[0], err


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("parts",), {"a": 1}, "parts: not a list"),
        (("parts", 0, "models"), None, "parts[0].models: not a list"),
        (("parts", 0, "data", "n"), "two", "parts[0].data.n: not a non-negative integer"),
        (("parts", 0, "data", "n"), 10**400, "parts[0].data.n: not a non-negative integer"),
        (("parts", 0, "data", "n"), -5, "parts[0].data.n: not a non-negative integer"),
        (("parts", 0, "data", "n"), 2.5, "parts[0].data.n: not a non-negative integer"),
        (("parts", 0, "data", "n"), True, "parts[0].data.n: not a non-negative integer"),
        (("parts", 0, "data", "seed"), math.nan, "parts[0].data.seed: not a non-negative"),
        (("t",), math.inf, "t: not a finite number"),
        (("zzz",), 1, "unknown key 'zzz'"),
    ],
)
def test_a_config_value_of_another_type_is_refused(
    path: tuple, value: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: config.json values of the wrong type (``n`` "two", 10**400, -5, 2.5, true;
    a NaN seed; an unknown key) were accepted, and ``parts`` as an object or ``models`` null
    stopped the report with a traceback."""
    out = _committed_copy(tmp_path)
    config = json.loads((out / "config.json").read_text())
    target = config["whitebox-imagenet"]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    (out / "config.json").write_text(json.dumps(config))
    for argv in (["report", str(out)], ["reproduce", "whitebox-imagenet", "--out", str(out)]):
        assert main(["-q", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and "config.json" in err[0], err


@pytest.mark.parametrize("text", [b"my notes\n", b"\xff\xfe binary"])
def test_a_file_named_like_the_lock_is_not_rewritten(
    text: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a file of the user's named ``.fcrattack.lock`` in --out was overwritten
    with a process number."""
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK).write_bytes(text)
    assert main(_attack(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file of another program" in err[0], err
    assert (out / LOCK).read_bytes() == text
    (out / LOCK).write_text("12345")  # left by a killed run: taken over, then removed
    assert main(_attack(out)) == 0
    assert not (out / LOCK).exists()
    victim = tmp_path / "victim.txt"  # a link, even to a file of digits, is not followed
    victim.write_text("123")
    (out / LOCK).symlink_to(victim)
    assert main([*_attack(out), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a link" in err[0], err
    assert victim.read_text() == "123"
    (out / LOCK).unlink()  # regression: a hard link was written through, and then removed
    os.link(victim, out / LOCK)
    assert main(_attack(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has other hard links" in err[0], err
    assert victim.read_text() == "123" and (out / LOCK).exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"success": "no"}, "success is not true or false, got 'no'"),
        ({"l2": -5.0}, "l2 is not a finite number >= 0"),
        ({"l2_255": 1e300}, "l2_255 1e+300 is not 255 times l2"),
        ({"l2": None}, "l2 is not a number, got None"),
        ({"label": 7}, "has label 7, the data"),
        ({"id": "zzz.png", "key": "zzz.png"}, "a record of 'zzz.png' at position 0"),
        ({"index": 3}, "at position 3, which the data does not hold there"),
        ({"index": 0.0}, "at position 0.0, which the data does not hold there"),
        ({"skipped": "unreadable file"}, "is skipped, yet holds attack results"),
        ({"target": 3}, "is targeted"),
        ({"clean_correct": "flip"}, "clean_correct does not say whether pred_clean equals"),
        ({"success": "flip"}, "success does not say whether pred_adv differs from label"),
        ({"duplicate": True}, "two records of"),
        ({"attack": "pgd"}, "is of attack 'pgd', not fgsm"),
        ({"delete": True}, "lacks the records of 1 of the 2 images"),
    ],
)
def test_an_edited_attack_record_is_named_not_counted(
    edit: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression (``"success": "no"`` counted as a success; a record of an image not in the
    data, a negative or huge ``l2``, a missing ``l2`` or another label taken as they were): a
    resumed or finished ``fcrattack attack`` refuses its ``results.jsonl``, naming it."""
    out = tmp_path / "run"
    assert main(_attack(out)) == 0
    path = out / "results.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    if edit.get("label") == 7 and rows[0]["label"] == 7:
        edit = {"label": 6}
        message = "has label 6, the data"
    for key in ("clean_correct", "success"):
        if edit.get(key) == "flip":
            edit = {key: not rows[0][key]}
    whole = edit.get("duplicate") or edit.get("delete")  # the record set, not one record
    if edit.get("duplicate"):
        rows.append(rows[0])
    elif edit.get("delete"):
        rows = rows[1:]
    else:
        rows[0].update(edit)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    assert main(_attack(out)) == 2  # finished: the summary is read back
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0], err
    if whole:  # a resumed run attacks the image whose record is missing
        return
    path.write_text(json.dumps(rows[0]) + "\n")  # one left to do: resumed
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "finished": False}))
    assert main(_attack(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0], err


def test_a_cell_with_records_missing_says_how_many_it_holds(tmp_path: Path) -> None:
    """Regression: with a record deleted, a report cell read 100.00 % (6/6) under a header
    of n = 7, saying nothing of the missing image."""
    out = _committed_copy(tmp_path)
    before = render(out)[0].read_text()
    assert "(records of" not in before
    _rewrite_records(out, lambda lines: lines[1:])
    after = render(out)[0].read_text()
    assert after != before and "(records of " in after and " of the 100 images)" in after


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("psnr", "null", "do not agree on whether the image changed"),
        ("l0", "1e299", "implies"),
        ("l0", "3000.5", "is not a whole number"),
        ("time_s", "1e300", "time_s 1e+300 is above"),
    ],
)
def test_a_record_of_impossible_norms_is_refused_by_the_report(
    field: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a record with a PSNR, L0 or time of 1e300 (or a PSNR dropped on a changed
    image) moved the report's means, printed as hundreds of digits."""
    out = _committed_copy(tmp_path)
    _rewrite_records(out, _first(field, value))
    assert main(["-q", "report", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_records_of_other_image_sizes_are_refused_by_the_attack_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: halving one record's l2 (and l2_255) moved the mean L2 silently."""
    out = tmp_path / "run"
    assert main(_attack(out)) == 0
    path = out / "results.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    changed = next(r for r in rows if r.get("l2"))
    scale = 0.99  # within every per-record bound; only the image size it implies differs
    changed.update(l2=changed["l2"] * scale, l2_255=changed["l2_255"] * scale)
    changed.update(psnr=changed["psnr"] + 3.0, psnr_255=changed["psnr_255"] + 3.0)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    assert main(_attack(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "imply images of" in err[0], err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"clean_correct": 5}, "clean_correct is not between n_eligible and n_drawn"),
        ({"clean_accuracy": 0.99}, "clean_accuracy is not clean_correct / n_drawn"),
        ({"eligible_ids": 5}, "eligible_ids, n_eligible and n_drawn do not agree"),
        ({"wall_s": -5.0}, "wall_s is not a finite number >= 0"),
    ],
)
def test_a_status_json_of_other_numbers_is_refused_by_the_report(
    edit: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: clean_correct, clean_accuracy, eligible_ids and wall_s of status.json
    reached the report unchecked (a clean accuracy of 3.57 %, 95 records dropped unsaid)."""
    out = _committed_copy(tmp_path)
    status = json.loads((out / "status.json").read_text())
    entry = status["whitebox-imagenet"]
    part = entry["parts"]["imagenet"]
    model = part["models"]["efficientnet-lite0"]
    if "wall_s" in edit:
        entry.update(edit)
    elif "eligible_ids" in edit:
        part["eligible_ids"] = part["eligible_ids"][:5]
    else:
        model.update(edit)
    (out / "status.json").write_text(json.dumps(status))
    assert main(["-q", "report", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "status.json" in err[0], err
