"""The CUDA backend (luminal.cuda). Its printer runs everywhere: the CUDA C it
prints for every launch kind is compiled by NVRTC when NVRTC is installed (no
GPU needed). With a GPU, every test taking the ``backend`` fixture also runs on
it (tests/conftest.py); these add the products cuBLAS takes or leaves,
quantized weights, device-resident inputs and generation with a KV cache, all
against numpy, the reference executor or the CPU backend."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest

import luminal as lm
from luminal import quant
from luminal.models import Generator, LlamaConfig, LlamaForCausalLM

gpu = pytest.mark.skipif(not lm.cuda.is_available(), reason="no usable CUDA GPU")


def every_launch_kind() -> lm.Graph:
    """Elementwise, a row form (softmax), a warp reduction (a sum over the
    last axis), a column reduction (a sum over the batch) and a product."""
    cx = lm.Graph()
    x = cx.tensor((4, "s", 64), name="x")
    w = cx.tensor((64, 32), name="w")
    (x.softmax(-1) @ w).relu().sum(1).retrieve()
    x.amax(-1).retrieve()
    x.sum(-1).retrieve()
    x.sum(0).retrieve()
    (x.exp() * 2.0).retrieve()
    cx.compile(lm.GenericCompiler())
    return cx


def test_printer_emits_a_kernel_per_launch_kind() -> None:
    src = lm.cuda.kernel_source(every_launch_kind())
    assert src.count('extern "C" __global__') >= 5
    for piece in ("lm_block_max(", "lm_block_sum(", "lm_warp_sum(acc)", "lm_warp_max(acc)", "LmDims dims", "dims.v[0]"):
        assert piece in src


def llama_graph(fmt: str) -> lm.Graph:
    """A tiny Llama step with the KV cache, its projections stored as ``fmt``."""
    from luminal.models import KVCache

    model = tiny_model(hidden=256 if fmt in quant.K_QUANTS else 64)  # k-quants: rows of 256
    if fmt != "f32":
        for name, p in list(model.named_parameters()):
            if name.endswith("proj.weight"):
                setattr(model.get_submodule(name.rsplit(".", 1)[0]), "weight",
                        lm.nn.QuantizedParameter.from_float(p.data, fmt))
    cx = lm.Graph()
    ids = cx.tensor((1, "seq", model.config.hidden_size), name="embeds")
    cache = KVCache(cx, model.config, batch=1)
    model(ids, cache, last_only=True).retrieve()
    cx.compile(lm.GenericCompiler())
    return cx


def training_graph() -> lm.Graph:
    """An MLP's loss and its gradients (autograd)."""
    cx = lm.Graph()
    x = cx.tensor((8, 16), name="x")
    w1, w2 = cx.parameter((16, 32)), cx.parameter((32, 4))
    loss = ((x @ w1).gelu() @ w2).log_softmax(-1).mean()
    loss.retrieve()
    for g in lm.grad(loss, [w1, w2]):
        g.retrieve()
    cx.compile(lm.GenericCompiler())
    return cx


@pytest.mark.skipif(not lm.cuda.find_library("nvrtc"), reason="NVRTC not installed")
@pytest.mark.parametrize("graph", ["launch_kinds", "llama_f32", *(f"llama_{fmt}" for fmt in quant.QUANTIZED), "training"])
def test_printed_source_compiles_with_nvrtc(graph: str) -> None:
    cx = (every_launch_kind() if graph == "launch_kinds" else training_graph() if graph == "training"
          else llama_graph(graph.split("_", 1)[1]))
    src = lm.cuda.kernel_source(cx)
    if graph.startswith("llama_") and graph != "llama_f32":
        assert f"_{graph.split('_', 1)[1]}(w, c" in src  # the compact-product kernel reads the blocks
    cubin = lm.cuda.compile_source(src, "sm_80")
    assert cubin[:4] == b"\x7fELF"


# The CUDA prelude's device functions are C with LM_FN qualifiers: with these
# shims a host C compiler builds them, so the weight reads run without a GPU.
HOST_SHIMS = """#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define __device__
#define __forceinline__ inline
static inline float __int_as_float(int b) { float f; memcpy(&f, &b, 4); return f; }
"""

LOAD4_CHECK = """
int main(int argc, char** argv) {
  static uint8_t buf[1 << 20];
  FILE* f = fopen(argv[1], "rb");
  fread(buf, 1, sizeof buf, f);
  int rows = atoi(argv[2]), k = atoi(argv[3]), row_bytes = atoi(argv[4]), bad = 0;
  for (int j = 0; j < rows; ++j)
    for (int c = 0; c < k; c += 4) {
      const float* w = (const float*)(buf + (size_t)j * row_bytes);
      float v[4];
      lm_load4_FMT(w, c, v);
      for (int q = 0; q < 4; ++q) {
        float e = lm_load_FMT(w, c + q);
        bad += memcmp(&e, &v[q], 4) != 0;
      }
    }
  printf("%d", bad);
  return 0;
}
"""


HALF_CHECK = """
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
int main(int argc, char** argv) {
#if defined(__SSE__)
  if (argc > 1) _mm_setcsr(_mm_getcsr() | 0x8040); /* flush to zero, denormals are zero */
#endif
  for (uint32_t h = 0; h < 65536; ++h) {
    const unsigned short b = (unsigned short)h;
    const float v = lm_half((const uint8_t*)&b);
    fwrite(&v, 4, 1, stdout);
  }
  return 0;
}
"""


def host_program(tmp_path: Path, main: str) -> Path:
    """The CUDA prelude (up to the reductions) with ``main``, built by gcc for this CPU."""
    src = lm.cuda.kernel_source(llama_graph("f32"))
    prelude = src[:src.index("/* Block-wide reductions")]
    for cuda_only in ("typedef long long int64_t;", "typedef unsigned char uint8_t;",
                      "typedef signed char int8_t;", "typedef unsigned int uint32_t;", "#define exp2f lm_exp2f",
                      "#define INFINITY", "#define NAN"):
        prelude = prelude.replace(cuda_only, "// " + cuda_only)
    (tmp_path / "check.c").write_text(HOST_SHIMS + prelude + main)
    subprocess.run(["gcc", "-O2", "-w", "-o", str(tmp_path / "check"), str(tmp_path / "check.c"), "-lm"], check=True)
    return tmp_path / "check"


@pytest.mark.skipif(not shutil.which("gcc"), reason="no gcc")
@pytest.mark.parametrize("flush", [False, True])
def test_half_widening_is_exact(flush: bool, tmp_path: Path) -> None:
    """lm_half (lm_half_bits, shared with the C printer's fallback): numpy's
    float32 for every one of the 65,536 halves, NaN payloads and subnormals
    included, also with flush-to-zero and denormals-are-zero set."""
    check = host_program(tmp_path, HALF_CHECK)
    out = subprocess.run([str(check)] + (["flush"] if flush else []), check=True, capture_output=True).stdout
    want = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    np.testing.assert_array_equal(np.frombuffer(out, dtype=np.uint32), want.view(np.uint32))


@pytest.mark.skipif(not shutil.which("gcc"), reason="no gcc")
@pytest.mark.parametrize("fmt", list(quant.QUANTIZED))
def test_product_weight_reads_equal_the_elementwise_loads(fmt: str, tmp_path: Path) -> None:
    """lm_load4_<fmt> (the compact-product kernel's 4 values at once, in 16-
    and 32-bit loads) gives lm_load_<fmt>'s bits for every group of a row."""
    check = host_program(tmp_path, LOAD4_CHECK.replace("FMT", fmt))
    rng = np.random.default_rng(4)
    rows, k = 9, 512
    w = (rng.standard_normal((rows, k)) * rng.uniform(0.1, 5, size=(rows, 1))).astype(np.float32)
    w[3, 5], w[4, :40] = 60.0, 0.0  # an outlier and an all-zero block
    quant.quantize(w, fmt).tofile(tmp_path / "w.bin")
    row_bytes = k // quant.BLOCK_VALUES[fmt] * quant.BLOCK_BYTES[fmt]
    out = subprocess.run([str(check), str(tmp_path / "w.bin"), str(rows), str(k), str(row_bytes)],
                         check=True, capture_output=True, text=True).stdout
    assert out == "0"


@pytest.mark.skipif(not lm.cuda.find_library("nvrtc"), reason="NVRTC not installed")
def test_nvrtc_errors_carry_its_log() -> None:
    with pytest.raises(RuntimeError, match="NVRTC failed"):
        lm.cuda.compile_source("__global__ void k() { undeclared(); }", "sm_80")


@pytest.mark.skipif(lm.cuda.is_available(), reason="a GPU is usable here")
def test_no_gpu_is_a_clear_error() -> None:
    assert lm.cuda.unavailable_reason()
    cx = lm.Graph()
    (cx.tensor((2,)) * 2).retrieve()
    with pytest.raises(RuntimeError, match=r"\[CUDACompiler\] no usable CUDA GPU"):
        cx.compile(lm.CUDACompiler())
    with pytest.raises(RuntimeError):
        lm.cuda.device_info()


PRODUCTS = {  # name: (a shape, b shape, transpose b)
    "decode_row": ((1, 96), (96, 40), False),
    "square": ((33, 70), (70, 45), False),
    "linear_wT": ((2, 7, 64), (48, 64), True),
    "batched": ((3, 9, 16), (3, 16, 11), False),
    "broadcast_b": ((5, 6, 16), (16, 8), False),
    "heads": ((2, 4, 10, 8), (2, 4, 8, 10), False),
}


@gpu
@pytest.mark.parametrize("name", list(PRODUCTS))
def test_products_match_numpy(name: str) -> None:
    sa, sb, trans = PRODUCTS[name]
    rng = np.random.default_rng(1)
    a = rng.normal(size=sa).astype(np.float32)
    b = rng.normal(size=sb).astype(np.float32)
    cx = lm.Graph()
    ta, tb = cx.tensor(sa).set(a), cx.tensor(sb).set(b)
    out = (ta @ (tb.transpose(-1, -2) if trans else tb)).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CUDACompiler(), verify=True)
    cx.execute()
    want = a @ (np.swapaxes(b, -1, -2) if trans else b)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)
    if lm.cuda.device_info()["cublas"]:
        assert lm._core.gemm_count(cx._core) >= 1


def few_row_product(name: str, rng: np.random.Generator) -> "tuple[lm.Graph, lm.Tensor, np.ndarray, np.ndarray]":
    """A product with at most 8 rows of A per matrix (the few-row kernels'),
    its float64 result and the sum of |terms| of each output."""
    cx = lm.Graph()

    def data(*shape: int) -> "tuple[lm.Tensor, np.ndarray]":
        x = rng.normal(size=shape).astype(np.float32)
        return cx.tensor(shape).set(x), x.astype(np.float64)

    if name in ("scores", "values"):  # grouped-query decode over a (past, kv heads, head dim) cache
        (q, qn), (cache, cn) = data(2, 3, 64), data(37, 2, 64)
        if name == "scores":
            out, a, b = q @ cache.permute(1, 2, 0), qn, cn.transpose(1, 2, 0)
        else:
            (p, pn) = data(2, 3, 37)
            out, a, b = p @ cache.permute(1, 0, 2), pn, cn.transpose(1, 0, 2)
    else:
        sa, sb, trans = {
            "dot_long": ((1, 2000), (3, 2000), True),      # few columns, long k: chunks of k
            "columns_long": ((5, 3000), (3000, 7), False),
            "columns_wide": ((2, 2, 40), (2, 40, 700), False),
            "dot_batched": ((3, 4, 50), (3, 30, 50), True),
            "eight_rows": ((2, 3, 8, 33), (2, 3, 33, 9), False),  # two batch dims
            "nine_rows": ((9, 33), (33, 9), False),        # one row too many: cuBLAS or the generic kernel
            "one_matrix": ((3, 50), (50, 40), False),      # a weight at decode: cuBLAS or the generic kernel
        }[name]
        (ta, a), (tb, b) = data(*sa), data(*sb)
        if trans:
            tb, b = tb.transpose(-1, -2), np.swapaxes(b, -1, -2)
        if name == "columns_wide":  # B read at an offset, through a slice
            tb, b = tb[:, :, 50:650], b[:, :, 50:650]
        out = ta @ tb
    return cx, out.retrieve(), a @ b, np.abs(a) @ np.abs(b)


@gpu
@pytest.mark.parametrize("name", ["scores", "values", "dot_long", "columns_long", "columns_wide", "dot_batched",
                                  "eight_rows", "nine_rows", "one_matrix"])
def test_few_row_products_match_numpy(name: str) -> None:
    """Products with few rows of A (decode attention over a KV cache, long
    dot products) run kernels of their own: a warp per output column where
    B's columns run along k, a thread per column where its rows run along n,
    and k split into chunks summed in order where the columns are few."""
    cx, out, want, terms = few_row_product(name, np.random.default_rng(4))
    cx.compile(lm.GenericCompiler(), lm.CUDACompiler())
    cx.execute()
    got = out.numpy()
    assert got.shape == want.shape
    # float32 sums: a few ulps of the sum of |terms|; a term lost or counted
    # twice (a chunk, a column) is far more.
    np.testing.assert_array_less(np.abs(got - want), 1e-5 * terms + 1e-30)


@gpu
@pytest.mark.parametrize("fmt", list(quant.QUANTIZED))
@pytest.mark.parametrize("rows", [1, 20])
@pytest.mark.parametrize("long", [False, True])
def test_compact_weight_products_match_the_reference(fmt: str, rows: int, long: bool) -> None:
    """The GPU dequantizes exactly: float64's result within float32 rounding.
    One row runs the product kernel, 20 rows widen W and call cuBLAS (where
    it loaded). Long rows give the kernel's threads several groups of 4
    each, in uneven counts (k is no multiple of the 4 values x threads a
    block takes per step; packed halves end in a part group)."""
    rng = np.random.default_rng(2)
    if fmt in quant.K_QUANTS:
        k = 9 * 256 if long else 256
    else:
        k = (2082 if fmt.endswith("_packed") else 2080) if long else 64
    w = rng.normal(size=(48, k)).astype(np.float32)
    x = rng.normal(size=(rows, k)).astype(np.float32)
    cx = lm.Graph()
    tx = cx.tensor(x.shape).set(x)
    tw = cx.parameter(w.shape, dtype=fmt).set_blocks(quant.quantize(w, fmt))
    out = (tx @ tw.T).retrieve()
    # No verify=True: its fixed tolerance against the reference executor's
    # float32 sums fails where an output of a 2,080-term sum lies near 0 and
    # cuBLAS adds in another order (seen on an H100); the bound below scales
    # with the terms.
    cx.compile(lm.GenericCompiler(), lm.CUDACompiler())
    cx.execute()
    exact = quant.dequantize(quant.quantize(w, fmt), fmt, w.shape).T.astype(np.float64)
    want = x.astype(np.float64) @ exact
    # float32 sums: off by a few ulps of the sum of |terms|; one term wrong or
    # missing is ~1/k of that sum, far more.
    np.testing.assert_array_less(np.abs(out.numpy() - want), 1e-5 * (np.abs(x) @ np.abs(exact)))
    if lm.cuda.device_info()["cublas"]:  # the product may go to cuBLAS (with 20 rows it does)
        assert lm._core.gemm_count(cx._core) == 1


@gpu
def test_inputs_stay_current_on_the_device() -> None:
    """New data of the same size, a new sequence length, and a buffer grown
    in place by append all reach the GPU."""
    cx = lm.Graph()
    x = cx.tensor(("n", 3), name="x")
    w = cx.tensor((3, 2), name="w").set(np.arange(6, dtype=np.float32).reshape(3, 2))
    y = (x @ w).sum(0).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CUDACompiler())
    rng = np.random.default_rng(3)
    for n in (4, 4, 9, 1):
        xs = rng.normal(size=(n, 3)).astype(np.float32)
        x.set(xs)
        cx.set_dim("n", n)
        cx.execute()
        np.testing.assert_allclose(y.numpy(), (xs @ np.arange(6).reshape(3, 2)).sum(0), rtol=1e-5, atol=1e-5)


@gpu
def test_appended_rows_reach_the_next_run() -> None:
    """Rows a run appends to an input (a KV cache's) are copied on the device
    to the end of that input's copy; the next runs read them, a set() of new
    data replaces them, and the host's copy holds the same rows."""
    cx = lm.Graph()
    cache = cx.tensor(("past", 3), name="cache").set(np.zeros((0, 3), np.float32))
    x = cx.tensor(("seq", 3), name="x")
    rows = (x * 2.0 + 1.0).retrieve()
    cx.append(cache, rows)
    seen = (cache * 1.0).sum(0).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CUDACompiler())
    rng = np.random.default_rng(5)
    held = np.zeros((0, 3), np.float32)
    for n in (5, 1, 1, 3, 1):
        if n == 3:  # new data for the cache: uploaded anew
            held = rng.normal(size=(6, 3)).astype(np.float32)
            cache.set(held)
        xs = rng.normal(size=(n, 3)).astype(np.float32)
        x.set(xs)
        cx.set_dim("seq", n)
        cx.execute()
        np.testing.assert_allclose(seen.numpy(), held.sum(0), rtol=1e-5, atol=1e-5)
        held = np.concatenate([held, xs * 2 + 1])
        cx.set_dim("past", len(held))
    np.testing.assert_array_equal(cache.numpy(), held)


def tiny_model(seed: int = 0, hidden: int = 64) -> LlamaForCausalLM:
    cfg = LlamaConfig(vocab_size=97, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    rng = np.random.default_rng(seed)
    model = LlamaForCausalLM(cfg, init=False).eval()
    model.load_state_dict({k: (rng.standard_normal(p.shape) * 0.3 + (p.ndim == 1)).astype(np.float32)
                           for k, p in model.state_dict(keep_vars=True).items()})
    return model


def step_logits(gen: Generator, prompt: List[int], tokens: int) -> tuple[List[int], List[Any]]:
    """Greedy ids and each step's logits (prefill, then one per decoded token)."""
    seen: List[Any] = []
    real_step = gen._step

    def step(ids: Any) -> Any:
        out = real_step(ids)
        seen.append(out.copy())
        return out

    gen._step = step  # type: ignore[method-assign]
    return list(gen.generate_ids(prompt, max_tokens=tokens)), seen


@gpu
def test_generation_on_the_gpu_matches_the_cpu() -> None:
    model = tiny_model()
    prompt = [5, 17, 3, 88, 41, 2, 60]
    (cpu_ids, cpu), (cuda_ids, cuda) = (step_logits(Generator(model, device=d), prompt, 12) for d in ("cpu", "cuda"))
    assert len(cpu_ids) == len(cuda_ids) == 12 and len(cpu) == len(cuda) == 12
    for want, got in zip(cpu, cuda):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    # the prompt in blocks of 3, 3, 1: each block's rows appended on the
    # device after the last ones; then the same tokens, and the last block's
    # logits are the one-block prefill's
    blocks_ids, blocks = step_logits(Generator(model, device="cuda", prefill_chunk=3), prompt, 12)
    assert blocks_ids == cuda_ids and len(blocks) == 3 + 11
    for want, got in zip(cuda, blocks[2:]):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


@gpu
def test_prefix_reuse_on_the_gpu() -> None:
    """A prompt sharing its first ids with the last one: the cache is rolled
    back on the host (the device copy is uploaded again) and only the rest
    runs; the tokens are the CPU's for the whole prompt."""
    from luminal.models.generate import GenerationStats

    model = tiny_model()
    gen = Generator(model, device="cuda")
    first = [5, 17, 3, 88, 41, 2, 60]
    list(gen.generate_ids(first, 5))
    second = first[:4] + [9, 9, 12]
    stats = GenerationStats()
    got = list(gen.generate_ids(second, 6, stats=stats, reuse_prefix=True))
    assert stats.reused_tokens == 4 and stats.prompt_tokens == 3
    assert got == list(Generator(model).generate_ids(second, 6))


@gpu
# One of the newer super-block formats beside Q4_K and Q6_K: they differ only
# in the weight reads, which the product test above checks for every format,
# and each case here runs a whole model on the emulator (CI's stand-in for a GPU).
@pytest.mark.parametrize("fmt", ["q8_0", "q4_0", "q4_k", "q6_k", "iq4_xs", "bf16_packed"])
def test_compact_weight_generation_on_the_gpu_matches_the_reference(fmt: str) -> None:
    """A model with compact projections (nn.quantize_): prefill (11 rows: W
    widened, then cuBLAS) and decode (1 row: the product kernel) give the
    reference executor's logits (all widen the stored weights exactly) and
    its tokens."""
    model = tiny_model(hidden=256 if fmt in quant.K_QUANTS else 64)
    assert lm.nn.quantize_(model, fmt)
    prompt = [5, 17, 3, 88, 41, 2, 60, 9, 33, 71, 12]
    ref_ids, ref = step_logits(Generator(model, compilers=[]), prompt, 6)
    cuda_ids, cuda = step_logits(Generator(model, device="cuda"), prompt, 6)
    assert cuda_ids == ref_ids
    for want, got in zip(ref, cuda):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
