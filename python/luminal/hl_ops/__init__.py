"""High-level ops: short compositions of the 12 primitives, one file per family.

Each module holds plain functions whose first argument is a tensor; they are
the functional API (``lm.exp(x)``) and ``Tensor`` binds them as methods
(``x.exp()``), so each op is written once.
"""
