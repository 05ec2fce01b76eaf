"""Training checkpoints: model parameters and optimizer state in one
safetensors file, written atomically (temp file, fsync, rename), so a crash
mid-save leaves the previous checkpoint intact.

>>> lm.training.save_checkpoint("ckpt.safetensors", model, opt)
>>> lm.training.load_checkpoint("ckpt.safetensors", model, opt)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from luminal.io.errors import CheckpointError
from luminal.io.safetensors import load_file, save_file

if TYPE_CHECKING:
    from luminal.nn.module import Module
    from luminal.training.optim import Optimizer

MODEL_PREFIX = "model."
OPTIM_PREFIX = "optimizer."


def save_checkpoint(path: str | os.PathLike[str], model: Module,
                    optimizer: Optimizer | None = None) -> None:
    """Save ``model``'s parameters (the values the graph trained, when an
    optimizer updates them) and ``optimizer``'s state to ``path``."""
    if optimizer is not None and optimizer.graph is not None:
        optimizer.sync_parameters()
    tensors = {MODEL_PREFIX + k: np.asarray(v) for k, v in model.state_dict().items()}
    if optimizer is not None:
        tensors.update({OPTIM_PREFIX + k: v for k, v in optimizer.state_dict().items()})
    save_file(tensors, path, metadata={"format": "luminal-checkpoint"})


def load_checkpoint(path: str | os.PathLike[str], model: Module,
                    optimizer: Optimizer | None = None) -> None:
    """Load what ``save_checkpoint`` wrote: parameters into ``model`` (every
    graph it is bound to sees them) and state into ``optimizer`` (after its
    ``minimize``). Missing or mismatched entries raise naming them."""
    tensors = load_file(path)
    model_state = {k[len(MODEL_PREFIX):]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    if not model_state:
        raise CheckpointError(path, "no model parameters in this checkpoint")
    model.load_state_dict(model_state)
    if optimizer is not None:
        optim_state = {k[len(OPTIM_PREFIX):]: v for k, v in tensors.items()
                       if k.startswith(OPTIM_PREFIX)}
        if not optim_state:
            raise CheckpointError(path, "no optimizer state in this checkpoint")
        optimizer.load_state_dict(optim_state)
