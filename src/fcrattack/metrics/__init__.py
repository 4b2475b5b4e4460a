"""Metrics: per-image perturbation norms, success and ASR, 8-bit rounding and the summary of
a set of values (``norms``), the form of a per-image record, checked where records are read
back (``records``), and the one summary of per-image records (``summary``)."""

from .norms import (
    CONVENTIONS,
    NORMS,
    PSNR_255_OFFSET,
    asr,
    attack_success,
    perturbation_norms,
    quantize_uint8,
    summarize,
)
from .summary import summarize_records

__all__ = [
    "CONVENTIONS",
    "NORMS",
    "PSNR_255_OFFSET",
    "asr",
    "attack_success",
    "perturbation_norms",
    "quantize_uint8",
    "summarize",
    "summarize_records",
]
