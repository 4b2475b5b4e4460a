"""The names of the files fcrattack writes per image (``fcrattack.viz.images.png_names``) are
distinct by construction, also where case does not count and where a name could be a folder
of another; and the pages link to them whatever characters the names hold."""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcrattack.cli import main
from fcrattack.data import samples
from fcrattack.viz.document import Block, Picture, Table, to_html, to_markdown
from fcrattack.viz.images import png_names, save_png

ADVERSARIAL = [
    ["a.png", "a.png.png", "A.PNG", "a"],
    ["x.jpg", "x.jpg.png", "x.jpg~1.png", "x.JPG", "X.jpg.PNG"],
    ["a.jpg", "a.jpg.png", "a.jpg~1.png", "a.jpg~2.png", "a.jpg~1"],
    ["a.png", "a.png/b.jpg", "A.PNG/c.png", "a.png_b.jpg.png"],
    ["cat/x.jpg", "Cat/x.jpg", "cat/X.JPG.png", "cat.png", "CAT"],
    ["..", ".", "", "/etc/passwd", "../x.jpg", "a/../b.png", "image.png", "image~1.png"],
    ["d/e.png", "d.png", "d", "D/E.PNG", "d/e"],
]


def _check(ids: list[str], names: list[Path]) -> None:
    """Distinct (without case), none a folder of another, relative, inside, ``.png``."""
    assert len(names) == len(ids)
    folded = [n.as_posix().casefold() for n in names]
    assert len(set(folded)) == len(folded), list(zip(ids, names))
    folders = {p.as_posix().casefold() for n in names for p in n.parents if p.parts}
    assert not folders & set(folded), list(zip(ids, names))
    for n in names:
        assert not n.is_absolute() and ".." not in n.parts and n.name.lower().endswith(".png")


@pytest.mark.parametrize("ids", ADVERSARIAL)
def test_crafted_name_sets_give_distinct_files(ids: list[str]) -> None:
    """Regression: an id ending in the suffix the collision rule appends (``a.jpg~1.png``
    beside ``a.jpg`` and ``a.jpg.png``) got the same file as another id."""
    _check(ids, png_names(ids))


def test_an_id_keeps_its_own_name_unless_an_earlier_id_has_it() -> None:
    names = png_names(["a.jpg", "a.jpg.png", "a.jpg~1.png", "b.png"])
    assert [n.as_posix() for n in names] == ["a.jpg.png", "a.jpg~2.png", "a.jpg~1.png", "b.png"]


PARTS = st.sampled_from(["a", "A", "a.png", "A.PNG", "a.jpg", "a.jpg~1", "b", "..", ".", "~1"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(PARTS, min_size=1, max_size=3).map("/".join), max_size=12))
def test_any_name_set_gives_distinct_files(ids: list[str]) -> None:
    _check(ids, png_names(ids))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=8), max_size=10))
def test_any_text_gives_distinct_files(ids: list[str]) -> None:
    _check(ids, png_names([i.replace("\0", "") for i in ids]))


def test_colliding_file_names_through_the_cli(tmp_path: Path) -> None:
    """Files named like the collision rule's output keep one adversarial PNG each."""
    data = samples(4)
    root = tmp_path / "flat"
    for i, name in enumerate(["a.jpg.png", "a.png", "a.jpg~1.png", "A.PNG"]):
        save_png(data.images[i], root / name)
    out = tmp_path / "out"
    argv = ["-q", "attack", "--attack", "fgsm", "--data", str(root), "--labels", "pred"]
    assert main([*argv, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    pngs = [r["adv_png"] for r in rows]
    assert len({p.casefold() for p in pngs}) == 4
    assert len(list((out / "adv").iterdir())) == 4


def test_page_links_survive_hash_and_question_marks(tmp_path: Path) -> None:
    """Regression: file names with # or ? gave broken image links on the page."""
    data = samples(3)
    root = tmp_path / "flat"
    for i, name in enumerate(["a#b.png", "q?x.png", "100% & 'y'.png"]):
        save_png(data.images[i], root / name)
    out = tmp_path / "out"
    argv = ["-q", "attack", "--attack", "fgsm", "--data", str(root), "--labels", "pred"]
    assert main([*argv, "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    sources = re.findall(r"<img src='([^']*)'", page)
    assert len(sources) >= 3
    for src in sources:
        assert "#" not in src and "?" not in src
        assert (out / urllib.parse.unquote(src.replace("&amp;", "&"))).is_file(), src
    # the document writer quotes whatever path it is given, in HTML and Markdown
    table = Table(["image"], [[Picture("img/a#b?c/clean.png", [])]])
    html = to_html([Block("table", table=table), Block("img", "fig", src="f#1.png")], "t")
    assert "src='img/a%23b%3Fc/clean.png'" in html and "src='f%231.png'" in html
    md = to_markdown([Block("table", table=table)])
    assert "(img/a%23b%3Fc/clean.png)" in md


@pytest.mark.skipif(
    sys.platform in ("darwin", "win32"), reason="the file system takes only UTF-8 names"
)
def test_a_file_name_that_is_not_utf8_is_skipped_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: an image named with a byte that is not UTF-8 stopped the run with "'utf-8'
    codec can't encode character '\\udcff'", naming no file."""
    folder = tmp_path / "photos"
    folder.mkdir()
    x = samples(2).images
    save_png(x[0], folder / "ok.png")
    save_png(x[1], folder / os.fsdecode(b"bad\xffname.png"))
    out = tmp_path / "o"
    argv = ["-q", "attack", "--attack", "fgsm", "--data", str(folder), "--labels", "pred"]
    assert main([*argv, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "skipping 1 entries whose names are not UTF-8" in err and "bad\\udcffname.png" in err
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["ok.png"]
