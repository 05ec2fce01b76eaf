"""High-level ops: short compositions of the 12 primitives, one file per family.

Each module defines a mixin of ``Tensor`` methods (and the matching free
functions); ``luminal.tensor.Tensor`` inherits them all.
"""
