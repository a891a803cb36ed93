"""Record real Django requests and turn them into passing integration tests."""

from __future__ import annotations

__version__ = "0.1.0"
