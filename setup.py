"""Only the optional C accelerator lives here; everything else is in pyproject.toml.

``optional=True``: without a compiler or Python headers the build skips the extension and
tzspd uses its pure-Python receive path (same output, more CPU per packet).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("tzsp._fastrecv", ["tzsp/_fastrecv.c"], optional=True, extra_compile_args=["-O2"]),
    ],
)
