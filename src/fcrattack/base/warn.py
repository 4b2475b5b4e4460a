"""What a caller should see: ``FcrattackWarning``, issued through ``warnings`` (so it
reaches a Python user under the default filters, and ``pytest.warns`` or
``warnings.simplefilter`` can catch or silence it); logging stays for progress and details.
The command line prints each as one line, ``fcrattack: warning: ...``."""

from __future__ import annotations

import warnings


class FcrattackWarning(UserWarning):
    """A result or an input that needs the caller's attention (e.g. a model left in training
    mode, saved PNGs that are not adversarial, a clean accuracy that suggests wrong labels)."""


def warn(message: str, stacklevel: int = 3) -> None:
    """Issue ``message`` as a ``FcrattackWarning`` (``stacklevel`` 3: attributed to the
    caller of the function that warns)."""
    warnings.warn(message, FcrattackWarning, stacklevel=stacklevel)
