#pragma once
// Two rewrites of a vectorized inner loop's body (the row form's loops in the
// C printer), each of which gcc needs before it vectorizes a loop that calls
// a libmvec function such as exp2f. It vectorizes such a call only in a loop
// without branches: a load behind a condition (a concatenation's two
// sources, `r < past ? in0[..] : 0`) or an integer division it may not move
// out of the loop (`row % seq`, which could trap) leaves exp2f scalar, ~10x
// slower for a KV-cache softmax.

#include <string>
#include <vector>

#include "compiler/kernel.h"

namespace luminal {

// A range [start, stop) of the loop variable and the body for it.
struct LoopPiece {
  Expr start, stop;
  std::vector<KValue> body;
};

// The body over [0, length) of loop variable `var`, as one piece or two: when
// a load's or guard's validity changes at a point P of `var` (a seam: a
// factor `var < P` or `P <= var`, P not varying with it), one piece on each
// side, with those comparisons resolved to 0 or 1 and `var` known to lie
// below P in the first. Comparisons that hold throughout [0, length) (`var <
// length`) resolve to 1 in every piece.
std::vector<LoopPiece> split_at_seam(const std::vector<KValue>& body, const std::string& var,
                                     const Expr& length);

// The distinct factors of the body's validities that do not vary with `var`
// (a row's own bounds checks, often always 1): a loop printed for the case
// that all are 1 reads without conditions.
std::vector<Expr> invariant_guards(const std::vector<KValue>& body, const std::string& var);

// `body` with each of `guards` taken as 1.
std::vector<KValue> assume_true(std::vector<KValue> body, const std::vector<Expr>& guards);

// Replaces in `body` each largest integer subexpression that does not vary
// with `var` and divides (a row's `row % seq`) by a local named `prefix`N,
// and returns the C declarations of those locals (`indent`ed), computed
// before the loop. A divisor that is 0 there gives 0: the loop reads such a
// value only where it is valid, and a 0 divisor means it is not.
std::string hoist_divisions(std::vector<KValue>& body, const std::string& var,
                            const std::string& prefix, const std::string& indent);

}  // namespace luminal
