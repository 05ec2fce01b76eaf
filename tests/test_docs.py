"""docs/ops.md is generated from the code and tests; it must be current."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ops_table_is_current() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_ops_doc
    finally:
        sys.path.pop(0)
    assert gen_ops_doc.generate() == gen_ops_doc.DOC.read_text(), (
        "docs/ops.md is stale: run `python scripts/gen_ops_doc.py`"
    )
