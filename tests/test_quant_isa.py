"""The k-quant products' ISA-extension branches give the same floats as the
branches they replace. The generated C picks GFNI bit moves (lm_bits512,
lm_bits256) and VBMI scale gathers (lm_six_bits) where the compiler's
target has them, and shifts and masks elsewhere; both sides must produce
the same int32 lanes. On a CPU with both extensions the program is built
again with them turned off (a C compiler wrapper appending -mno-* flags),
at 512 bits and, with AVX-512 off too, at 256 bits, and every output is
compared bit for bit: decode rows (1), a 4-row tile plus a row (5), and a
prompt through the int8 GEMM's packing (13)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


SCRIPT = """
    import sys, numpy as np, luminal as lm
    from luminal import quant
    rng = np.random.default_rng(0)
    cx = lm.Graph()
    outs = {}
    for rows in (1, 5, 13):
        x = cx.tensor((rows, 512)).set(rng.standard_normal((rows, 512)).astype(np.float32))
        for fmt in quant.K_QUANTS:
            w = (rng.standard_normal((24, 512)) * 0.02).astype(np.float32)
            t = cx.parameter(w.shape, dtype=fmt).set_blocks(quant.quantize(w, fmt))
            outs[f"{fmt}_{rows}"] = (x @ t.T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    np.savez(sys.argv[1], **{k: v.numpy() for k, v in outs.items()})
"""


def _outputs(tmp_path: Path, name: str, flags: str) -> dict[str, np.ndarray]:
    gcc = shutil.which("gcc")
    assert gcc
    cc = tmp_path / f"cc_{name}"
    cc.write_text(f'#!/bin/sh\nexec {gcc} "$@" {flags}\n')
    cc.chmod(0o755)
    env = {**os.environ, "CC": str(cc), "LUMINAL_CACHE_DIR": str(tmp_path / f"cache_{name}")}
    out = tmp_path / f"{name}.npz"
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), str(out)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(out) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.skipif(sys.platform != "linux" or shutil.which("gcc") is None, reason="needs gcc on Linux")
@pytest.mark.parametrize("width", ["512", "256"])
def test_gfni_and_vbmi_branches_match_shifts(tmp_path: Path, width: str) -> None:
    flags = _cpu_flags()
    needed = {"gfni", "avx512vbmi", "avx512bw", "avx512vl"} if width == "512" else {"gfni", "avx2", "fma"}
    if not needed <= flags:
        pytest.skip(f"this CPU lacks {sorted(needed - flags)}")
    base = "" if width == "512" else "-mno-avx512f"
    with_ext = _outputs(tmp_path, "with", base)
    without = _outputs(tmp_path, "without", f"{base} -mno-gfni -mno-avx512vbmi")
    assert with_ext.keys() == without.keys() and len(with_ext) == 18
    for key, value in with_ext.items():
        assert np.all(np.isfinite(value)) and np.abs(value).max() > 0, key
        np.testing.assert_array_equal(value, without[key], err_msg=key)
