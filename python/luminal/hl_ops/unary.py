"""Elementwise math from Log2, Exp2, Sin, Sqrt and Recip."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from luminal.tensor import Tensor

LOG2_E = 1.0 / math.log(2.0)
LN_2 = math.log(2.0)


class UnaryOps:
    def log2(self: Tensor) -> Tensor:
        """Base-2 logarithm (primitive). ``x.log2()``"""
        return self._apply("Log2")

    def exp2(self: Tensor) -> Tensor:
        """2 to the power x (primitive). ``x.exp2()``"""
        return self._apply("Exp2")

    def sin(self: Tensor) -> Tensor:
        """Sine (primitive). ``x.sin()``"""
        return self._apply("Sin")

    def sqrt(self: Tensor) -> Tensor:
        """Square root (primitive). ``x.sqrt()``"""
        return self._apply("Sqrt")

    def reciprocal(self: Tensor) -> Tensor:
        """1 / x (primitive). ``x.reciprocal()``"""
        return self._apply("Recip")

    def exp(self: Tensor) -> Tensor:
        """e to the power x, as ``exp2(x * log2(e))``. ``x.exp()``"""
        return (self * LOG2_E).exp2()

    def log(self: Tensor) -> Tensor:
        """Natural logarithm, as ``log2(x) * ln(2)``. ``x.log()``"""
        return self.log2() * LN_2

    def cos(self: Tensor) -> Tensor:
        """Cosine, as ``sin(pi/2 - x)``. ``x.cos()``"""
        return (math.pi / 2 - self).sin()

    def rsqrt(self: Tensor) -> Tensor:
        """1 / sqrt(x). ``x.rsqrt()``"""
        return self.sqrt().reciprocal()

    def neg(self: Tensor) -> Tensor:
        """-x. ``x.neg()`` or ``-x``"""
        return self * -1.0

    def __neg__(self: Tensor) -> Tensor:
        return self.neg()
