"""Fixtures of the core tests beyond tests/conftest.py: spans in memory."""

from tests.spans import spans

__all__ = ["spans"]
