"""Op-test helpers, in the spirit of tinygrad's ``helper_test_op``: build the
same computation in luminal and in PyTorch on the same random data and compare
shapes and values."""

from __future__ import annotations

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


def run_both(
    backend: Any, arrays: Sequence[np.ndarray], torch_fn: Callable[..., Any], lm_fn: Callable[..., Any]
) -> tuple[list[Any], list[Any]]:
    """``arrays`` fed to ``lm_fn`` as luminal inputs (run on ``backend``) and to
    ``torch_fn`` as torch tensors: both outputs as lists (one output, or a
    tuple/list of them), checked to be of the same length."""
    cx = lm.Graph()
    inputs = [cx.tensor(a.shape, name=f"x{i}").set(a) for i, a in enumerate(arrays)]
    out = lm_fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        assert isinstance(o, lm.Tensor), f"lm_fn returned {type(o).__name__}, not a Tensor"
        o.retrieve()
    backend.run(cx)

    expected = torch_fn(*[torch.from_numpy(a.copy()) for a in arrays])
    exps = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    assert len(outs) == len(exps), "luminal and torch return different numbers of outputs"
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
) -> list[np.ndarray]:
    """Random float32 inputs of ``shapes`` (or the given ``data``) fed to
    ``lm_fn`` as luminal inputs and to ``torch_fn`` as torch tensors; every
    output (one, or a tuple/list of them) must match in shape and value.
    Returns luminal's outputs."""
    if data is None:
        arrays = [rand(s, low, high, seed + i) for i, s in enumerate(shapes)]
    else:
        arrays = [np.asarray(d, dtype=np.float32) for d in data]
    outs, exps = run_both(backend, arrays, torch_fn, lm_fn)

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
