"""Regenerate python/luminal/_core.pyi from the built extension.

Run after changing csrc/bindings: `python scripts/gen_stubs.py`. A test checks
the committed stub matches (tests/test_typing.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

STUB = Path(__file__).resolve().parent.parent / "python" / "luminal" / "_core.pyi"


def generate() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "_core.pyi"
        subprocess.run(
            [sys.executable, "-m", "nanobind.stubgen", "-q", "-m", "luminal._core", "-o", str(out)],
            check=True,
        )
        text = out.read_text()
    # ints convert to Expr implicitly (nb::implicitly_convertible); say so.
    text = re.sub(r"(arg|value|start|stop|before|after): Expr\b", r"\1: Expr | int", text)
    text = text.replace("Sequence[Expr]", "Sequence[Expr | int]")
    text = text.replace("def nodes(self) -> list:", "def nodes(self) -> list[dict[str, object]]:")
    return text


if __name__ == "__main__":
    STUB.write_text(generate())
    print(f"wrote {STUB}")
