"""The optional C extension; everything else is declared in setup.cfg."""

import sys

from setuptools import Extension, setup

setup(
    # Call capture on Python 3.11 (3.12+ has sys.monitoring). Optional: without
    # a C compiler the pure Python fallback is used.
    ext_modules=[Extension("kolo_django._speedups", ["kolo_django/_speedups.c"], optional=True)]
    if sys.version_info < (3, 12)
    else []
)
