#!/usr/bin/env bash
# Packaging check: build the sdist and the wheel (the wheel from the sdist, as `python -m build`
# does) from a copy of the files git tracks or would track (no build/ or *.egg-info left from
# earlier builds, whose SOURCES.txt setuptools would reuse); check that both hold every file
# the package-data patterns of pyproject.toml match (weights, samples, paper data, py.typed);
# install the wheel into a fresh venv (torch==2.13.0 first, so pip never asks for another
# build) and run the demo from another folder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
PIP=(-m pip install -q --no-compile --disable-pip-version-check)  # no .pyc: halves the torch install
# in memory where /dev/shm exists: writing and deleting the 1 GB venv there is much faster
WORK="$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
unset PYTHONPATH

"$PY" -m venv "$WORK/build-env"
"$WORK/build-env/bin/python" "${PIP[@]}" build==1.6.1
mkdir "$WORK/tree"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
  (cd "$ROOT" && tar --null --ignore-failed-read -T - -cf -) | tar -x -C "$WORK/tree"
"$WORK/build-env/bin/python" -m build --outdir "$WORK/dist" "$WORK/tree" >"$WORK/build.log" 2>&1 ||
  { tail -30 "$WORK/build.log"; exit 1; }
echo "package_check: sdist and wheel built (${SECONDS} s)"

"$WORK/build-env/bin/python" - "$WORK/tree" "$WORK/dist" <<'EOF'
"""Every file a package-data pattern matches is in the wheel and in the sdist; the patterns
the package cannot work without are required even if pyproject.toml lost them."""
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

root, dist = Path(sys.argv[1]), Path(sys.argv[2])
declared = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
    "package-data"]["fcrattack"]
required = ["weights/*.pt", "samples/*.png", "samples/*.json", "paperdata/*.json", "py.typed"]
patterns = [*declared, *(p for p in required if p not in declared)]
package = root / "src" / "fcrattack"
(wheel,), (sdist,) = dist.glob("*.whl"), dist.glob("*.tar.gz")
in_wheel = set(zipfile.ZipFile(wheel).namelist())
with tarfile.open(sdist) as tar:
    prefix = sdist.name.removesuffix(".tar.gz")
    in_sdist = {name.removeprefix(f"{prefix}/") for name in tar.getnames()}
missing = []
for pattern in patterns:
    files = sorted(p.relative_to(package).as_posix() for p in package.glob(pattern))
    if not files:
        missing.append(f"{pattern}: matches no file in src/fcrattack")
    missing += [f"wheel: fcrattack/{f}" for f in files if f"fcrattack/{f}" not in in_wheel]
    missing += [f"sdist: src/fcrattack/{f}" for f in files if f"src/fcrattack/{f}" not in in_sdist]
    print(f"{pattern}: {len(files)} file(s)")
if missing:
    sys.exit("missing from the packages:\n  " + "\n  ".join(missing))
print(f"{wheel.name} and {sdist.name} hold the package data")
EOF

"$PY" -m venv "$WORK/env"
"$WORK/env/bin/python" "${PIP[@]}" "torch==2.13.0"
"$WORK/env/bin/python" "${PIP[@]}" "$WORK"/dist/*.whl
echo "package_check: wheel installed in a fresh venv (${SECONDS} s)"
cd "$(mktemp -d -p "$WORK")"
"$WORK/env/bin/python" -c "import fcrattack, pathlib, sys
p = pathlib.Path(fcrattack.__file__).parent
assert str(p).startswith(sys.prefix), f'imported from {p}, not the fresh venv'
assert (p / 'py.typed').is_file(), 'py.typed not installed'"
"$WORK/env/bin/fcrattack" demo --n 4 --out demo >"$WORK/demo.log" 2>&1 || { tail -30 "$WORK/demo.log"; exit 1; }
test -s demo/index.html || { echo "the demo wrote no demo/index.html"; exit 1; }
echo "package_check: passed, the installed wheel's demo wrote demo/index.html (${SECONDS} s)"
