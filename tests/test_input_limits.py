"""Memory bounds on the inputs: the input size a model is resized to (``--size``,
``load_model(size=)``) and the pixels of an image file that is decoded
(``fcrattack.data.decode.MAX_PIXELS``, read from the file's header)."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import pytest

from fcrattack.cli import main
from fcrattack.data import list_flat_folder, samples
from fcrattack.data.decode import MAX_PIXELS, decode
from fcrattack.models import load_model
from fcrattack.models.overrides import MAX_SIDE, check_size
from fcrattack.viz.images import save_png


def test_an_input_size_beyond_the_bound_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: --size had no upper bound; a large value was killed by the kernel at 24 GB
    without a message."""
    root = tmp_path / "flat"
    save_png(samples(1).images[0], root / "a.png")
    argv = ["-q", "attack", "--data", str(root), "--labels", "pred", "--size", "100000"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "size 100000 is above 4096 pixels" in err and "GiB" in err and "\n" not in err
    with pytest.raises(ValueError, match="size 5000 is above 4096 pixels"):
        load_model("default", size=5000)
    assert load_model("default", size=MAX_SIDE).info.input_size == MAX_SIDE
    check_size(8192, 8192)  # a model whose own input is larger may use it


def _grey_png(path: Path, width: int, height: int) -> Path:
    """A valid 8-bit grey PNG of zeros, compressed row by row (small on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's, at open
def test_an_image_of_too_many_pixels_is_skipped_before_decoding(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: a small PNG of 121 megapixels, under PIL's bomb limit, was decoded in full
    (in every reader thread)."""
    big = _grey_png(tmp_path / "big.png", 11000, 11000)
    assert big.stat().st_size < 1_000_000 and MAX_PIXELS < 11000 * 11000
    with caplog.at_level(logging.WARNING):
        assert decode(big, None) is None
    assert "11000 x 11000 pixels (121 megapixels) is above the 64 megapixels" in caplog.text
    small = _grey_png(tmp_path / "small.png", 64, 48)
    assert decode(small, None).shape == (48, 64, 3)
    listing = list_flat_folder(tmp_path)
    assert [p.name for p in listing.paths] == ["big.png", "small.png"]
    assert len(listing.read().skipped) == 1
