"""Errors raised by the model-file readers in :mod:`luminal.io`."""

from __future__ import annotations

import os
from typing import Union

__all__ = ["CheckpointError"]

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(ValueError):
    """A model file is truncated, corrupt or not what it claims.

    The message always starts with the file path, then says what is wrong::

        >>> str(CheckpointError("model.safetensors", "header length 0 is not positive"))
        'model.safetensors: header length 0 is not positive'

    ``path`` and ``problem`` are also kept as attributes, so callers can
    report either part on its own.
    """

    path: str
    problem: str

    def __init__(self, path: PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    # BaseException pickles ``self.args`` (the one formatted message), which
    # would not match this two-argument constructor on unpickling.
    def __reduce__(self) -> tuple[type[CheckpointError], tuple[str, str]]:
        return (type(self), (self.path, self.problem))
