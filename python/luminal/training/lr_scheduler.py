"""Learning-rate schedules, with ``torch.optim.lr_scheduler``'s names and
arguments. The rate is a graph input, so a schedule never recompiles: call
``scheduler.step()`` after each ``execute()`` and the next run uses the new rate.

>>> sched = lm.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
>>> for step in range(100):
...     cx.execute(); sched.step()
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from luminal.training.optim import Optimizer


class LRScheduler:
    """Base: ``get_lr()`` gives the rate for the current ``last_epoch``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> float:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The rate in use, as a one-element list like torch's."""
        return [self.optimizer.lr]

    def step(self) -> None:
        """Advance one step (epoch) and set the optimizer's rate."""
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()

    def state_dict(self) -> dict[str, float]:
        return {"last_epoch": self.last_epoch, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.last_epoch = int(state["last_epoch"])
        self.base_lr = float(state["base_lr"])
        self.optimizer.lr = self.get_lr()


class LambdaLR(LRScheduler):
    """base_lr * lr_lambda(epoch). ``LambdaLR(opt, lambda e: 0.95 ** e)``"""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float],
                 last_epoch: int = -1) -> None:
        self.lr_lambda = lr_lambda
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        return self.base_lr * self.lr_lambda(self.last_epoch)


class StepLR(LRScheduler):
    """Multiply by ``gamma`` every ``step_size`` epochs. ``StepLR(opt, 30, 0.1)``"""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if step_size < 1:
            raise ValueError(f"[StepLR] step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply by ``gamma`` at each milestone. ``MultiStepLR(opt, [30, 80])``"""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        passed = sum(1 for m in self.milestones if m <= self.last_epoch)
        return self.base_lr * self.gamma ** passed


class CosineAnnealingLR(LRScheduler):
    """Cosine from base_lr down to ``eta_min`` over ``T_max`` epochs.
    ``CosineAnnealingLR(opt, T_max=1000)``"""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if T_max < 1:
            raise ValueError(f"[CosineAnnealingLR] T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        cos = math.cos(math.pi * self.last_epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + cos) / 2


class LinearLR(LRScheduler):
    """Scale linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` epochs (a warmup). ``LinearLR(opt, 0.01, 1.0, 100)``"""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError("[LinearLR] factors must be in (0, 1]")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        t = min(self.last_epoch, self.total_iters) / max(self.total_iters, 1)
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * t)


class SequentialLR(LRScheduler):
    """Run schedulers one after another, switching at ``milestones``: a warmup
    then a decay. ``SequentialLR(opt, [warmup, cosine], milestones=[100])``"""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int], last_epoch: int = -1) -> None:
        if len(milestones) != len(schedulers) - 1:
            raise ValueError("[SequentialLR] needs one milestone fewer than schedulers")
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        for s in self.schedulers:
            s.base_lr = self.schedulers[0].base_lr
        super().__init__(optimizer, last_epoch)

    def _active(self) -> tuple[LRScheduler, int]:
        start = 0
        for i, m in enumerate(self.milestones):
            if self.last_epoch < m:
                return self.schedulers[i], self.last_epoch - start
            start = m
        return self.schedulers[-1], self.last_epoch - start

    def get_lr(self) -> float:
        sched, epoch = self._active()
        sched.last_epoch = epoch
        return sched.get_lr()
