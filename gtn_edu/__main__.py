"""`python -m gtn_edu` runs the `gtn-edu` command."""

import sys

from .cli import main

sys.exit(main())
