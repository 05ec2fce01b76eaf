"""Elementwise math from Log2, Exp2, Sin, Sqrt and Recip."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from luminal.tensor import Tensor

LOG2_E = 1.0 / math.log(2.0)
LN_2 = math.log(2.0)


def log2(x: Tensor) -> Tensor:
    """Base-2 logarithm (primitive). ``x.log2()``"""
    return x._apply("Log2")

def exp2(x: Tensor) -> Tensor:
    """2 to the power x (primitive). ``x.exp2()``"""
    return x._apply("Exp2")

def sin(x: Tensor) -> Tensor:
    """Sine (primitive). ``x.sin()``"""
    return x._apply("Sin")

def sqrt(x: Tensor) -> Tensor:
    """Square root (primitive). ``x.sqrt()``"""
    return x._apply("Sqrt")

def reciprocal(x: Tensor) -> Tensor:
    """1 / x (primitive). ``x.reciprocal()``"""
    return x._apply("Recip")

def exp(x: Tensor) -> Tensor:
    """e to the power x, as ``exp2(x * log2(e))``. ``x.exp()``"""
    return (x * LOG2_E).exp2()

def log(x: Tensor) -> Tensor:
    """Natural logarithm, as ``log2(x) * ln(2)``. ``x.log()``"""
    return x.log2() * LN_2

def cos(x: Tensor) -> Tensor:
    """Cosine, as ``sin(pi/2 - x)``. ``x.cos()``"""
    return (math.pi / 2 - x).sin()

def rsqrt(x: Tensor) -> Tensor:
    """1 / sqrt(x). ``x.rsqrt()``"""
    return x.sqrt().reciprocal()

def neg(x: Tensor) -> Tensor:
    """-x. ``x.neg()`` or ``-x``"""
    return x * -1.0
