"""Helpers for the ``luminal.nn.functional`` tests: ``check_typed`` is
``helpers.check`` with per-input storage dtypes (class indices as "i32",
boolean masks), since ``check`` makes every input float32."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

import luminal as lm
from helpers import assert_close, to_numpy


def check_typed(
    backend: Any,
    data: Sequence[tuple[np.ndarray, str]],
    torch_fn: Callable[..., Any],
    lm_fn: Callable[..., Any],
    atol: float = 1e-5,
    rtol: float = 1e-5,
) -> list[np.ndarray]:
    """``data`` is (array, dtype) pairs: dtype "f32" goes to torch as float32,
    "i32" as int64 (class indices), "bool" to luminal as an "i32" 0/1 input and
    to torch as a bool tensor. Every output must match torch in shape and value."""
    cx = lm.Graph()
    inputs = []
    torch_args = []
    for i, (arr, dt) in enumerate(data):
        a = np.asarray(arr)
        lm_dtype = "i32" if dt in ("i32", "bool") else "f32"
        inputs.append(cx.tensor(a.shape, name=f"x{i}", dtype=lm_dtype).set(a))
        if dt == "i32":
            torch_args.append(torch.from_numpy(a.astype(np.int64)))
        elif dt == "bool":
            torch_args.append(torch.from_numpy(a.astype(bool)))
        else:
            torch_args.append(torch.from_numpy(a.astype(np.float32)))
    out = lm_fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        o.retrieve()
    backend.run(cx)
    expected = torch_fn(*torch_args)
    exps = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    assert len(outs) == len(exps)
    got_all = []
    for i, (o, e) in enumerate(zip(outs, exps)):
        got = o.numpy()
        want = to_numpy(e)
        assert tuple(o.shape) == want.shape, f"output {i}: lazy shape {o.shape} != torch {want.shape}"
        if isinstance(e, torch.Tensor) and e.dtype == torch.int64:
            assert o.dtype == "i32", f"output {i}: dtype {o.dtype}, torch int64"
            np.testing.assert_array_equal(got, e.numpy(), err_msg=f"output {i}")
        else:
            assert_close(got.astype(np.float32), want, atol, rtol, f"output {i}: ")
        got_all.append(got)
    return got_all
