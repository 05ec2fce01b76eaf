"""Helpers for the luminal.nn tests: run a luminal module and the torch module
it mirrors (same weights through state_dict) on the same inputs."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

import luminal as lm
import luminal.nn as nn


def randn(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (tuple, list)) else [x]


def compare(
    backend: Any,
    ours: nn.Module,
    theirs: torch.nn.Module,
    inputs: Sequence[np.ndarray],
    atol: float = 1e-5,
    rtol: float = 1e-5,
    train: bool = False,
    kwargs: dict[str, Any] | None = None,
    torch_kwargs: dict[str, Any] | None = None,
    int_inputs: Sequence[int] = (),
) -> list[np.ndarray]:
    """Load ``theirs``' weights into ``ours``, run both on ``inputs`` (indices in
    ``int_inputs`` are "i32" index tensors) in train or eval mode, and check
    every output (None outputs must be None in both). Returns ours."""
    ours.train(train)
    theirs.train(train)
    ours.load_state_dict(theirs.state_dict())
    cx = lm.Graph()
    xs = [
        cx.tensor(a.shape, name=f"x{i}", dtype="i32" if i in int_inputs else "f32").set(a)
        for i, a in enumerate(inputs)
    ]
    outs = as_list(ours(*xs, **(kwargs or {})))
    for o in outs:
        if o is not None:
            o.retrieve()
    backend.run(cx)
    with torch.no_grad():
        t_in = [torch.from_numpy(a.astype(np.int64) if i in int_inputs else a.copy()) for i, a in enumerate(inputs)]
        want = as_list(theirs(*t_in, **(torch_kwargs if torch_kwargs is not None else kwargs or {})))
    assert len(outs) == len(want)
    got_all = []
    for i, (o, w) in enumerate(zip(outs, want)):
        if w is None or o is None:
            assert o is None and w is None, f"output {i}: {o} vs torch {w}"
            continue
        got = o.numpy()
        w_np = w.detach().numpy()
        assert got.shape == w_np.shape, f"output {i}: shape {got.shape} != torch {w_np.shape}"
        np.testing.assert_allclose(got, w_np, atol=atol, rtol=rtol, err_msg=f"output {i}")
        got_all.append(got)
    return got_all
