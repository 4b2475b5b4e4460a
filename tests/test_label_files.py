"""Label files (``--labels FILE``, ``fcrattack.data.read_label_file``) and class-name files
(``--classes FILE``): an image labelled twice, or by two keys naming one file, is refused
naming both lines; a file that does not decode is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from fcrattack.cli import main
from fcrattack.data import CIFAR10_CLASSES, list_flat_folder, read_label_file, samples
from fcrattack.models import load_model
from fcrattack.viz.images import save_png


@pytest.fixture(scope="module")
def flat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat folder of three bundled CIFAR-10 samples, 0.png to 2.png."""
    root = tmp_path_factory.mktemp("flat")
    data = samples(3)
    for i in range(3):
        save_png(data.images[i], root / f"{i}.png")
    return root


CASES = {
    "twice.csv": (
        "file,label\n0.png,cat\n1.png,dog\n0.png,bird\n2.png,cat\n",
        "'0.png' is given twice (line 2: label 'cat'; line 4: label 'bird')",
    ),
    "twice.json": (
        '{\n  "0.png": "cat",\n  "1.png": "dog",\n  "2.png": "cat",\n  "0.png": "bird"\n}\n',
        "'0.png' is given twice (line 2: label 'cat'; line 5: label 'bird')",
    ),
    "twice-list.json": (
        '[{"file": "0.png", "label": "cat"}, {"file": "1.png", "label": "dog"},'
        ' {"file": "2.png", "label": "cat"}, {"file": "1.png", "label": "cat"}]',
        "'1.png' is given twice (entry 2: label 'dog'; entry 4: label 'cat')",
    ),
}
#: keys that differ but name one file of a flat folder (a folder in a key is ignored)
SAME_FILE = {
    "folders.csv": (
        "0.png,cat\n1.png,dog\n2.png,cat\nphotos/0.png,bird\n",
        "'0.png' (line 1) and 'photos/0.png' (line 4) name the same file '0.png'",
    ),
    "folders.json": (
        '{"a/2.png": "cat",\n "0.png": "cat",\n "1.png": "dog",\n "b/2.png": "dog"}',
        "'a/2.png' (line 1) and 'b/2.png' (line 4) name the same file '2.png'",
    ),
}


@pytest.mark.parametrize("name", [*CASES, *SAME_FILE])
def test_an_image_labelled_twice_is_refused_naming_both_lines(
    name: str, flat: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a duplicate key, or two keys naming the same file, silently took the last
    label."""
    text, said = {**CASES, **SAME_FILE}[name]
    labels = tmp_path / name
    labels.write_text(text, encoding="utf-8")
    if name in CASES:
        with pytest.raises(ValueError, match="give each image one label") as caught:
            read_label_file(labels)
        assert said in str(caught.value)
    with pytest.raises(ValueError, match="give each image one label") as caught:
        list_flat_folder(flat, labels=labels, classes=CIFAR10_CLASSES)
    assert said in str(caught.value) and str(labels) in str(caught.value)
    out = tmp_path / "out"
    argv = ["-q", "attack", "--data", str(flat), "--labels", str(labels), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fcrattack: error: ") and "\n" not in err and said in err
    assert not out.exists()


def test_one_label_per_image_still_reads(flat: Path, tmp_path: Path) -> None:
    labels = tmp_path / "ok.csv"
    labels.write_text("file,label\nphotos/0.png,cat\n1.png,dog\n2.png,3\n", encoding="utf-8")
    listing = list_flat_folder(flat, labels=labels, classes=CIFAR10_CLASSES)
    assert listing.labels == [3, 5, 3]


def test_labels_of_files_that_are_not_there_are_warned_about(
    flat: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: entries of a label file naming no image of the folder (a typo, a moved
    file, ``../../etc/passwd``) were ignored without a word."""
    labels = tmp_path / "extra.csv"
    labels.write_text("0.png,cat\n1.png,dog\n2.png,cat\nnothere.png,dog\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="fcrattack"):
        listing = list_flat_folder(flat, labels=labels, classes=CIFAR10_CLASSES)
    assert listing.labels == [3, 5, 3]
    assert "names 1 file(s) that are not images in" in caplog.text
    assert "'nothere.png'" in caplog.text


@pytest.mark.parametrize("row", ["1.png,tench, Tinca tinca", "1.png,dog,extra", "1.png"])
def test_a_csv_row_of_other_than_two_columns_is_refused(
    row: str, flat: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a third column was ignored, so an unquoted label holding a comma was cut
    at it; a quoted one reads whole."""
    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,label\n0.png,cat\n{row}\n2.png,cat\n", encoding="utf-8")
    with pytest.raises(ValueError, match="exactly 'file,label'.*line 3"):
        read_label_file(labels)
    out = tmp_path / "out"
    argv = ["-q", "attack", "--data", str(flat), "--labels", str(labels), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "exactly 'file,label'" in err and "\n" not in err and not out.exists()
    labels.write_text('0.png,"tench, Tinca tinca"\n', encoding="utf-8")
    assert read_label_file(labels) == {"0.png": "tench, Tinca tinca"}


@pytest.mark.parametrize(
    ("option", "what"), [("--labels", "label file"), ("--classes", "class-name file")]
)
@pytest.mark.parametrize("suffix", [".csv", ".json", ".txt"])
def test_files_that_do_not_decode_are_named(
    option: str,
    what: str,
    suffix: str,
    flat: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Regression: "'utf-8' codec can't decode byte 0xff in position 0", no file named."""
    path = tmp_path / f"latin1{suffix}"
    path.write_bytes("0.png,chat\n1.png,\xe9l\xe9phant\n".encode("latin-1"))
    argv = ["-q", "attack", "--data", str(flat), "--out", str(tmp_path / "o"), option, str(path)]
    if option == "--classes":
        argv += ["--labels", "pred"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"{what} {path} is not UTF-8 text" in err and "\n" not in err
    with pytest.raises(ValueError, match=f"{what} .* is not UTF-8 text"):
        if option == "--labels":
            read_label_file(path)
        else:
            load_model("default", classes=str(path))


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    for name, load in (
        ("labels.json", lambda p: read_label_file(p)),
        ("classes.json", lambda p: load_model("default", classes=str(p))),
    ):
        path = tmp_path / name
        path.write_text('{"0.png": ', encoding="utf-8")
        with pytest.raises(ValueError, match=f"{path} is not valid JSON"):
            load(path)


def test_a_label_file_or_data_folder_of_the_wrong_kind_is_named_so(
    flat: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: ``--labels`` at a folder and ``--data`` at a file said "not found"."""
    out = tmp_path / "out"
    argv = ["-q", "attack", "--data", str(flat), "--labels", str(tmp_path), "--out", str(out)]
    assert main(argv) == 2
    assert f"label file {tmp_path} is not a regular file" in capsys.readouterr().err
    image = next(flat.iterdir())
    assert main(["-q", "cam", "--data", str(image), "--out", str(out)]) == 2
    assert f"{image} is not a folder" in capsys.readouterr().err
    assert not out.exists()
