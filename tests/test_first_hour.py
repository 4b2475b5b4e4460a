"""What a new user meets first: the default attack and how the two FCR attacks are labelled,
the attack list, pages that show only what an attack used, warnings that reach a Python user,
and the small things (names in any case, hidden files, rounded summaries, no leftover page
tensors, a progress bar per attacked batch, a page for ``fcrattack cam``, report wording)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import fcrattack
from fcrattack import FCR, PGD, FcrattackWarning, RegionDDN
from fcrattack.app.attack_dataset import attack_dataset
from fcrattack.attacks import ATTACKS, attack_class, summary
from fcrattack.cli import build_parser, main
from fcrattack.data import list_class_folders, list_flat_folder, samples
from fcrattack.experiments.machinery.results import model_label
from fcrattack.experiments.machinery.spec import UNNAMED

SAMPLES = Path(fcrattack.__file__).parent / "samples"
ROOT = Path(__file__).resolve().parents[1]


def test_default_attack_is_the_region_attack(capsys: pytest.CaptureFixture) -> None:
    args = build_parser().parse_args(["attack", "--out", "x"])
    assert args.attack == "region-ddn"
    assert main(["attack", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: region-ddn, the FCR region attack (recommended)" in text
    assert "fcr is the paper's Algorithm 1 (literal)" in text


def test_attack_list_is_plain_whole_text(capsys: pytest.CaptureFixture) -> None:
    assert main(["attacks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines}
    assert set(ATTACKS) | {"fcr-ddn", "fcr-paper"} == set(by_name)
    assert "FCR region attack (recommended)." in by_name["region-ddn"]
    fcr = by_name["fcr"]
    assert "the paper's Algorithm 1 (literal)." in fcr and "Its perturbations are large" in fcr
    assert by_name["fcr-paper"].split() == ["fcr-paper", "=", "fcr"]
    for name in ATTACKS:
        line = by_name[name]
        assert "``" not in line and ":class:" not in line and "~" not in line, line
        assert line.rstrip().endswith((".", ")")), line  # a whole sentence, not cut
    assert "see PGDL2)." in by_name["pgd"]  # the rST role rendered as its name


def test_names_in_any_case_and_the_paper_alias() -> None:
    for name, cls in (("PGD", PGD), ("Region_DDN", RegionDDN), ("fcr-paper", FCR), (" pgd", PGD)):
        assert attack_class(name) is cls
    model = fcrattack.default_model()
    assert isinstance(fcrattack.build("PGD", model), PGD)
    assert isinstance(fcrattack.build("FCR_PAPER", model), FCR)
    with pytest.raises(ValueError, match="unknown attack 'pgdx'"):
        attack_class("pgdx")
    assert summary("fcr").startswith("the paper's Algorithm 1 (literal). ")


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    """A flat folder of 3 bundled samples, plus hidden files that must not be read."""
    folder = tmp_path / "flat"
    folder.mkdir()
    for name in ("cat_0000.png", "dog_0000.png", "ship_0000.png"):
        shutil.copy(SAMPLES / name, folder)
    shutil.copy(SAMPLES / "cat_0001.png", folder / ".hidden.png")
    (folder / "._ship_0000.png").write_bytes(b"AppleDouble junk, not an image")
    return folder


def _page_and_summary(out: Path) -> tuple[str, dict[str, Any]]:
    return (out / "index.html").read_text(), json.loads((out / "summary.json").read_text())


def test_pages_show_cam_and_mask_only_where_used_and_say_predicted_labels(
    flat: Path, tmp_path: Path
) -> None:
    data = ["--data", str(flat), "--labels", "pred"]
    pgd = ["--attack", "pgd", "--opt", "steps=2"]
    assert main(["-q", "attack", *data, *pgd, "--out", str(tmp_path / "p")]) == 0
    page, summary_json = _page_and_summary(tmp_path / "p")
    assert summary_json["n_images"] == 3  # hidden files are not attacked
    assert "Grad-CAM" not in page and "% of the image" not in page and "FCR mask" not in page
    assert page.count("label (predicted): ") == 3 and "true: " not in page
    assert not list((tmp_path / "p" / "img").rglob("cam.png"))
    assert main(["-q", "attack", *data, "--opt", "steps=5", "--out", str(tmp_path / "r")]) == 0
    page, _ = _page_and_summary(tmp_path / "r")
    assert "Grad-CAM" in page and page.count("% of the image") == 3
    assert "fcrattack attack: region-ddn (FCR region attack (recommended))" in page
    assert main(["-q", "attack", "--n", "2", "--out", str(tmp_path / "g")]) == 0
    page, _ = _page_and_summary(tmp_path / "g")
    assert page.count("true: ") == 2 and "label (predicted)" not in page
    fcr = ["-q", "attack", "--n", "1", "--attack", "fcr-paper", "--opt", "steps=1"]
    assert main([*fcr, "--out", str(tmp_path / "f")]) == 0
    page, summary_json = _page_and_summary(tmp_path / "f")
    assert (
        "the paper&#x27;s Algorithm 1 (literal)" in page and "Its perturbations are large" in page
    )
    assert summary_json["attack"] == "fcr"


def test_hidden_files_and_folders_are_not_listed(tmp_path: Path) -> None:
    for folder in ("cat", "dog", ".cache"):
        (tmp_path / "root" / folder).mkdir(parents=True)
        shutil.copy(SAMPLES / "cat_0000.png", tmp_path / "root" / folder / "a.png")
        shutil.copy(SAMPLES / "cat_0001.png", tmp_path / "root" / folder / ".b.png")
    listing = list_class_folders(tmp_path / "root", classes=["cat", "dog"])
    assert listing.ids == ["cat/a.png", "dog/a.png"]
    flat = list_flat_folder(tmp_path / "root" / "cat")
    assert flat.ids == ["a.png"]


def test_summary_json_rounds_floats_and_no_page_tensors_remain(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(["-q", "attack", "--n", "3", "--attack", "pgd", "--out", str(out)]) == 0
    text = (out / "summary.json").read_text()
    numbers = re.findall(r"(?<![\w.])-?\d+\.\d+(?:e-?\d+)?", text)
    assert numbers and all(
        len(n.lstrip("-").split("e")[0].replace(".", "").lstrip("0")) <= 6 for n in numbers
    )
    assert not (out / "page").exists() and not list(out.rglob("*.pt"))
    assert (out / "index.html").is_file()


def test_progress_bar_advances_per_attacked_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    updates: list[int] = []

    class Bar:
        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def update(self, n: int) -> None:
            updates.append(n)

    monkeypatch.setattr("fcrattack.app.attack_dataset.progress_bar", lambda *a, **k: Bar())
    data = samples(6)
    attack = PGD(fcrattack.default_model(), steps=1, execution=fcrattack.Execution(batch_size=2))
    attack_dataset(attack, data, tmp_path / "o", batch_size=128, page=0, quiet=True)
    assert updates == [2, 2, 2]


def test_cam_writes_a_page(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "c"
    assert main(["-q", "cam", "--n", "3", "--page", "2", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    pictures = re.findall(r"<img src='([^']+)'", page)
    assert len(pictures) == 2 * 3 and all((out / p).is_file() for p in pictures)
    assert page.count("true: ") == 2 and page.count("% of the image") == 2
    assert "Summary" not in page and "layer model.layer3" in page
    assert str(out / "index.html") in capsys.readouterr().out


def test_readme_states_the_literal_fcr_l2_on_the_bundled_samples() -> None:
    """The README's "L2 about N on the bundled CIFAR-10 samples" for ``--attack fcr`` is what
    the command gives: FCR with its defaults (the paper's CIFAR-10 settings), on the grid as on
    the command line, seeded by image id, on the 40 samples ``fcrattack attack`` uses."""
    readme = (ROOT / "README.md").read_text()
    stated = re.findall(r"L2 about (\d+) on the bundled CIFAR-10 samples", " ".join(readme.split()))
    assert len(stated) == 1
    data = samples(40)
    result = FCR(fcrattack.default_model(), quantize=True).run(
        data.images, data.labels, ids=data.ids
    )
    assert round(result.summary()["l2"]) == int(stated[0])


#: how the work on the project was organised, which README.md, docs/ and the shipped or
#: benchmark texts never speak of
ORGANISATION = re.compile(
    r"\bthe issue\b|\bissue's|\bsessions?\b|was not available|we measured|\bgoals?\b",
    re.IGNORECASE,
)


def test_texts_speak_of_the_project_only() -> None:
    texts = [
        ROOT / "README.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "src").rglob("*.md"),
        *(ROOT / "benchmarks").glob("*.py"),
    ]
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in texts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ORGANISATION.search(line)
    ]
    assert not found, "\n".join(found)


def test_report_names_the_unnamed_model_and_cites_the_paper() -> None:
    assert model_label({"label": "EfficientNet-Lite0", "stands_for": UNNAMED}) == (
        "EfficientNet-Lite0 (the paper does not name its model)"
    )
    assert (
        model_label({"label": "ResNet-20", "stands_for": "ResNet-20"}) == "ResNet-20 for ResNet-20"
    )
    paper = json.loads((Path(fcrattack.__file__).parent / "paperdata" / "paper.json").read_text())
    assert "shared/" not in paper["source"] and "Feature Contributive Regions" in paper["source"]
    root = ROOT / "docs" / "report-cpu"
    for name in ("report.md", "report.html"):
        text = (root / name).read_text()
        assert "for unknown (not stated)" not in text and "shared/paper" not in text


# --- warnings reach the user ---------------------------------------------------------------


def test_training_mode_warns_the_python_caller() -> None:
    model = fcrattack.default_model().train()
    data = samples(2)
    with pytest.warns(FcrattackWarning, match="training mode"):
        PGD(model, steps=1).run(data.images, data.labels)
    assert model.training


def test_warnings_print_by_default_in_a_plain_python_process() -> None:
    code = (
        "import fcrattack\n"
        "from fcrattack.data import samples\n"
        "d = samples(2)\n"
        "fcrattack.PGD(fcrattack.default_model().train(), steps=1).run(d.images, d.labels)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "FcrattackWarning: model was in training mode" in done.stderr


def test_empty_masks_and_nonfinite_results_warn() -> None:
    with pytest.warns(FcrattackWarning, match="1 empty FCR mask"):
        fcrattack.fcr_mask(torch.zeros(1, 4, 4), 0.2)

    class Broken(PGD):
        """An attack whose result is NaN (e.g. a model with NaN gradients)."""

        def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: Any) -> torch.Tensor:
            return x * float("nan")

    data = samples(2)
    with pytest.warns(FcrattackWarning, match="non-finite values for 2 image"):
        result = Broken(fcrattack.default_model()).run(data.images, data.labels)
    assert torch.equal(result.x_adv, data.images)
