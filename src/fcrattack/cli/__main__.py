"""``python -m fcrattack.cli`` (kept for torchrun command lines; ``-m fcrattack`` is the same)."""

import sys

from . import main

sys.exit(main())
