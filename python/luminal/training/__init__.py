"""Training: gradients as graph tensors (``grad``), optimizers that update
parameters inside the graph (``optim``, also ``lm.optim``), learning-rate
schedules and atomic checkpoints."""

from luminal.training import lr_scheduler
from luminal.training.autograd import grad
from luminal.training.checkpoint import load_checkpoint, save_checkpoint
from luminal.training.optim import SGD, Adam, AdamW, Optimizer, clip_grad_norm

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm", "grad", "load_checkpoint",
           "lr_scheduler", "save_checkpoint"]
