"""Op-test helpers, in the spirit of tinygrad's ``helper_test_op``: build the
same computation in luminal and in PyTorch on the same random data and compare
shapes and values."""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

import luminal as lm

Shape = Sequence[int]

SPECIALS = np.array(
    [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 3.4028235e38, -3.4028235e38],
    dtype=np.float32,
)


def rand(shape: Shape, low: float = -2.0, high: float = 2.0, seed: int = 0) -> np.ndarray:
    """Uniform float32 data (a 0-d array for shape ())."""
    rng = np.random.default_rng(seed)
    return np.asarray(rng.uniform(low, high, size=tuple(shape)), dtype=np.float32)


def to_numpy(x: Any) -> np.ndarray:
    """A torch result (tensor, bool tensor or number) as a float32 numpy array."""
    t = torch.as_tensor(x)
    if t.dtype == torch.bool or not t.is_floating_point():
        t = t.float()
    return t.detach().cpu().numpy().astype(np.float32)


def assert_close(got: np.ndarray, want: np.ndarray, atol: float, rtol: float, what: str = "") -> None:
    assert got.shape == want.shape, f"{what}shape {got.shape} != torch {want.shape}"
    np.testing.assert_allclose(got, want, atol=atol, rtol=rtol, equal_nan=True, err_msg=what)


def _torch_run(
    torch_fn: Callable[..., Any], arrays: Sequence[np.ndarray], grad: bool
) -> tuple[list[torch.Tensor], list[Any]]:
    """torch inputs (requiring grad when ``grad``) and torch's outputs as a list."""
    t_in = [torch.from_numpy(a.copy()).requires_grad_(grad) for a in arrays]
    if grad:
        out = torch_fn(*t_in)
    else:
        with torch.no_grad():
            out = torch_fn(*t_in)
    return t_in, list(out) if isinstance(out, (tuple, list)) else [out]


def _differentiable(e: Any) -> bool:
    return isinstance(e, torch.Tensor) and e.is_floating_point() and e.grad_fn is not None


def run_both(
    backend: Any,
    arrays: Sequence[np.ndarray],
    torch_fn: Callable[..., Any],
    lm_fn: Callable[..., Any],
    grad: bool = True,
    grad_tol: tuple[float, float] = (1e-4, 1e-4),
) -> tuple[list[Any], list[Any]]:
    """``arrays`` fed to ``lm_fn`` as luminal inputs (run on ``backend``) and to
    ``torch_fn`` as torch tensors: both outputs as lists (one output, or a
    tuple/list of them), checked to be of the same length.

    With ``grad`` (and finite float inputs), the backward pass is checked too:
    a random cotangent per differentiable output, and ``lm.grad`` of the
    weighted sum must match ``torch.autograd.grad`` for every input."""
    grad = grad and all(np.isfinite(a).all() for a in arrays)
    try:
        t_in, exps = _torch_run(torch_fn, arrays, grad)
    except RuntimeError:  # e.g. torch_fn works in place on its inputs
        grad = False
        t_in, exps = _torch_run(torch_fn, arrays, grad)

    cx = lm.Graph()
    inputs = [cx.tensor(a.shape, name=f"x{i}").set(a) for i, a in enumerate(arrays)]
    out = lm_fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        assert isinstance(o, lm.Tensor), f"lm_fn returned {type(o).__name__}, not a Tensor"
        o.retrieve()
    assert len(outs) == len(exps), "luminal and torch return different numbers of outputs"

    rng = np.random.default_rng(1234)
    pairs = [(o, e) for o, e in zip(outs, exps) if grad and _differentiable(e)]
    cotangents = [rng.uniform(-1, 1, tuple(e.shape)).astype(np.float32) for _, e in pairs]
    grads: list[lm.Tensor] = []
    if pairs:
        loss = None
        for (o, _), c in zip(pairs, cotangents):
            term = (o.float() * cx.tensor(c.shape).set(c)).sum()
            loss = term if loss is None else loss + term
        assert loss is not None
        grads = [g.retrieve() for g in lm.grad(loss, inputs)]
    backend.run(cx)

    if pairs:
        t_loss = sum((e * torch.from_numpy(c)).sum() for (_, e), c in zip(pairs, cotangents))
        try:
            want = torch.autograd.grad(t_loss, t_in, allow_unused=True)
        except RuntimeError as err:  # torch has no derivative for this op
            if "not implemented" not in str(err):
                raise
            return outs, exps
        for i, (g, w) in enumerate(zip(grads, want)):
            w_np = np.zeros(arrays[i].shape, np.float32) if w is None else to_numpy(w)
            assert_close(g.numpy(), w_np, grad_tol[0], grad_tol[1], f"gradient of input {i}: ")
    return outs, exps


def check(
    backend: Any,
    shapes: Sequence[Shape],
    torch_fn: Callable[..., Any],
    lm_fn: Callable[..., Any],
    atol: float = 1e-5,
    rtol: float = 1e-5,
    low: float = -2.0,
    high: float = 2.0,
    data: Optional[Sequence[Any]] = None,
    seed: int = 0,
    grad: bool = True,
) -> list[np.ndarray]:
    """Random float32 inputs of ``shapes`` (or the given ``data``) fed to
    ``lm_fn`` as luminal inputs and to ``torch_fn`` as torch tensors; every
    output (one, or a tuple/list of them) must match in shape and value.
    Returns luminal's outputs. The gradients are checked as well (see
    ``run_both``); ``grad=False`` for ops torch cannot differentiate."""
    if data is None:
        arrays = [rand(s, low, high, seed + i) for i, s in enumerate(shapes)]
    else:
        arrays = [np.asarray(d, dtype=np.float32) for d in data]
    outs, exps = run_both(backend, arrays, torch_fn, lm_fn, grad=grad,
                          grad_tol=(max(atol, 1e-4), max(rtol, 1e-4)))

    got_all = []
    for i, (o, e) in enumerate(zip(outs, exps)):
        want = to_numpy(e)
        got = o.numpy()
        want_dtype = np.bool_ if isinstance(e, torch.Tensor) and e.dtype == torch.bool else np.float32
        assert got.dtype == want_dtype, f"output {i}: dtype {got.dtype}, torch {e}"
        got = got.astype(np.float32)
        assert tuple(o.shape) == want.shape, f"output {i}: lazy shape {o.shape} != torch {want.shape}"
        assert_close(got, want, atol, rtol, f"output {i}: ")
        got_all.append(got)
    return got_all


def set_gguf_metadata(w: Any, metadata: dict[str, tuple[Any, str]]) -> None:
    """Set GGUF keys on writer ``w`` from ``metadata``: key -> (value,
    GGUFValueType name), an ARRAY's element type taken from its first value.
    Setting a key again overwrites it, so tests write hostile values last."""
    import gguf

    for key, (value, vtype) in metadata.items():
        w.add_key_value(key, value, getattr(gguf.GGUFValueType, vtype),
                        sub_type=gguf.GGUFValueType.get_type(value[0]) if vtype == "ARRAY" else None)


def finish_metadata_gguf(w: Any, metadata: dict[str, tuple[Any, str]]) -> None:
    """Set ``metadata`` last (``set_gguf_metadata``), add one small tensor
    (a GGUF of metadata alone still holds tensors) and write the file."""
    set_gguf_metadata(w, metadata)
    w.add_tensor("x", np.zeros(4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def emulated_int8_product(x: np.ndarray, wq: np.ndarray, fmt: str = "q8_0") -> np.ndarray:
    """What the CPU's int8 products with activations quantized per 32 values
    compute (Q8_0/Q4_0 decode's lm_quant_matmul; prompts' lm_int8_gemm, the
    k-quants' too): activations quantized per 32-block (float scales,
    values rounded half away from zero, a subnormal scale's block to 0),
    dotted in float64 with the stored weights."""
    k = x.shape[-1]
    xb = x.reshape(-1, k // 32, 32).astype(np.float32)
    d = np.abs(xb).max(-1) / np.float32(127)
    with np.errstate(over="ignore"):
        inv = (1 / np.where(d == 0, 1, d)).astype(np.float32)
    inv = np.where((d != 0) & np.isfinite(inv), inv, 0).astype(np.float32)
    xq = np.trunc(xb * inv[..., None] + np.copysign(0.5, xb * inv[..., None]))
    xd = (xq.astype(np.float64) * d[..., None].astype(np.float64)).reshape(-1, k)
    n = wq.size // (k // lm.quant.BLOCK_VALUES[fmt] * lm.quant.BLOCK_BYTES[fmt])
    w = lm.quant.dequantize(wq.reshape(-1), fmt, (n, k)).reshape(n, k).astype(np.float64)
    return (xd @ w.T).reshape(*x.shape[:-1], n).astype(np.float32)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The x86 CPU's /proc/cpuinfo flags (empty elsewhere)."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return frozenset()
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def bf16_tiles_cpu() -> bool:
    """Whether the bf16 tiles run here: AMX-BF16, or AVX512-BF16 without it
    (AMD Zen 4 and 5, Intel Cooper Lake)."""
    return all(f in cpu_flags() for f in ("avx512_bf16", "avx512bw"))


def amx_units() -> bool:
    """Whether the bf16 tiles run on AMX units here (Intel Sapphire Rapids and later)."""
    return bf16_tiles_cpu() and all(f in cpu_flags() for f in ("amx_bf16", "amx_tile"))


def int8_gemm_cpu() -> bool:
    """Whether Q8_0/Q4_0 prompts run the int8 GEMM here (csrc/cpu/c_int8_gemm.cpp):
    AVX512-VNNI without AMX units (AMD Zen 4 and 5, Intel Ice Lake and later)."""
    return all(f in cpu_flags() for f in ("avx512_vnni", "avx512bw")) and not amx_units()


def run_with_amx(monkeypatch: Any, cx: lm.Graph, y: lm.Tensor, amx: Optional[str] = None) -> np.ndarray:
    """y after running cx with LUMINAL_AMX set to ``amx`` (None: unset), the
    switch between the CPU's prompt products (tests of the tiles and the
    int8 GEMM)."""
    if amx is None:
        monkeypatch.delenv("LUMINAL_AMX", raising=False)
    else:
        monkeypatch.setenv("LUMINAL_AMX", amx)
    cx.execute()
    return y.numpy()
