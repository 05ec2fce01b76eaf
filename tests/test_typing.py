"""The public API type-checks (mypy --strict) and the committed stub of the C++
module matches the built one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed")
def test_mypy_strict_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(importlib.util.find_spec("nanobind") is None, reason="nanobind not installed")
def test_core_stub_is_current() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_stubs
    finally:
        sys.path.pop(0)
    committed = (ROOT / "python" / "luminal" / "_core.pyi").read_text()
    assert gen_stubs.generate() == committed, "run `python scripts/gen_stubs.py`"
