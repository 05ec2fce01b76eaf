"""``grad``: reverse-mode autodiff as a graph rewrite.

The backward graph is built from the same 12 primitives as the forward one
(``csrc/compiler/autograd.cpp``), so gradients are ordinary tensors: retrieve
them, feed them to an optimizer, and they are fused and compiled with the
forward pass.
"""

from __future__ import annotations

from typing import Sequence

from luminal import _core
from luminal._shape import product
from luminal.tensor import Tensor

FLOAT_DTYPES = ("f32", "f16", "bf16")


def grad(loss: Tensor, inputs: Sequence[Tensor]) -> list[Tensor]:
    """Gradients of the scalar ``loss`` with respect to each of ``inputs``,
    like ``torch.autograd.grad``. An input the loss does not depend on gets
    zeros. Nothing is computed until ``graph.execute()``.

    >>> cx = lm.Graph()
    >>> w = cx.parameter((3,)).set([1.0, 2.0, 3.0])
    >>> loss = (w * w).sum()
    >>> (dw,) = lm.grad(loss, [w])
    >>> cx.execute(); dw.retrieve()  # retrieve before execute to read it
    """
    if isinstance(inputs, Tensor):
        raise TypeError("[grad] inputs must be a sequence of tensors: lm.grad(loss, [w])")
    if not isinstance(loss, Tensor):
        raise TypeError(f"[grad] loss must be a Tensor, got {type(loss).__name__}")
    graph = loss.graph
    if loss.dtype not in FLOAT_DTYPES:
        raise TypeError(f"[grad] the loss must be floating point, got dtype {loss.dtype}")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"[grad] inputs[{i}] is a {type(t).__name__}, not a Tensor")
        if t.graph is not graph:
            raise ValueError(f"[grad] inputs[{i}] belongs to another graph than the loss")
        if t.dtype not in FLOAT_DTYPES:
            raise TypeError(f"[grad] inputs[{i}] has dtype {t.dtype}: only floating point "
                            "tensors have gradients")
        whole = graph._core.node_shape(t._handle)
        if not t._view.is_identity or t._view.numel() != product(whole):
            raise ValueError(
                f"[grad] inputs[{i}] is a view (slice, permute, expand, ...) of another "
                "tensor: take the gradient with respect to that tensor and view the result"
            )
    pairs = _core.add_gradients(graph._core, loss._handle, loss._view, [t._handle for t in inputs])
    grads = []
    for t, (handle, view) in zip(inputs, pairs):
        g = Tensor(graph, handle, view, "f32")
        if tuple(view.shape) != tuple(t._view.shape):  # t reshapes its node
            g = g.reshape(t.shape)
        grads.append(g)
    return grads
