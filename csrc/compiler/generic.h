// Generic graph simplification: passes every backend benefits from. Each pass
// returns nothing and bumps graph.version() only when it changed something.
#pragma once
#include "core/graph.h"

namespace luminal {

// Drop computed nodes no retrieved output needs. Inputs stay, so they can
// still be set.
void remove_unused_nodes(Graph& g);
// Merge nodes with the same op, inputs, views and constant value.
void common_subexpression_elimination(Graph& g);
// Evaluate primitives whose inputs are all (unmasked, numeric) constants.
void constant_folding(Graph& g);
// x+0 and x*1. Not x*0 (inf*0 is NaN) and not recip(recip(x)) (float32
// 1/(1/x) is not x: subnormals overflow, and rounding changes ~1 in 6 values).
void arithmetic_simplification(Graph& g);
// A Contiguous whose input view is already row-major is its input.
void remove_redundant_contiguous(Graph& g);
// All of the above until nothing changes.
void generic_compile(Graph& g);

}  // namespace luminal
