"""The NEON paths of the compact-weight products (Q8_0/Q4_0 int8 dot
products, f16/bf16 halves), on x86 machines: the kernels luminal generates are
cross-compiled for AArch64 (with and without the dot-product extension) and
run under qemu, against the same products compiled for this CPU. Skipped
unless `aarch64-linux-gnu-gcc` and `qemu-aarch64-static` are installed
(Debian/Ubuntu: `apt-get install gcc-aarch64-linux-gnu qemu-user-static`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import luminal as lm
from luminal import quant

CC, QEMU = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64-static")
pytestmark = pytest.mark.skipif(not (CC and QEMU), reason="no AArch64 cross compiler and qemu")

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
static float* load(const char* path, long* n) {
  FILE* f = fopen(path, "rb"); fseek(f, 0, SEEK_END); *n = ftell(f) / 4; fseek(f, 0, SEEK_SET);
  float* p = malloc(*n * 4 + 64); if (fread(p, 4, *n, f) != (size_t)*n) exit(2); fclose(f); return p;
}
int main(int argc, char** argv) {
  long n0, n1, n_out = atol(argv[3]);
  /* in[2]: the repacked Q4_0 weights a kernel may take; none on AArch64 (lm_q4_0x8_size is 0) */
  const float* in[3] = {load(argv[1], &n0), load(argv[2], &n1), NULL};
  float* out = malloc(n_out * 4);
  int64_t dims[1] = {0};
  KERNEL(out, in, dims);
  FILE* f = fopen(argv[4], "wb"); fwrite(out, 4, n_out, f); fclose(f);
  return 0;
}
"""


@pytest.mark.parametrize("fmt", list(quant.QUANTIZED))
@pytest.mark.parametrize("rows", [1, 5, 20])
@pytest.mark.parametrize("march", ["armv8.2-a+dotprod", "armv8-a"])
def test_neon_products_match_this_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fmt: str, rows: int,
                                      march: str) -> None:
    # AArch64 has no AMX tiles: this CPU's prompt products must not take them either
    monkeypatch.setenv("LUMINAL_AMX", "0")
    rng = np.random.default_rng(rows)
    n, k = 24, 256 if fmt in quant.K_QUANTS else 96  # k-quants: rows of 256
    w = rng.normal(size=(n, k)).astype(np.float32)
    x = rng.normal(size=(rows, k)).astype(np.float32)
    cx = lm.Graph()
    tx = cx.tensor(x.shape).set(x)
    tw = cx.parameter(w.shape, dtype=fmt).set_blocks(quant.quantize(w, fmt))
    out = (tx @ tw.T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    want = out.numpy()
    src = cx.kernel_source()
    kernels = re.findall(r"\nvoid (k_[0-9a-f]+)\(", src)
    assert len(kernels) == 1  # the product alone
    call = re.search(r"lm_(?:quant|half)_matmul\(out, in(\d) \+ INT64_C\(0\), in(\d),", src)
    assert call, "the product runs the compact-weight kernel"
    data = {int(call.group(1)): x, int(call.group(2)): quant.quantize(w, fmt)}
    for i, arr in data.items():
        raw = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)
        raw = np.concatenate([raw, np.zeros((-raw.size) % 4, np.uint8)])
        (tmp_path / f"in{i}.bin").write_bytes(raw.tobytes())
    (tmp_path / "kernels.c").write_text(src + HARNESS.replace("KERNEL", kernels[0]))
    exe = tmp_path / "run"
    subprocess.run([CC, f"-march={march}", "-O2", "-std=c99", "-ffp-contract=off", "-static",
                    str(tmp_path / "kernels.c"), "-o", str(exe), "-lm"], check=True, capture_output=True)
    subprocess.run([QEMU, str(exe), str(tmp_path / "in0.bin"), str(tmp_path / "in1.bin"),
                    str(rows * n), str(tmp_path / "out.bin")], check=True, timeout=120)
    got = np.fromfile(tmp_path / "out.bin", np.float32).reshape(rows, n)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # The NEON branches ran, not the portable C: their instructions are in the binary.
    objdump = shutil.which("aarch64-linux-gnu-objdump")
    if objdump and (rows < 16 or fmt in quant.K_QUANTS):  # k-quant prompts run int8 too
        asm = subprocess.run([objdump, "-d", str(exe)], capture_output=True, text=True, check=True).stdout
        if fmt in quant.GGML_BLOCKS + quant.K_QUANTS:
            assert re.search(r"\tsdot\t" if "dotprod" in march else r"\tsmull2?\t", asm)
            if fmt in quant.K_QUANTS:  # its own int8 kernel, not the exact fallback
                assert re.search(r"<lm_k_tile(\.[a-z0-9.]+)?>:", asm)
        else:
            assert re.search(r"\tfcvtl\t" if fmt == "f16_packed" else r"\tu?shll\t", asm)


@pytest.mark.parametrize("fmt", ["f32", "q8_0", "q4_k", "bf16_packed"])
def test_a_llama_step_compiles_for_aarch64(tmp_path: Path, fmt: str) -> None:
    """Every kernel of a decoder step (attention, norms, RoPE, products, the
    KV cache's rows) compiles for AArch64 with OpenMP, as on an ARM host."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_cuda import llama_graph

    cx = llama_graph(fmt)
    cx.compile(lm.CPUCompiler())
    (tmp_path / "step.c").write_text(cx.kernel_source())
    subprocess.run([CC, "-march=armv8.2-a+dotprod", "-O3", "-std=c99", "-fopenmp", "-ffp-contract=off",
                    "-fno-math-errno", "-fPIC", "-c", str(tmp_path / "step.c"), "-o", str(tmp_path / "step.o")],
                   check=True, capture_output=True)
