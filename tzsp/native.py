"""The optional C accelerator ``tzsp._fastrecv``, loaded once and shared by the receive batcher and
the --fanout splitter (both have a pure-Python twin that gives identical bytes)."""

from __future__ import annotations

import os

PURE_PYTHON_ENV = "TZSPD_PURE_PYTHON"


def native_module(accelerated: bool | None = None):
    """The C accelerator module ``tzsp._fastrecv``, or None: when it is not built, when
    ``accelerated`` is False, or (for None) when TZSPD_PURE_PYTHON is set. ``accelerated=True``
    insists: ImportError says why it is missing."""
    if accelerated is False:
        return None
    if accelerated is None and os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0"):
        return None
    try:
        from . import _fastrecv
    except ImportError:
        if accelerated:
            raise
        return None
    return _fastrecv
