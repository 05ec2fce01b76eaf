"""``lm.optim.lr_scheduler``: the schedules in ``luminal.training.lr_scheduler``."""

from luminal.training.lr_scheduler import (
    CosineAnnealingLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    SequentialLR,
    StepLR,
)

__all__ = ["CosineAnnealingLR", "LRScheduler", "LambdaLR", "LinearLR", "MultiStepLR", "SequentialLR",
           "StepLR"]
