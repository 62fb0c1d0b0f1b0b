"""`python -m comet_replicate_emulator`: serve the emulator on a real socket."""

import sys

from ._cli import main

sys.exit(main())
