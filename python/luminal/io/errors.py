"""Errors raised by the model-file readers in :mod:`luminal.io`."""

from __future__ import annotations

import os
from typing import Union

__all__ = ["CheckpointError", "short_repr"]

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


def short_repr(value: object, limit: int = 60) -> str:
    """repr() clipped for error messages, since file contents are untrusted."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<{value.bit_length()}-bit integer>"
    if isinstance(value, list) and len(value) > 16:
        return f"<list of {len(value)} items>"
    try:
        text = repr(value)
    except ValueError:  # ints beyond sys.get_int_max_str_digits()
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
