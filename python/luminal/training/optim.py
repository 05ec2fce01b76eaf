"""Optimizers as graph rewrites: ``minimize(loss)`` adds the gradients and the
update of every parameter to the loss's graph, and ``Graph.assign`` feeds the
new values back, so each ``execute()`` is one whole training step (forward,
backward, update) compiled together. The learning rate and the step count
are graph inputs: changing the rate never recompiles.

>>> opt = lm.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
>>> opt.minimize(loss)            # before compile()
>>> cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
>>> for x_batch, y_batch in data:
...     x.set(x_batch); y.set(y_batch); cx.execute()
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Sequence, Union

import numpy as np

from luminal.nn.functional._utils import static_shape
from luminal.tensor import Tensor
from luminal.training.autograd import grad

if TYPE_CHECKING:
    from luminal.graph import Graph
    from luminal.nn.parameter import Parameter

ParamLike = Union["Parameter", Tensor]


def clip_grad_norm(
    grads: Sequence[Tensor], max_norm: float, norm_type: float = 2.0
) -> tuple[list[Tensor], Tensor]:
    """Scale ``grads`` so their joint norm is at most ``max_norm``, like
    ``torch.nn.utils.clip_grad_norm_``: returns (clipped grads, total norm).

    >>> grads, norm = lm.training.clip_grad_norm(lm.grad(loss, params), 1.0)
    """
    if not grads:
        raise ValueError("[clip_grad_norm] no gradients given")
    if norm_type == math.inf:
        total = grads[0].abs().amax()
        for g in grads[1:]:
            total = total.maximum(g.abs().amax())
    else:
        acc = (grads[0].abs() ** norm_type).sum()
        for g in grads[1:]:
            acc = acc + (g.abs() ** norm_type).sum()
        total = acc ** (1.0 / norm_type)
    scale = (max_norm / (total + 1e-6)).minimum(total.graph.constant(1.0))
    return [g * scale for g in grads], total


class Optimizer:
    """Base class: subclasses say how one parameter is updated (``_update``)."""

    def __init__(self, params: Iterable[ParamLike], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"[{type(self).__name__}] got an empty parameter list")
        if lr < 0:
            raise ValueError(f"[{type(self).__name__}] invalid learning rate {lr}")
        self._lr = float(lr)
        self.graph: Graph | None = None
        self._lr_input: Tensor | None = None
        self._step_input: Tensor | None = None
        self._tensors: list[Tensor] = []
        self._state: list[dict[str, Tensor]] = []
        self.grads: list[Tensor] = []
        self.grad_norm: Tensor | None = None

    # ---- learning rate ---------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate; setting it takes effect at the next ``execute()``."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = float(value)
        if self._lr_input is not None:
            # The rate steers the next update only: the last run's results
            # (the loss a training loop prints after sched.step()) stay readable.
            lr = self._lr_input
            lr.graph._set_input(lr._handle, np.array([self._lr], np.float32), keep_results=True)

    @property
    def step_count(self) -> int:
        """Updates applied so far (read from the graph)."""
        if self._step_input is None:
            return 0
        return int(self._step_input.numpy().item())

    # ---- building --------------------------------------------------------------
    def minimize(self, loss: Tensor, max_grad_norm: float | None = None) -> list[Tensor]:
        """Add the gradients of ``loss`` and the update of every parameter to
        ``loss``'s graph; each ``execute()`` then applies one step. With
        ``max_grad_norm`` the gradients are clipped first (``grad_norm`` holds
        the norm before clipping). Returns the gradients (retrieve to read)."""
        tensors = self._bind(loss.graph)
        grads = grad(loss, tensors)
        if max_grad_norm is not None:
            grads, self.grad_norm = clip_grad_norm(grads, max_grad_norm)
        self.apply(grads)
        return grads

    def apply(self, grads: Sequence[Tensor]) -> None:
        """Add the update from given gradients (one per parameter, e.g. after
        your own clipping) instead of ``minimize``'s."""
        if not self._tensors:
            if not grads:
                raise ValueError(f"[{type(self).__name__}] no gradients given")
            self._bind(grads[0].graph)
        if self._lr_input is not None:
            raise RuntimeError(f"[{type(self).__name__}] the update was already added to the graph")
        if len(grads) != len(self._tensors):
            raise ValueError(f"[{type(self).__name__}] got {len(grads)} gradients for "
                             f"{len(self._tensors)} parameters")
        graph = self._tensors[0].graph
        self._lr_input = graph.tensor((), name="optim.lr").set(np.array(self._lr, np.float32))
        self._step_input = graph.tensor((), name="optim.step").set(np.array(0.0, np.float32))
        step = self._step_input + 1.0  # this update's 1-based step number
        graph.assign(self._step_input, step)
        self.grads = list(grads)
        for i, (p, g) in enumerate(zip(self._tensors, grads)):
            if tuple(g.shape) != tuple(p.shape):
                raise ValueError(f"[{type(self).__name__}] gradient {i} has shape {g.shape}, "
                                 f"parameter {p.shape}")
            state: dict[str, Tensor] = {}
            new_p = self._update(p, g.float(), state, step, self._lr_input)
            graph.assign(p, new_p)
            self._state.append(state)

    def _bind(self, graph: Graph) -> list[Tensor]:
        from luminal.nn.parameter import Parameter

        if self._tensors:
            return self._tensors
        self.graph = graph
        for i, p in enumerate(self.params):
            if isinstance(p, Parameter):
                if not p.requires_grad:
                    continue
                t = p.tensor(graph)
            elif isinstance(p, Tensor):
                t = p
            else:
                raise TypeError(f"[{type(self).__name__}] params[{i}] is a {type(p).__name__}, "
                                "not a Parameter or Tensor")
            if t.graph is not graph:
                raise ValueError(f"[{type(self).__name__}] params[{i}] belongs to another graph")
            self._tensors.append(t)
        return self._tensors

    def _state_input(self, p: Tensor, state: dict[str, Tensor], name: str) -> Tensor:
        """A zero-initialized state input shaped like ``p`` (e.g. Adam's m)."""
        shape = _static_shape(p, "a parameter")
        t = p.graph.tensor(shape, name=f"optim.{len(self._state)}.{name}")
        t.set(np.zeros(shape, np.float32))
        state[name] = t
        return t

    def _update(self, p: Tensor, g: Tensor, state: dict[str, Tensor], step: Tensor,
                lr: Tensor) -> Tensor:
        raise NotImplementedError

    # ---- state -----------------------------------------------------------------
    def parameters_now(self) -> list[np.ndarray]:
        """The parameters' current values in the graph (after the updates run)."""
        return [np.array(t.graph._core.read(t._handle, t._view)) for t in self._tensors]

    def sync_parameters(self) -> None:
        """Copy the trained values back into the ``nn.Parameter`` objects, so
        ``model.state_dict()`` and other graphs see them."""
        from luminal.nn.parameter import Parameter

        values = iter(self.parameters_now())
        for p in self.params:
            if isinstance(p, Parameter) and p.requires_grad:
                p.data = next(values)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Optimizer state as flat arrays: "step", "lr", "<i>.<name>"."""
        out = {"step": np.array(float(self.step_count), np.float32),
               "lr": np.array(self._lr, np.float32)}
        for i, state in enumerate(self._state):
            for name, t in state.items():
                out[f"{i}.{name}"] = np.array(t.graph._core.read(t._handle, t._view))
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned (after ``minimize``)."""
        if self._step_input is None:
            raise RuntimeError(f"[{type(self).__name__}] call minimize() before load_state_dict()")
        expected = {"step", "lr"} | {f"{i}.{n}" for i, s in enumerate(self._state) for n in s}
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise KeyError(f"[{type(self).__name__}] optimizer state mismatch: missing "
                           f"{sorted(missing)}, unexpected {sorted(unexpected)}")
        for i, s in enumerate(self._state):
            for name, t in s.items():
                arr = np.asarray(state[f"{i}.{name}"], np.float32)
                if arr.shape != _static_shape(t, "a state tensor"):
                    raise ValueError(f"[{type(self).__name__}] state {i}.{name} has shape "
                                     f"{arr.shape}, expected {t.shape}")
                t.set(arr)
        self._step_input.set(np.asarray(state["step"], np.float32).reshape(()))
        self.lr = float(np.asarray(state["lr"]).reshape(()))


def _static_shape(t: Tensor, what: str) -> tuple[int, ...]:
    return tuple(static_shape(t, f"optim: {what}"))


def _check(name: str, value: float, lo: float, hi: float = math.inf) -> None:
    if not lo <= value < hi:
        raise ValueError(f"invalid {name}: {value}")


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and
    weight decay, with ``torch.optim.SGD``'s update rule.

    >>> opt = lm.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    """

    def __init__(self, params: Iterable[ParamLike], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 maximize: bool = False) -> None:
        super().__init__(params, lr)
        _check("momentum", momentum, 0.0)
        _check("weight_decay", weight_decay, 0.0)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("[SGD] Nesterov momentum requires a momentum and zero dampening")
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize

    def _update(self, p: Tensor, g: Tensor, state: dict[str, Tensor], step: Tensor,
                lr: Tensor) -> Tensor:
        if self.maximize:
            g = -g
        if self.weight_decay:
            g = g + p * self.weight_decay
        if self.momentum:
            buf = self._state_input(p, state, "momentum_buffer")
            first = (step < 1.5).float()  # torch starts the buffer at the first gradient
            blended = buf * self.momentum + g * (1.0 - self.dampening)
            new_buf = first * g + (1.0 - first) * blended
            p.graph.assign(buf, new_buf)
            g = g + new_buf * self.momentum if self.nesterov else new_buf
        return p - lr * g


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``'s rule: L2 weight decay added to the
    gradient, bias-corrected moments, optional AMSGrad).

    >>> opt = lm.optim.Adam(model.parameters(), lr=1e-3)
    """

    decoupled = False

    def __init__(self, params: Iterable[ParamLike], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False) -> None:
        super().__init__(params, lr)
        _check("beta1", betas[0], 0.0, 1.0)
        _check("beta2", betas[1], 0.0, 1.0)
        _check("eps", eps, 0.0)
        _check("weight_decay", weight_decay, 0.0)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.amsgrad, self.maximize = amsgrad, maximize

    def _update(self, p: Tensor, g: Tensor, state: dict[str, Tensor], step: Tensor,
                lr: Tensor) -> Tensor:
        b1, b2 = self.betas
        if self.maximize:
            g = -g
        if self.weight_decay and self.decoupled:
            p = p * (1.0 - lr * self.weight_decay)
        elif self.weight_decay:
            g = g + p * self.weight_decay
        m = self._state_input(p, state, "exp_avg")
        v = self._state_input(p, state, "exp_avg_sq")
        new_m = m * b1 + g * (1.0 - b1)
        new_v = v * b2 + g * g * (1.0 - b2)
        p.graph.assign(m, new_m)
        p.graph.assign(v, new_v)
        if self.amsgrad:
            v_max = self._state_input(p, state, "max_exp_avg_sq")
            new_v = v_max.maximum(new_v)
            p.graph.assign(v_max, new_v)
        # 1 - beta^step as exp2(step * log2(beta)): the step count lives in the graph.
        bias1 = 1.0 - (step * math.log2(b1)).exp2() if b1 > 0 else step * 0.0 + 1.0
        bias2 = 1.0 - (step * math.log2(b2)).exp2() if b2 > 0 else step * 0.0 + 1.0
        denom = new_v.sqrt() / bias2.sqrt() + self.eps
        return p - (lr / bias1) * new_m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``; default 0.01).

    >>> opt = lm.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    """

    decoupled = True

    def __init__(self, params: Iterable[ParamLike], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
