// Reverse-mode autodiff as a graph rewrite (DESIGN.md: "even autodiff is a
// compiler"). The backward graph is made of the same 12 primitives as the
// forward one, so it is simplified, fused and compiled with it.
#pragma once
#include <utility>
#include <vector>

#include "core/graph.h"

namespace luminal {

// A tensor in the graph: a handle read through a view.
struct GradValue {
  HandleId handle;
  ShapeTracker view;
};

// Adds the gradient of the scalar `loss` (a handle read through `loss_view`)
// with respect to the row-major output of each node in `wrt`, and returns
// one tensor per entry, shaped like that node. Nodes the loss does not depend
// on get zeros. Throws ShapeError when the loss is not a single element.
std::vector<GradValue> add_gradients(Graph& g, HandleId loss, const ShapeTracker& loss_view,
                                     const std::vector<HandleId>& wrt);

}  // namespace luminal
