"""Fixtures of the cka room's tests; `cka_testing` (beside this file) holds the helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `import cka_testing`


@pytest.fixture(scope="module")
def cka_outputs(tmp_path_factory) -> Path:
    """One outputs folder per module: tiny teachers train once and are reused from the cache."""
    return tmp_path_factory.mktemp("cka_outputs")
