"""Shared set-up for the benchmarks: the test environment (fake credentials, test config)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.conftest  # noqa: E402,F401  (sets env before chalicelib.store is imported)
