"""``lm.optim``: torch-style names for the optimizers in ``luminal.training``.

>>> opt = lm.optim.AdamW(model.parameters(), lr=1e-3)
>>> sched = lm.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.5)
"""

from luminal.optim import lr_scheduler
from luminal.training.optim import SGD, Adam, AdamW, Optimizer, clip_grad_norm

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm", "lr_scheduler"]
