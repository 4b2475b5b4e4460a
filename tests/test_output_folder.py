"""The output folder of every command that writes one (``fcrattack.base.outputs``): a folder
that no fcrattack run wrote is never replaced, ``--overwrite`` deletes only the files the
earlier run wrote, commands do not mix their files, a run that attacked nothing is replaced
by a corrected rerun, another fcrattack version is not resumed, and a folder that cannot be
written is one line. Bundled CIFAR-10 samples and the embedded default model throughout."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from fcrattack.app import attack as attack_step
from fcrattack.app.attack_dataset import attack_dataset
from fcrattack.app.cam_maps import write_cams
from fcrattack.app.demo import run_demo
from fcrattack.attacks import build
from fcrattack.base.outputs import MANIFEST, OutputError
from fcrattack.cli import main
from fcrattack.data import Dataset, samples
from fcrattack.models import default_model
from fcrattack.viz.images import png_names


def _attack(out: Path, *extra: str) -> int:
    return main(["-q", "attack", "--attack", "fgsm", "--n", "4", "--out", str(out), *extra])


def _cam(out: Path, *extra: str) -> int:
    return main(["-q", "cam", "--n", "4", "--out", str(out), *extra])


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("fcrattack: error: ") and "\n" not in err, err
    return err


def _users_folder(root: Path) -> dict[Path, bytes]:
    """A folder of the user's holding the names fcrattack writes; returns its files."""
    files = {
        root / "img" / "holiday.jpg": b"photo",
        root / "page" / "notes.txt": b"notes",
        root / "adv" / "keep.png": b"png",
        root / "cam" / "a.png": b"cam",
        root / "mask" / "b.png": b"mask",
        root / "index.html": b"<html>mine</html>",
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


@pytest.mark.parametrize("command", ["attack", "cam", "demo"])
def test_a_folder_no_fcrattack_run_wrote_is_never_replaced(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: --out at a folder holding img/, page/, adv/, ... but no run.json was called
    "the results of a run" with --overwrite advised, which then deleted it all."""
    out = tmp_path / "mine"
    files = _users_folder(out)
    argv = {
        "attack": ["attack", "--attack", "fgsm", "--n", "2"],
        "cam": ["cam", "--n", "2"],
        "demo": ["demo", "--n", "1"],
    }[command]
    for extra in ([], ["--overwrite"]):
        assert main(["-q", *argv, "--out", str(out), *extra]) == 2
        err = _error(capsys)
        assert "no manifest.json of an fcrattack run" in err and str(out) in err
        assert "--overwrite" not in err and "results of a run" not in err
    assert {p: p.read_bytes() for p in files} == files
    # nothing of fcrattack's stays in a folder it refused, its lock file neither
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        p.relative_to(out).as_posix() for p in files
    )


def test_overwrite_deletes_only_what_the_earlier_run_wrote(tmp_path: Path) -> None:
    """Regression: --overwrite removed adv/, cam/, mask/, img/, page/ with everything inside,
    a file of the user's in adv/ too."""
    out = tmp_path / "run"
    assert _attack(out, "--page", "2") == 0
    first = {r["adv_png"] for r in _rows(out)}
    mine = {out / "adv" / "mine.txt": b"keep", out / "img" / "notes.md": b"keep", out / "x": b"1"}
    for path, data in mine.items():
        path.write_bytes(data)
    # other images (another seed) and no page: the earlier run's files go, the user's stay
    assert _attack(out, "--page", "0", "--seed", "1", "--overwrite") == 0
    assert {p: p.read_bytes() for p in mine} == mine
    second = {r["adv_png"] for r in _rows(out)}
    assert first != second
    left = {p.relative_to(out).as_posix() for p in (out / "adv").iterdir()}
    assert left == second | {"adv/mine.txt"}
    assert not (out / "index.html").exists() and not list((out / "img").rglob("*.png"))
    assert sorted(p.name for p in (out / "img").iterdir()) == ["notes.md"]


def test_overwrite_keeps_files_a_hand_edited_manifest_lists_outside_the_outputs(
    tmp_path: Path,
) -> None:
    """Regression: --overwrite deleted every path inside the folder that manifest.json
    listed, a user's notes.txt added to it by hand too; only paths below an entry the
    command writes, without ``..``, are deleted."""
    out = tmp_path / "run"
    assert _attack(out, "--page", "0") == 0
    notes, other = out / "notes.txt", out / "other.txt"
    notes.write_text("precious")
    other.write_text("mine")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"] += ["notes.txt", "adv/../other.txt"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert _attack(out, "--page", "0", "--seed", "1", "--overwrite") == 0
    assert notes.read_text() == "precious" and other.read_text() == "mine"
    assert (out / "results.jsonl").is_file()


def test_files_of_the_users_named_like_transient_ones_survive_overwrite_and_resume(
    tmp_path: Path,
) -> None:
    """Regression: --overwrite deleted files of the user's whose names a run might have used
    for a moment (``summary.json.tmp``, ``results.rank0.jsonl``, ...), and the end of a run
    (a resumed one too) removed ``page/`` with a file of the user's in it."""
    out = tmp_path / "run"
    assert _attack(out, "--page", "2") == 0
    names = [
        "summary.json.tmp",
        "results.jsonl.tmp",
        "run.json.tmp",
        "manifest.json.tmp",
        "results.rank0.jsonl",
        "page/00000000.pt.tmp",
        "page/notes.txt",
    ]
    mine = {out / n: f"mine {n}\n".encode() for n in names}

    def place() -> None:
        for path, data in mine.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    place()
    assert _attack(out, "--page", "2", "--overwrite") == 0
    assert {p: p.read_bytes() for p in mine} == mine
    assert len(_rows(out)) == 4 and (out / "index.html").is_file()
    # an unfinished run (two records kept), resumed: the same files stay
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines[:2]))
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "finished": False}))
    assert _attack(out, "--page", "2") == 0
    assert {p: p.read_bytes() for p in mine} == mine
    assert len(_rows(out)) == 4
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if ".tmp" in p.name)
    assert left == sorted(n for n in names if ".tmp" in n)  # no temporary file of a run's
    # a page item's name beyond the images the run holds (4 of --page 20) is not the run's
    beyond = out / "page" / "00000009.pt"
    beyond.write_bytes(b"mine")
    assert _attack(out, "--overwrite") == 0
    assert beyond.read_bytes() == b"mine" and not (out / "page" / "00000000.pt").exists()


def test_overwrite_through_the_api_removes_images_the_new_run_does_not_write(
    tmp_path: Path,
) -> None:
    data = samples(4)
    model = default_model()
    out = tmp_path / "run"
    attack_dataset(build("fgsm", model), data, out, page=2, quiet=True)
    (out / "adv" / "mine.png").write_bytes(b"keep")
    two = data.subset([0, 1])
    attack_dataset(build("fgsm", model), two, out, page=0, overwrite=True, quiet=True)
    left = sorted(p.name for p in (out / "adv").iterdir())
    assert left == sorted(["mine.png", *(n.name for n in png_names(two.ids))])
    assert not (out / "img").exists() and not (out / "page").exists()


def test_cam_refuses_an_attack_folder_and_keeps_its_pngs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `fcrattack cam` into a finished attack folder replaced its mask/ and cam/
    PNGs; cam and demo had no output-folder guard at all."""
    out = tmp_path / "run"
    assert main(["-q", "attack", "--n", "2", "--opt", "steps=2", "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*.png")}
    assert any(p.parent.name == "mask" for p in before)
    for extra in ([], ["--overwrite"]):
        assert _cam(out, *extra) == 2
        err = _error(capsys)
        assert "holds the outputs of `fcrattack attack`" in err and "--overwrite" not in err
        assert main(["-q", "demo", "--n", "1", "--out", str(out), *extra]) == 2
        assert "holds the outputs of `fcrattack attack`" in _error(capsys)
    assert {p: p.read_bytes() for p in out.rglob("*.png")} == before


def test_cam_reruns_are_refused_and_overwrite_leaves_no_stale_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a second `fcrattack cam` left the first run's files beside its own."""
    out = tmp_path / "cams"
    assert _cam(out) == 0
    assert len(list((out / "cam").iterdir())) == 4
    assert _cam(out) == 2
    assert "holds a finished run of `fcrattack cam`" in _error(capsys)
    assert main(["-q", "cam", "--n", "2", "--seed", "3", "--page", "1", "--out", str(out),
                 "--overwrite"]) == 0  # fmt: skip
    assert len(list((out / "cam").iterdir())) == len(list((out / "mask").iterdir())) == 2
    assert len(list((out / "img").iterdir())) == 1
    # the API: the same guard
    with pytest.raises(ValueError, match="finished run of `fcrattack cam`"):
        write_cams(default_model(), samples(2), out, quiet=True)


def test_demo_reruns_are_refused_unless_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a second demo with fewer samples left the first one's pictures beside the
    new page."""
    from fcrattack.app import demo

    def quick(out: Path, n: int, seed: int, device: torch.device, quiet: bool) -> tuple:
        for i in range(n):  # the pictures the page writes, one row per sample
            (out / "img" / f"{i:04d}").mkdir(parents=True, exist_ok=True)
            (out / "img" / f"{i:04d}" / "clean.png").write_bytes(b"png")
        (out / "index.html").write_text("page")
        return {}, out / "index.html"

    monkeypatch.setattr(demo, "_demo", quick)
    out = tmp_path / "demo"
    run_demo(out, n=5)
    with pytest.raises(ValueError, match="finished run of `fcrattack demo`"):
        run_demo(out, n=2)
    run_demo(out, n=2, overwrite=True)
    assert sorted(p.name for p in (out / "img").iterdir()) == ["0000", "0001"]
    assert main(["-q", "demo", "--n", "41", "--out", str(tmp_path / "d2")]) == 2
    assert "there are 40 bundled samples, got 41" in _error(capsys)
    with pytest.raises(ValueError, match="1-40"):
        run_demo(tmp_path / "d3", n=41)


def test_a_run_that_failed_on_its_first_batch_is_replaced_by_the_corrected_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a run that failed on its first batch (a bad --opt layer, a label out of
    range) left run.json, and the corrected rerun was refused without --overwrite."""
    out = tmp_path / "run"
    bad = ["-q", "attack", "--n", "2", "--opt", "steps=2", "--out", str(out)]
    assert main([*bad, "--opt", "layer=no.such.layer"]) == 2
    assert "no.such.layer" in _error(capsys)
    assert (out / "run.json").is_file()
    assert main(bad) == 0
    # the API: labels out of range, then the right ones
    data = samples(4)
    wrong = Dataset(data.images, data.labels + 100, data.ids, data.classes)
    with pytest.raises(ValueError):
        attack_dataset(build("fgsm", default_model()), wrong, tmp_path / "api", quiet=True)
    assert attack_dataset(build("fgsm", default_model()), data, tmp_path / "api", quiet=True)


def test_a_run_of_another_version_is_not_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: run.json held no fcrattack version, so a folder of an older version would
    resume and mix results."""
    out = tmp_path / "run"
    assert _attack(out) == 0
    settings = json.loads((out / "run.json").read_text())
    from fcrattack import __version__

    assert settings["fcrattack"] == __version__
    manifest = json.loads((out / MANIFEST).read_text())
    manifest.update(finished=False, fcrattack="0.0.1")
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert _attack(out) == 2
    err = _error(capsys)
    assert "fcrattack 0.0.1" in err and f"this is fcrattack {__version__}" in err
    assert _attack(out, "--overwrite") == 0


def test_a_full_disk_is_one_line_and_the_records_stay_consistent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a full output folder gave a traceback (torch's "inline_container" error
    for the page's files)."""
    calls = {"n": 0}
    real = attack_step.save_png

    def full(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] > 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(attack_step, "save_png", full)
    out = tmp_path / "run"
    argv = ["-q", "attack", "--attack", "fgsm", "--n", "12", "--batch-size", "3"]
    assert main([*argv, "--out", str(out)]) == 2
    err = _error(capsys)
    assert f"cannot write to the output folder {out}: No space left on device" in err
    rows = _rows(out) if (out / "results.jsonl").is_file() else []
    assert 0 < len(rows) < 12 and all((out / r["adv_png"]).is_file() for r in rows)
    monkeypatch.setattr(attack_step, "save_png", real)
    assert main([*argv, "--out", str(out)]) == 0  # resumes
    rows = _rows(out)
    assert len(rows) == len({r["key"] for r in rows}) == 12


def test_a_read_only_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        if os.access(out, os.W_OK):  # root: permissions do not stop it, simulate
            import fcrattack.base.lock as store

            def denied(self: object, *args: object, **kwargs: object) -> None:
                raise PermissionError(errno.EACCES, "Permission denied", str(out / ".x"))

            monkeypatch.setattr(store.WriterLock, "__init__", denied)
        for argv in (["attack", "--attack", "fgsm"], ["cam"], ["demo"]):
            assert main(["-q", *argv, "--n", "2", "--out", str(out)]) == 2
            err = _error(capsys)
            assert f"cannot write to the output folder {out}: Permission denied" in err
        with pytest.raises(OutputError, match="cannot write to the output folder"):
            write_cams(default_model(), samples(2), out, quiet=True)
    finally:
        out.chmod(0o755)


def test_ctrl_c_is_one_line_and_keeps_the_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: Ctrl-C printed a 40-line traceback."""
    from fcrattack.app import attack_dataset as pipeline

    monkeypatch.setattr(pipeline, "attack_batch", _interrupting(pipeline.attack_batch, 3))
    out = tmp_path / "run"
    argv = ["-q", "attack", "--attack", "fgsm", "--n", "12", "--batch-size", "3"]
    assert main([*argv, "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == (
        "fcrattack: interrupted; the images with a record are kept: the same command resumes "
        "the run"
    )
    assert len(_rows(out)) == 6


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_rerun_of_a_finished_attack_with_the_same_settings_does_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: rerunning the same `fcrattack attack` command on a finished run exited
    with code 2 ("already holds the results ... finished"), where the README says that
    rerunning the same command resumes."""
    out = tmp_path / "run"
    argv = ["attack", "--attack", "fgsm", "--n", "4", "--out", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    before = _files(out)
    assert main(argv) == 0
    shown = capsys.readouterr()
    assert shown.out == table  # the run's summary, as the run printed it
    said = [line for line in shown.err.splitlines() if "already holds" in line]
    assert len(said) == 1 and "finished results of a run with these settings" in said[0]
    assert _files(out) == before  # nothing written, nothing deleted
    assert main(["-q", *argv, "--seed", "1"]) == 2  # other settings: still refused
    assert "holds a run with different settings" in _error(capsys)
    assert _files(out) == before


def test_a_rerun_of_a_finished_attack_names_missing_pngs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: an adversarial PNG deleted from a finished run went unmentioned when the
    same command ran again; so did its summary.json."""
    out = tmp_path / "run"
    argv = ["attack", "--attack", "fgsm", "--n", "4", "--out", str(out)]
    assert main(argv) == 0
    gone = out / _rows(out)[1]["adv_png"]
    gone.unlink()
    capsys.readouterr()
    assert main(argv) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "missing" in line]
    assert len(said) == 1 and "1 file(s) of the run are missing" in said[0], said
    assert str(gone.relative_to(out)) in said[0] and "--overwrite" in said[0]
    (out / "summary.json").unlink()
    assert main(argv) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "missing" in line]
    assert len(said) == 1 and "2 file(s) of the run are missing (summary.json, " in said[0]


def test_a_rerun_on_a_replaced_later_image_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: only the first image was fingerprinted, so a later image replaced between
    runs kept its old record ("nothing to do"), and a killed run would resume onto it."""
    from fcrattack.viz.images import save_png

    photos = tmp_path / "photos"
    photos.mkdir()
    images = samples(4).images
    for i in range(4):
        save_png(images[i], photos / f"{i}.png")
    out = tmp_path / "run"
    argv = ["-q", "attack", "--attack", "fgsm", "--data", str(photos), "--labels", "pred"]
    assert main([*argv, "--out", str(out)]) == 0
    (photos / "2.png").write_bytes((photos / "0.png").read_bytes())
    assert main([*argv, "--out", str(out)]) == 2
    err = _error(capsys)
    assert "data.images" in err and "different settings" in err


def test_an_unreadable_image_is_warned_about_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: each unreadable image was warned about twice (the record check decoded
    it again)."""
    from fcrattack.viz.images import save_png

    photos = tmp_path / "photos"
    photos.mkdir()
    images = samples(3).images
    for i in range(3):
        save_png(images[i], photos / f"{i}.png")
    (photos / "1.png").write_bytes((photos / "1.png").read_bytes()[:40])  # truncated
    argv = ["attack", "--attack", "fgsm", "--data", str(photos), "--labels", "pred"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert err.count("skipping unreadable image") == 1, err


def test_links_leading_outside_the_folder_are_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: with adv/ a link to another folder, --overwrite refused to delete through
    it ("leads outside the folder") and then the new run wrote through it all the same."""
    out, victim = tmp_path / "run", tmp_path / "victim"
    assert _attack(out) == 0
    victim.mkdir()
    for png in (out / "adv").iterdir():
        png.rename(victim / png.name)
    (out / "adv").rmdir()
    (out / "adv").symlink_to(victim)
    kept, before = _files(victim), _files(out)
    for extra in ([], ["--overwrite"], ["--opt", "eps=0.2", "--overwrite"]):
        assert _attack(out, *extra) == 2
        err = _error(capsys)
        assert f"adv leads outside the output folder, to {victim}" in err, err
    assert _files(victim) == kept and _files(out) == before
    # a folder inside adv/ (images in class folders) is checked too
    data = tmp_path / "data" / "cat"
    data.mkdir(parents=True)
    for png in sorted(victim.iterdir())[:2]:
        (data / png.name).write_bytes(png.read_bytes())
    nested = tmp_path / "nested"
    argv = ["-q", "attack", "--attack", "fgsm", "--data", str(data.parent)]
    argv += ["--dataset", "folder", "--out", str(nested)]
    assert main(argv) == 0
    for png in (nested / "adv" / "cat").iterdir():
        png.unlink()
    (nested / "adv" / "cat").rmdir()
    (nested / "adv" / "cat").symlink_to(victim)
    assert main([*argv, "--overwrite"]) == 2
    assert "adv/cat leads outside the output folder" in _error(capsys)
    assert _files(victim) == kept
    # every command: cam/ of a cam run; a link that stays inside the folder is fine
    cams = tmp_path / "cams"
    assert _cam(cams) == 0
    (cams / "cam").rename(cams / "elsewhere")
    (cams / "cam").symlink_to(victim)
    assert _cam(cams, "--overwrite") == 2
    assert "cam leads outside the output folder" in _error(capsys)
    (cams / "cam").unlink()
    (cams / "cam").symlink_to(cams / "elsewhere")
    assert _cam(cams, "--overwrite") == 0
    assert _files(victim) == kept


def test_a_refused_folder_keeps_no_lock_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a refused --out (attack, train, cam, demo, reproduce) left
    .fcrattack.lock in the user's folder."""
    from fcrattack.models.train import TrainConfig, train

    mine = tmp_path / "mine"
    mine.mkdir()
    torch.save({"weights": 1}, mine / "last.pt")
    (mine / "config.json").write_text('{"my": "settings"}')
    data = Dataset(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4).long(),
                   list("abcd"), ["a", "b"])  # fmt: skip
    with pytest.raises(ValueError, match="not a checkpoint of fcrattack train"):
        train(TrainConfig(epochs=1), data, None, mine)
    argv = ["-q", "reproduce", "masked-fgsm", "--shared", str(tmp_path), "--out", str(mine)]
    assert main(argv) == 2
    assert "config.json is not a config.json of fcrattack reproduce" in _error(capsys)
    assert sorted(p.name for p in mine.iterdir()) == ["config.json", "last.pt"]


def test_a_damaged_or_linked_page_item_leaves_the_image_off_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a resumed run whose kept page item was damaged (or a link) attacked every
    remaining image, then stopped with a traceback, unfinished, and every rerun did too."""
    out = tmp_path / "run"
    assert _attack(out, "--page", "3") == 0
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines[:2]))  # images 0 and 1 done
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "finished": False}))
    (out / "page").mkdir()
    (out / "page" / "00000000.pt").write_bytes(b"not a torch file")
    outside = tmp_path / "outside.pt"
    torch.save({"x": 1}, outside)
    before = outside.read_bytes()
    (out / "page" / "00000001.pt").symlink_to(outside)
    capsys.readouterr()
    assert _attack(out, "--page", "3") == 0
    err = capsys.readouterr().err
    assert "page/00000000.pt does not read" in err and "page/00000001.pt is a link" in err
    assert len(_rows(out)) == 4 and (out / "index.html").is_file()
    assert outside.read_bytes() == before
    assert _attack(out, "--page", "3") == 0  # finished: left as it is


def test_fingerprints_tell_programs_and_moved_files_apart(tmp_path: Path) -> None:
    """Regression: the model fingerprint hashed the state dict only (two programs differing
    in a lifted constant, or in their graph, looked alike), and the image digest joined file
    digests with unreadable files as empty strings (moving a broken file hashed alike)."""
    import torch

    from fcrattack.app.folder import data_fingerprint
    from fcrattack.data import list_flat_folder
    from fcrattack.models import load_model
    from fcrattack.models.fingerprint import model_fingerprint
    from fcrattack.viz.images import save_png

    class Shifted(torch.nn.Module):
        def __init__(self, shift: float) -> None:
            super().__init__()
            self.net, self.shift = default_model(), shift

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x) + torch.tensor([self.shift] * 10)

    x = samples(2).images
    for shift in (0.0, 50.0):
        program = torch.export.export(Shifted(shift).eval(), (x,))
        torch.export.save(program, str(tmp_path / f"s{shift}.pt2"))
    same = model_fingerprint(load_model(f"export:{tmp_path}/s0.0.pt2"))
    assert same == model_fingerprint(load_model(f"export:{tmp_path}/s0.0.pt2"))
    assert same != model_fingerprint(load_model(f"export:{tmp_path}/s50.0.pt2"))

    def listing(broken: int) -> dict:
        folder = tmp_path / f"photos{broken}"
        folder.mkdir()
        for i, image in enumerate(samples(3).images):
            save_png(image, folder / f"{i if i < broken else i + 1}.png")
        (folder / f"{broken}.png").write_bytes(b"")  # unreadable
        return data_fingerprint(list_flat_folder(folder, labels="pred"))

    assert listing(1)["images"] != listing(2)["images"]


def test_a_link_in_place_of_a_file_is_replaced_never_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a resumed attack wrote its adversarial PNG through a link left at one of
    its per-image paths (adv/<name>.png -> a file outside the folder), replacing that file;
    so did the CAM and mask PNGs."""
    from fcrattack.app import attack_dataset as pipeline

    interrupted = _interrupting(pipeline.attack_batch, 2)
    out, target = tmp_path / "run", tmp_path / "target.txt"
    argv = ["-q", "attack", "--n", "4", "--batch-size", "2", "--opt", "steps=2"]
    argv += ["--out", str(out)]
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "attack_batch", interrupted)
        assert main(argv) == 130
    assert len(_rows(out)) == 2
    target.write_bytes(b"USER TARGET")
    names = json.loads((out / MANIFEST).read_text())["per_image"]["names"]
    later = [n for n in names if not (out / "adv" / n).exists()][:1]  # not attacked yet
    assert later
    links = [out / sub / n for sub in ("adv", "cam", "mask") for n in later]
    for link in links:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
    assert main(argv) == 0
    assert target.read_bytes() == b"USER TARGET"
    assert all(not p.is_symlink() for p in links)
    assert (out / "adv" / later[0]).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("command", ["attack", "cam"])
def test_overwrite_keeps_an_index_html_a_run_without_page_never_wrote(
    command: str, tmp_path: Path
) -> None:
    """Regression: with --page 0 the manifest listed index.html all the same, so --overwrite
    deleted the user's own index.html in the folder."""
    out = tmp_path / command
    run = _attack if command == "attack" else _cam
    assert run(out, "--page", "0") == 0
    assert not (out / "index.html").exists()
    (out / "index.html").write_text("<p>my page</p>")
    assert run(out, "--page", "0", "--overwrite") == 0
    assert (out / "index.html").read_text() == "<p>my page</p>"


def test_fingerprints_cover_script_attributes_factory_code_and_plain_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a resumed attack took another TorchScript file of the same weights whose
    float attribute (or list of tensors) differed, and a ``py:`` factory whose code changed,
    for the model its records were made with (the fingerprint hashed tensors and graphs)."""
    from fcrattack.models import load_model
    from fcrattack.models.fingerprint import model_fingerprint

    class Scaled(torch.nn.Module):
        def __init__(self, scale: float) -> None:
            super().__init__()
            self.net, self.scale = default_model(), scale

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x) * self.scale

    prints = []
    for scale in (1.0, -1.0):
        torch.jit.save(torch.jit.script(Scaled(scale).eval()), str(tmp_path / f"s{scale}.ts"))
        spec = f"torchscript:{tmp_path}/s{scale}.ts"
        prints += [model_fingerprint(load_model(spec)), model_fingerprint(load_model(spec))]
    assert prints[0] == prints[1] and prints[2] == prints[3] and prints[0] != prints[2]
    assert model_fingerprint(Scaled(1.0)) != model_fingerprint(Scaled(-1.0))  # plain attribute
    plain = model_fingerprint(default_model())
    replaced, hooked = default_model(), default_model()
    replaced.forward = lambda x: -type(replaced).forward(replaced, x)  # on the instance
    hooked.register_forward_hook(lambda module, args, out: -out)
    assert plain == model_fingerprint(default_model())
    assert plain != model_fingerprint(replaced) and plain != model_fingerprint(hooked)
    sparse, nested = default_model(), default_model()  # a traceback once
    sparse.register_buffer("sp", torch.eye(3).to_sparse())
    nested.nt = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
    assert len({plain, model_fingerprint(sparse), model_fingerprint(nested)}) == 3

    factory = tmp_path / "factory_v.py"
    code = (
        "import torch\nfrom fcrattack.models import default_model\nSIGN = {}\n"
        "class W(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.net = default_model()\n"
        "    def forward(self, x):\n        return SIGN * self.net(x)\n"
        "def make():\n    return W()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    factory.write_text(code.format("1.0"))
    first = model_fingerprint(load_model("py:factory_v:make"))
    assert first == model_fingerprint(load_model("py:factory_v:make"))
    factory.write_text(code.format("-1.0"))
    assert first != model_fingerprint(load_model("py:factory_v:make"))


def _interrupting(real: Any, at: int) -> Any:
    """``real``, raising KeyboardInterrupt at its ``at``-th call instead."""
    calls = {"n": 0}

    def interrupted(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return interrupted


def test_a_model_the_digest_cannot_tell_apart_is_refused_by_its_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a resumed attack mixed the records of two models whose digests agreed: a
    private attribute, a dict, a closure or a global hook changing the logits, or a backward
    hook flipping the input gradient. The run's probe (logits and input gradient on the
    first image) tells them apart; the same model resumes."""
    from fcrattack.app import attack_dataset as pipeline

    class Shifted(torch.nn.Module):
        def __init__(self, shift: float) -> None:
            super().__init__()
            self.net, self._shift = default_model(), shift

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x) + self._shift * torch.arange(10.0)

    flipped = default_model()
    flipped.register_full_backward_pre_hook(lambda module, grad: tuple(-g for g in grad))
    data = samples(4)
    for first, second in ((Shifted(0.0), Shifted(3.0)), (default_model(), flipped)):
        out = tmp_path / f"run{id(first)}"
        with monkeypatch.context() as patch:
            patch.setattr(pipeline, "attack_batch", _interrupting(pipeline.attack_batch, 2))
            with pytest.raises(KeyboardInterrupt):
                attack_dataset(build("pgd", first), data, out, batch_size=2, quiet=True)
        with pytest.raises(ValueError, match="model: its outputs or input gradient"):
            attack_dataset(build("pgd", second), data, out, batch_size=2, quiet=True)
        assert len(_rows(out)) == 2
        attack_dataset(build("pgd", first), data, out, batch_size=2, quiet=True)  # resumes
        assert len(_rows(out)) == 4


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (the lock file aside) and its bytes."""
    files = (p for p in folder.rglob("*") if p.is_file() and p.name != ".fcrattack.lock")
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def test_a_file_of_the_users_at_a_path_the_run_would_write_is_refused_not_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a file of the user's at a per-image path the earlier run had not listed
    (adv/ of a larger --n, img/ and page/ of a larger --page, cam/ of cam) was replaced by
    --overwrite or a resume. And the --overwrite refused there had already deleted the
    earlier finished run (attack, demo)."""
    out = tmp_path / "run"
    assert _attack(out, "--n", "2", "--page", "0") == 0
    names = [n.as_posix() for n in png_names(samples(4, 0).ids)]
    written = {p.name for p in (out / "adv").iterdir()}
    theirs = out / "adv" / next(n for n in names if n not in written)
    theirs.write_bytes(b"mine")
    before = _contents(out)
    assert _attack(out, "--n", "4", "--page", "0", "--overwrite") == 2
    assert "is not a file of an fcrattack run, and this run would write there" in _error(capsys)
    assert theirs.read_bytes() == b"mine"
    assert _contents(out) == before  # the earlier run whole
    demo = tmp_path / "demo"
    assert main(["-q", "--threads", "1", "demo", "--n", "1", "--out", str(demo)]) == 0
    (demo / "img" / "0001").mkdir(parents=True)
    (demo / "img" / "0001" / "clean.png").write_bytes(b"mine")
    before = _contents(demo)
    assert main(["-q", "demo", "--n", "2", "--out", str(demo), "--overwrite"]) == 2
    assert "img/0001/clean.png is not a file of an fcrattack run" in _error(capsys)
    assert _contents(demo) == before
    cams = tmp_path / "cams"
    assert _cam(cams, "--n", "2", "--page", "0") == 0
    mine = cams / "cam" / theirs.name
    mine.write_bytes(b"mine")
    assert _cam(cams, "--n", "4", "--page", "0", "--overwrite") in (0, 2)
    assert mine.read_bytes() == b"mine"


@pytest.mark.parametrize("listed", ["summary.json", "results.jsonl", "adv"])
def test_a_folder_at_a_path_the_earlier_run_listed_is_refused_before_anything_changes(
    listed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: with a folder in place of a file the earlier run wrote (``summary.json``,
    an adversarial PNG), ``--overwrite`` deleted and replaced the earlier run's files, attacked
    every image and failed only when it came to write there."""
    out = tmp_path / "run"
    assert _attack(out, "--n", "2", "--page", "0") == 0
    path = next((out / "adv").iterdir()) if listed == "adv" else out / listed
    path.unlink()
    path.mkdir()
    (path / "mine").write_bytes(b"mine")
    before = _contents(out)
    assert _attack(out, "--n", "2", "--page", "0", "--overwrite") == 2
    assert f"{path.relative_to(out).as_posix()} is not a file of an fcrattack run" in _error(capsys)
    assert _contents(out) == before


@pytest.mark.parametrize(
    "edit", [{"files": 5}, {"files": "x"}, {"per_image": {"names": 5}}, {"per_image": [1]}]
)
def test_a_manifest_of_wrong_field_types_is_one_line(
    edit: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: ``files: 5`` or ``per_image.names: 5`` in manifest.json gave a traceback,
    and ``files: "x"`` was accepted."""
    out = tmp_path / "run"
    assert _attack(out, "--page", "0") == 0
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, **edit}))
    assert _attack(out, "--page", "0") == 2
    assert "is not an fcrattack manifest (it was edited)" in _error(capsys)


def test_a_run_json_that_is_not_json_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a damaged run.json gave json's own message, naming no file."""
    out = tmp_path / "run"
    assert _attack(out, "--page", "0") == 0
    (out / "run.json").write_text("{")
    assert _attack(out, "--page", "0") == 2
    assert f"{out / 'run.json'} is not a run.json of fcrattack" in _error(capsys)


def test_a_hard_linked_copy_of_the_records_is_not_changed_by_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a resume appended to results.jsonl in place, so a ``cp -al`` snapshot of
    the folder changed with it; such a file is now refused, naming the remedy."""
    from fcrattack.app import attack_dataset as pipeline

    data, out = samples(4), tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "attack_batch", _interrupting(pipeline.attack_batch, 2))
        with pytest.raises(KeyboardInterrupt):
            attack_dataset(build("fgsm", default_model()), data, out, batch_size=2, quiet=True)
    snapshot = tmp_path / "snapshot.jsonl"
    os.link(out / "results.jsonl", snapshot)
    before = snapshot.read_bytes()
    with pytest.raises(ValueError, match="has other hard links"):
        attack_dataset(build("fgsm", default_model()), data, out, batch_size=2, quiet=True)
    assert snapshot.read_bytes() == before
