"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
from browser_helpers import require_chromium, require_playwright


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """The system Chromium (skips, or fails in CI, when Chromium or Playwright is missing)."""
    path = require_chromium()
    require_playwright()
    return path
