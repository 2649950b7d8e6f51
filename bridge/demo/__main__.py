"""``python -m bridge.demo``: the same as ``snort-bridge demo``."""

import os
import sys

from . import main

if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
