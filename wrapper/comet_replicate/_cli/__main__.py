"""``python -m comet_replicate._cli``: the console script without an installed entry point."""

import sys

from . import main

sys.exit(main())
