"""Every Python and shell example in README.md and docs/**/*.md runs here, so none can rot.

What runs: each fenced block whose language is ``python``, ``bash``, ``sh`` or ``console``
(for ``console`` only the ``$ `` lines and their continuations; the rest is output). Other
fences (``text``, ``json``, none) are shown, not run.

How it runs: the blocks of one file run in order, in one fresh temporary folder laid out like a
checkout: ``../shared`` is the shared data and models (``fcrattack.data.shared_root()``),
``scripts/`` and ``.venv/`` link to the repository's (``.venv`` to the running interpreter's
environment), and that environment's ``bin`` comes first on PATH (so ``fcrattack`` and
``python`` are the tested ones). Python blocks share one namespace per file: a block may use
names an earlier block of the same file defined (never a skipped one). Shell blocks run with
``bash -e -o pipefail`` and one torch thread, as the rest of the suite; files they write stay in
the folder for later blocks of the file (``fcrattack report runs/x`` after a run into ``runs/x``).

Markers: HTML comments, invisible on GitHub and on the site, one directive each, on the lines
right above the opening fence (several may stack there); a reason in parentheses at the end:

    <!-- example: skip (the whole test suite: it would run itself) -->
    <!-- example: requires torchvision -->
    <!-- example: requires ../shared -->
    <!-- example: replace "--n 1000" "--n 2" -->
    <!-- example: omit "--scale paper" (the paper's scale needs a GPU and hours) -->

- ``skip (REASON)``: the block is not run; the reason is required and shown by pytest.
- ``requires MODULE``: the block is skipped when MODULE cannot be imported; ``requires
  ../shared``: when the shared data and models are absent (a clone of the repository alone).
  A block that names ``../shared`` or ``shared_root`` requires it without a marker, and so do
  the blocks after it in its file (they may read what it wrote).
- ``replace "OLD" "NEW"``: every occurrence of OLD becomes NEW before the block runs (shrinks
  sizes: ``--n``, ``--opt steps=``, ``n=64``); OLD must occur, so a stale marker fails.
  Quoting as in a shell (``'...'`` holds ``"``).
- ``omit "TEXT" (REASON)``: shell blocks only: drops every command (a line and its ``\\``
  continuation lines) that contains TEXT; TEXT must occur.

A marker that is not right above a fence this module runs, an unknown directive, a skip or
omit without a reason, or a block that would run ``pip install`` fails ``test_markers`` (and
such a block is never run: installing is for scripts/env.sh, and an unpinned torch or
torchvision would pull a multi-GB build). Keep the whole module under about 2 minutes on 2
cores: shrink with ``replace`` rather than skip.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fcrattack.data import shared_root

ROOT = Path(__file__).resolve().parents[1]
#: the shared data and models are there (a folder named by FCRATTACK_SHARED may be empty)
SHARED_FOUND = all((shared_root() / part).is_dir() for part in ("data", "models"))
RUN_LANGUAGES = {"python", "bash", "sh", "console"}
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<directive>.*?)\s*-->\s*$")
REASON = re.compile(r"^(?P<head>.*?)\s*\((?P<reason>[^\"]+)\)$")
#: directive name -> (number of quoted arguments, reason required)
DIRECTIVES = {"skip": (0, True), "requires": (1, False), "replace": (2, False), "omit": (1, True)}
SHELL_TIMEOUT_S = 300


class MarkerError(ValueError):
    """A marker that does not follow the convention."""


@dataclass
class Block:
    """One runnable fenced block: where it is, its language, text and directives."""

    path: str
    line: int  # 1-based line of the first line of code
    lang: str
    code: str
    directives: list[tuple[str, list[str], str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    def needs_shared(self) -> bool:
        """Whether the block reads ../shared: it names it, or is marked ``requires ../shared``."""
        marked = any(
            name == "requires" and args == ["../shared"] for name, args, _ in self.directives
        )
        return marked or "../shared" in self.code or "shared_root" in self.code

    def skip_reason(self) -> str | None:
        """Why the block does not run here, or None."""
        for name, args, reason in self.directives:
            if name == "skip":
                return reason
            if name == "requires" and args[0] == "../shared":
                continue
            if name == "requires" and importlib.util.find_spec(args[0].split(".")[0]) is None:
                return f"needs the module {args[0]}"
        if not SHARED_FOUND and self.needs_shared():
            return f"needs ../shared (the shared data and models: not found in {shared_root()})"
        return None

    def source(self) -> str:
        """The code to run: console prompts stripped, then every replace and omit applied."""
        code = self.code
        if self.lang == "console":
            code = "\n".join(_console_commands(code.splitlines()))
        if "pip install" in code and all(name != "skip" for name, _, _ in self.directives):
            raise MarkerError(f"{self.id}: installs packages: mark it skip, with a reason")
        for name, args, _ in self.directives:
            if name in ("replace", "omit") and args[0] not in code:
                raise MarkerError(f"{self.id}: {name} {args[0]!r}: not in the block")
            if name == "replace":
                code = code.replace(args[0], args[1])
            elif name == "omit":
                if self.lang == "python":
                    raise MarkerError(f"{self.id}: omit is for shell blocks")
                commands = _shell_commands(code.splitlines())
                code = "\n".join("\n".join(c) for c in commands if args[0] not in "\n".join(c))
        return code


def _shell_commands(lines: list[str]) -> list[list[str]]:
    """Lines grouped into commands: a line ending in a backslash continues on the next."""
    commands: list[list[str]] = []
    continued = False
    for line in lines:
        if continued:
            commands[-1].append(line)
        else:
            commands.append([line])
        continued = line.rstrip().endswith("\\")
    return commands


def _console_commands(lines: list[str]) -> list[str]:
    """The commands of a console transcript: ``$ `` lines and their continuations."""
    out: list[str] = []
    continued = False
    for line in lines:
        if continued or line.startswith("$ "):
            out.append(line if continued else line[2:])
            continued = line.rstrip().endswith("\\")
    return out


def parse_directive(text: str) -> tuple[str, list[str], str]:
    """``NAME ARGS (REASON)`` -> (name, args, reason); raises MarkerError when malformed."""
    m = REASON.match(text)
    head, reason = (m["head"], m["reason"].strip()) if m else (text, "")
    name, _, rest = head.partition(" ")
    if name not in DIRECTIVES:
        raise MarkerError(f"unknown directive {name!r} (one of {', '.join(DIRECTIVES)})")
    n_args, needs_reason = DIRECTIVES[name]
    try:
        args = shlex.split(rest) if name != "requires" else rest.split()
    except ValueError as e:
        raise MarkerError(f"{name}: {e}") from None
    if len(args) != n_args:
        raise MarkerError(f"{name} takes {n_args} argument(s), got {len(args)}: {rest!r}")
    if needs_reason and not reason:
        raise MarkerError(f"{name} needs a reason in parentheses")
    return name, args, reason


def parse_markdown(text: str, path: str) -> list[Block]:
    """The runnable blocks of a Markdown text, with the directives of the markers above them."""
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: list[tuple[int, str]] = []  # markers seen right above the current line
    i = 0
    while i < len(lines):
        marker, fence = MARKER.match(lines[i]), FENCE.match(lines[i])
        if marker:
            pending.append((i + 1, marker["directive"]))
            i += 1
            continue
        if fence:
            end = next(
                (j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), len(lines)
            )
            lang, indent = fence["lang"], len(fence["indent"])
            if lang in RUN_LANGUAGES:
                directives = []
                for line_no, directive in pending:
                    try:
                        directives.append(parse_directive(directive))
                    except MarkerError as e:
                        raise MarkerError(f"{path}:{line_no}: {e}") from None
                code = "\n".join(line[indent:] for line in lines[i + 1 : end])
                blocks.append(Block(path, i + 2, lang, code, directives))
            elif pending:
                raise MarkerError(f"{path}:{pending[0][0]}: marker above a {lang!r} fence")
            pending = []
            i = end + 1
            continue
        if pending:
            raise MarkerError(f"{path}:{pending[0][0]}: marker not right above a fence")
        i += 1
    if pending:
        raise MarkerError(f"{path}:{pending[0][0]}: marker not right above a fence")
    return blocks


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def collect() -> list[Block]:
    blocks: list[Block] = []
    for doc in documents():
        try:
            blocks += parse_markdown(doc.read_text(), str(doc.relative_to(ROOT)))
        except MarkerError:
            continue  # reported by test_markers
    return blocks


BLOCKS = collect()


class FileRun:
    """The blocks of one file, run in order in one folder and one Python namespace."""

    def __init__(self, folder: Path, blocks: list[Block]) -> None:
        (folder / "shared").symlink_to(shared_root().resolve(), target_is_directory=True)
        self.cwd = folder / "checkout"
        self.cwd.mkdir()
        (self.cwd / "scripts").symlink_to(ROOT / "scripts", target_is_directory=True)
        (self.cwd / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
        self.blocks = blocks
        self.namespace: dict[str, object] = {"__name__": "__example__"}
        self.done = 0  # blocks [0, done) have run (or were skipped)
        self.failed: str | None = None

    def skip_reason(self, block: Block) -> str | None:
        """Why ``block`` does not run here: its own reason, or an earlier block of the file
        that needs ../shared where it is absent (this one may read what that one wrote)."""
        reason = block.skip_reason()
        if reason is None and not SHARED_FOUND:
            earlier = self.blocks[: self.blocks.index(block)]
            needing = next((b for b in earlier if b.needs_shared()), None)
            if needing is not None:
                reason = (
                    f"follows {needing.id}, which needs ../shared (not found in {shared_root()})"
                )
        return reason

    def run_through(self, block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
        """Run every earlier block not yet run, then this one."""
        target = self.blocks.index(block)
        while self.done <= target:
            current = self.blocks[self.done]
            self.done += 1
            if self.failed:
                pytest.fail(f"an earlier example of this file failed: {self.failed}")
            if self.skip_reason(current) is None:
                try:
                    self._run(current, monkeypatch)
                except BaseException:
                    self.failed = current.id
                    raise

    def _run(self, block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
        source = block.source()
        if block.lang == "python":
            monkeypatch.chdir(self.cwd)
            # leading newlines: tracebacks name the Markdown file and its line numbers
            code = compile("\n" * (block.line - 1) + source, str(ROOT / block.path), "exec")
            exec(code, self.namespace)
            return
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "OMP_NUM_THREADS": "1",
        }
        proc = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", source],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=SHELL_TIMEOUT_S,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"{block.id} exited with {proc.returncode}\n--- script\n{source}\n"
                f"--- stdout (end)\n{proc.stdout[-3000:]}\n--- stderr (end)\n{proc.stderr[-3000:]}"
            )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FileRun]:
    by_path: dict[str, list[Block]] = {}
    for b in BLOCKS:
        by_path.setdefault(b.path, []).append(b)
    return {
        path: FileRun(tmp_path_factory.mktemp("example"), blocks)
        for path, blocks in by_path.items()
    }


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_example(block: Block, runs: dict[str, FileRun], monkeypatch: pytest.MonkeyPatch) -> None:
    reason = runs[block.path].skip_reason(block)
    if reason is not None:
        pytest.skip(f"{block.id}: {reason}")
    runs[block.path].run_through(block, monkeypatch)


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_markers(doc: Path) -> None:
    """Every marker follows the convention and applies (replace/omit text present)."""
    for block in parse_markdown(doc.read_text(), str(doc.relative_to(ROOT))):
        block.source()


def test_examples_found() -> None:
    """The README's examples are collected (a broken fence pattern would collect none)."""
    langs = {b.lang for b in BLOCKS if b.path == "README.md"}
    assert {"python", "bash"} <= langs


SAMPLE = """\
Text.

<!-- example: replace "--n 100" "--n 2" -->
<!-- example: omit "--scale paper" (needs a GPU) -->
```bash
fcrattack a --n 100
fcrattack b --scale paper \\
    --n 100
```

<!-- example: skip (the reason's text) -->
```python
x = 1
```

```json
{"not": "run"}
```

<!-- example: requires a_module_that_is_not_there -->
```console
$ echo one \\
    two
output
$ echo three
```
"""


def test_parse_convention() -> None:
    shell, python, console = parse_markdown(SAMPLE, "sample.md")
    assert (shell.line, shell.lang) == (6, "bash")
    assert shell.source() == "fcrattack a --n 2"
    assert python.skip_reason() == "the reason's text"
    assert console.skip_reason() == "needs the module a_module_that_is_not_there"
    assert console.source() == "echo one \\\n    two\necho three"


def test_blocks_that_read_shared_skip_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block naming ../shared, one marked ``requires ../shared`` and the blocks after them in
    their file skip where ../shared is absent, and run where it is present."""
    text = (
        "```bash\nls ../shared/data\n```\n\n<!-- example: requires ../shared -->\n"
        "```bash\nfcrattack reproduce x\n```\n\n```python\nprint(1)\n```\n"
    )
    named, marked, after = blocks = parse_markdown(text, "s.md")
    assert named.needs_shared() and marked.needs_shared() and not after.needs_shared()
    run = FileRun(tmp_path, blocks)
    monkeypatch.setattr(sys.modules[__name__], "SHARED_FOUND", False)
    assert "needs ../shared" in (named.skip_reason() or "")
    assert "needs ../shared" in (marked.skip_reason() or "")
    assert after.skip_reason() is None
    assert (run.skip_reason(after) or "").startswith("follows s.md:2, which needs ../shared")
    monkeypatch.setattr(sys.modules[__name__], "SHARED_FOUND", True)
    assert [run.skip_reason(b) for b in blocks] == [None, None, None]


@pytest.mark.parametrize(
    "text, message",
    [
        ('<!-- example: replace "--n 5" "--n 1" -->\n```bash\nx --n 1\n```', "not in the block"),
        ("<!-- example: skip -->\n```bash\nx\n```", "needs a reason"),
        ("<!-- example: skipp (typo) -->\n```bash\nx\n```", "unknown directive"),
        ('<!-- example: replace "a" -->\n```bash\na\n```', "takes 2 argument"),
        ("<!-- example: skip (x) -->\n\n```bash\nx\n```", "not right above a fence"),
        ("<!-- example: skip (x) -->\n```json\n{}\n```", "above a 'json' fence"),
        ("```sh\npip install torchvision\n```", "installs packages"),
        ('<!-- example: omit "x" (y) -->\n```python\nx = 1\n```', "for shell blocks"),
    ],
)
def test_marker_errors(text: str, message: str) -> None:
    with pytest.raises(MarkerError, match=message):
        for block in parse_markdown(text, "bad.md"):
            block.source()
