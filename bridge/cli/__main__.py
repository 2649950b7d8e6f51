"""``python -m bridge.cli``: the same as the ``snort-bridge`` command."""

import sys

from bridge.cli import main

sys.exit(main())
