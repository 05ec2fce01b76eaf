#include "compiler/kernel.h"

#include "core/quant.h"

#include <algorithm>
#include <functional>
#include <limits>

namespace luminal {

int64_t unrolled_length(const Node& n);

Expr loop_var(const std::string& name, const Expr& extent) {
  auto n = extent.as_const();
  if (!n) return Expr::loop_index(name, extent);  // x // extent and x % extent fold
  return Expr::var(name, 0, std::max<int64_t>(*n - 1, 0));
}

const std::string Kernel::kIndexVar = "@i";
const std::string Kernel::kReduceVar = "@r";
const std::string Kernel::kOuterVar = "@o";
const std::string Kernel::kInnerVar = "@j";
const std::string Kernel::kRowVar = "@row";
const std::string Kernel::kColVar = "@c";

namespace {

// Row-major multi-index of flat position `p` in `shape`.
std::vector<Expr> unravel(const Expr& p, const Shape& shape) {
  std::vector<Expr> idx(shape.size(), Expr(0));
  // Size-1 dims index 0, and the outermost other dim needs no modulo: p is
  // below the element count. (With a symbolic dim the simplifier cannot see
  // either, and a batch of 1 before "seq" made every index a tower of div/mod.)
  size_t outer = 0;
  while (outer + 1 < shape.size() && shape[outer] == Expr(1)) ++outer;
  Expr stride = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    if (shape[k] == Expr(1)) continue;
    idx[k] = k == outer ? floordiv(p, stride) : mod(floordiv(p, stride), shape[k]);
    stride = stride * shape[k];
  }
  return idx;
}

// The multi-index in `shape` (the source's) that `view` reads at `idx`.
// Only positions inside the view's shape and mask matter (a value read
// outside the mask is guarded to 0), so each compound index idx[k] reads
// through a fresh index t over [0, hi - lo) and idx[k] - lo is put back for
// t afterwards: the simplifier then sees the range (t // n == 0, t % n == t
// for extent n). Unravelled from the view's flat index alone, attention's
// concatenation of the past and new scores read x // seq and x % seq of
// r - past, divisions per element that made that softmax 3x slower.
std::vector<Expr> source_index(const ShapeTracker& view, const std::vector<Expr>& idx,
                               const Shape& shape) {
  std::vector<Expr> at = idx;
  std::vector<std::pair<std::string, Expr>> fresh;  // t's name, idx[k] - lo
  for (size_t k = 0; k < view.rank(); ++k) {
    Expr lo = 0, hi = view.shape()[k];
    if (view.is_masked()) lo = (*view.mask())[k].lo, hi = (*view.mask())[k].hi;
    const bool padded = !(lo == Expr(0) && hi == view.shape()[k]);
    if (!padded && (idx[k].is_const() || idx[k].kind() == Expr::Kind::Var)) continue;
    std::string name = "@t" + std::to_string(k);
    at[k] = lo + loop_var(name, hi - lo);
    fresh.push_back({name, idx[k] - lo});
  }
  std::vector<Expr> out = unravel(view.index_expr(at), shape);
  for (Expr& e : out)
    for (const auto& [name, value] : fresh) e = substitute(e, name, value);
  return out;
}

Expr row_major(const std::vector<Expr>& idx, const Shape& shape) {
  Expr p = 0;
  for (size_t k = 0; k < shape.size(); ++k) p = p * shape[k] + idx[k];
  return p;
}

bool broadcasts(const ShapeTracker& view) {
  for (size_t k = 0; k < view.rank(); ++k) {
    const Expr& s = view.strides()[k];
    if (s.is_const() && s.value() == 0 && !(view.shape()[k].is_const() && view.shape()[k].value() == 1))
      return true;
  }
  return false;
}


// Index math longer than this (in operators) stops inlining: the source is
// stored in a buffer instead and read with a fresh, short index.
constexpr size_t kMaxIndexSize = 64;

struct NeedsBuffer {
  NodeId node;
};
// An elementwise kernel met a reduction it can fuse: build it in row form.
struct NeedsRowForm {};

bool uses(const Expr& e, const std::string& var) { return e.vars().count(var) > 0; }

class KernelBuilder {
 public:
  // `root` is the node this kernel computes: never loaded, always computed.
  KernelBuilder(const Graph& g, const std::vector<bool>& materialized, Kernel& k, NodeId root)
      : g_(g), materialized_(materialized), k_(k), root_(root), body_(&k.body) {}

  // The value of node `id` at logical multi-index `idx`, needed where `need` is 1.
  int value_of(NodeId id, const std::vector<Expr>& idx, const Expr& need) {
    const Node& n = g_.node(id);
    if (n.op == Op::Constant) return constant(n, row_major(idx, n.shape), need);
    if (materialized_[id] && id != root_) return load(id, row_major(idx, n.shape), need);
    if (is_binary(n.op)) {
      int a = read(n.inputs[0], idx, need), b = read(n.inputs[1], idx, need);
      return push({.kind = KValue::Kind::Binary, .op = n.op, .a = a, .b = b});
    }
    if (is_reduce(n.op) && !unrolled_length(n)) return row_reduction(id, idx, need);
    if (is_reduce(n.op)) {  // a tiny reduction, unrolled (see unrolled_length)
      const Edge& e = n.inputs[0];
      int64_t len = *e.view.shape()[size_t(n.axis)].as_const();
      int acc = -1;
      for (int64_t r = 0; r < len; ++r) {
        std::vector<Expr> at = idx;
        at.insert(at.begin() + n.axis, Expr(r));
        int v = read(e, at, need);
        if (acc < 0)
          acc = v;
        else if (n.op == Op::MaxReduce)
          acc = push({.kind = KValue::Kind::Max, .a = acc, .b = v});
        else
          acc = push({.kind = KValue::Kind::Binary, .op = Op::Add, .a = acc, .b = v});
      }
      if (acc >= 0) return acc;
      double empty = n.op == Op::MaxReduce ? -std::numeric_limits<double>::infinity() : 0.0;
      return push({.kind = KValue::Kind::Literal, .literal = empty});
    }
    int a = read(n.inputs[0], idx, need);
    if (n.op == Op::Contiguous) return a;
    return push({.kind = KValue::Kind::Unary, .op = n.op, .a = a});
  }

  // The Mul of this kernel's matrix product: never stored (it is the
  // product's whole input, and a GEMM reads its operands instead), however
  // long the kernel's own index (symbolic dims make it long).
  bool gemm_mul(NodeId id) const {
    return k_.matmul && g_.node(k_.matmul->reduce).inputs[0].node == id;
  }

  // The value a consumer sees through edge `e` at its logical index `idx`.
  int read(const Edge& e, const std::vector<Expr>& idx, const Expr& need) {
    const ShapeTracker& v = e.view;
    Expr valid = v.valid_expr(idx);
    Expr p = v.index_expr(idx);
    const Node& src = g_.node(e.node);
    // Never valid (the far side of a pad or of a stack): 0, without computing
    // the source (a row reduction there would loop for nothing).
    if (valid.is_const() && valid.value() == 0)
      return push({.kind = KValue::Kind::Literal, .literal = 0.0});
    Expr inner_need = logical_and(need, valid);
    int x;
    if (src.op == Op::Constant)
      x = constant(src, p, inner_need);
    else if (materialized_[e.node])
      return load(e.node, p, inner_need);  // the load itself reads 0 when invalid
    else if (!gemm_mul(e.node) && (p.printed_size(kMaxIndexSize) > kMaxIndexSize ||
                                   inner_need.printed_size(kMaxIndexSize) > kMaxIndexSize))
      throw NeedsBuffer{e.node};  // composing views got too long: store this node
    else
      x = value_of(e.node, source_index(v, idx, src.shape), inner_need);
    if (valid.is_const() && valid.value() == 1) return x;
    return push({.kind = KValue::Kind::Guard, .a = x, .valid = valid});
  }

 private:
  // Constant `n` at element `flat` of its shape, needed where `need` is 1
  // (an iota's index math is computed only there).
  int constant(const Node& n, const Expr& flat, const Expr& need) {
    if (is_iota(n))
      return push({.kind = KValue::Kind::DimValue, .valid = need,
                   .dim = substitute(*n.symbolic, kElementVar, flat)});
    if (n.symbolic) return push({.kind = KValue::Kind::DimValue, .dim = *n.symbolic});
    return push({.kind = KValue::Kind::Literal, .literal = n.value});
  }

  // Reduction node `id` (not stored) at `idx`, as a RowValue: only in a row
  // form kernel, and only when `idx` names one value per row.
  int row_reduction(NodeId id, const std::vector<Expr>& idx, const Expr& need) {
    if (k_.reduce) throw NeedsBuffer{id};  // a reduction kernel stores what it reads
    if (!k_.row_form) throw NeedsRowForm{};
    const Node& n = g_.node(id);
    Expr flat = row_major(idx, n.shape);
    auto row_uniform = [](const Expr& e) {
      return !uses(e, Kernel::kColVar) && !uses(e, Kernel::kReduceVar);
    };
    if (!row_uniform(flat) || !row_uniform(need)) throw NeedsBuffer{id};
    // More kernel rows than reduction results: some are computed again for
    // several rows (a per-feature statistic broadcast over a batch); store it.
    Shape host_rows(k_.shape.begin(), k_.shape.end() - (k_.shape.empty() ? 0 : 1));
    if (generic_magnitude(product(host_rows)) > generic_magnitude(product(n.shape)))
      throw NeedsBuffer{id};
    for (size_t j = 0; j < k_.row_reductions.size(); ++j) {
      const RowReductionKey& key = row_reduction_of_[j];
      if (key.node == id && key.row == flat && key.need == need)  // same guard, same loads
        return push({.kind = KValue::Kind::RowValue, .a = int(j)});
    }
    const Edge& e = n.inputs[0];
    RowReduction rr{n.op, e.view.shape()[size_t(n.axis)], {}, -1};
    std::vector<Expr> at = idx;
    at.insert(at.begin() + n.axis, loop_var(Kernel::kReduceVar, rr.length));
    std::vector<KValue>* outer = body_;
    body_ = &rr.body;
    rr.result = read(e, at, need);  // nested row reductions land first
    body_ = outer;
    for (const KValue& v : rr.body)
      if (uses(v.index, Kernel::kColVar) || uses(v.valid, Kernel::kColVar) ||
          uses(v.dim, Kernel::kColVar))
        throw NeedsBuffer{id};
    k_.row_reductions.push_back(std::move(rr));
    row_reduction_of_.push_back({id, flat, need});
    return push({.kind = KValue::Kind::RowValue, .a = int(k_.row_reductions.size() - 1)});
  }

  int load(NodeId id, const Expr& index, const Expr& valid) {
    auto it = std::find(k_.inputs.begin(), k_.inputs.end(), id);
    int buffer = int(it - k_.inputs.begin());
    if (it == k_.inputs.end()) k_.inputs.push_back(id);
    return push({.kind = KValue::Kind::Load, .buffer = buffer, .index = index, .valid = valid});
  }

  // Append a value, reusing an identical earlier one (CSE inside the kernel).
  int push(KValue v) {
    std::vector<KValue>& body = *body_;
    for (size_t j = 0; j < body.size(); ++j) {
      const KValue& o = body[j];
      if (o.kind == v.kind && o.op == v.op && o.a == v.a && o.b == v.b && o.buffer == v.buffer &&
          o.index == v.index && o.valid == v.valid && o.dim == v.dim &&
          (o.literal == v.literal || (o.literal != o.literal && v.literal != v.literal)))
        return int(j);
    }
    body.push_back(std::move(v));
    return int(body.size() - 1);
  }

  const Graph& g_;
  const std::vector<bool>& materialized_;
  Kernel& k_;
  NodeId root_;
  std::vector<KValue>* body_;  // where values go: the kernel's body or a row reduction's
  struct RowReductionKey {
    NodeId node;
    Expr row, need;
  };
  std::vector<RowReductionKey> row_reduction_of_;  // per row reduction: what it computes
};

}  // namespace

// The constant length of a reduction small enough to unroll in place, else 0.
// Sums unroll only up to 2 terms: a float a+b rounds exactly like the
// reference's double accumulator, a longer float sum may not.
int64_t unrolled_length(const Node& n) {
  if (!is_reduce(n.op)) return 0;
  auto len = n.inputs[0].view.shape()[size_t(n.axis)].as_const();
  if (!len || *len < 1) return 0;
  return *len <= (n.op == Op::MaxReduce ? 8 : 2) ? *len : 0;
}

std::vector<bool> materialized_nodes(const Graph& g, const std::vector<bool>& needed) {
  // Inlined expressions bigger than this are stored once rather than
  // recomputed for every extra reader or broadcast copy...
  constexpr int64_t kMaxRecompute = 12;
  // ...except elementwise ones (no reduction inside, never read broadcast)
  // over at most kFewLeaves stored buffers, recomputed up to this size. Kernels are memory-bound: a
  // stored value costs a write plus a read per reader, while recomputing it
  // reads leaves its readers mostly load anyway (GELU's backward read ten
  // stored erf-polynomial terms; now it reads x, its bias and the gradient).
  // More leaves would add loads per reader: a chain of partial sums would
  // be re-read by every later kernel.
  constexpr int64_t kMaxElementwiseRecompute = 48;
  std::vector<int> readers = reader_counts(g, needed);
  std::vector<bool> broadcast_read(g.node_slots(), false);
  for (NodeId id = 0; id < NodeId(g.node_slots()); ++id)
    if (needed[id])
      for (const Edge& e : g.node(id).inputs)
        if (broadcasts(e.view)) broadcast_read[e.node] = true;
  // Matrix products read their operands from buffers, so a library GEMM can run them.
  std::vector<bool> gemm_operand(g.node_slots(), false), gemm(g.node_slots(), false);
  for (NodeId id = 0; id < NodeId(g.node_slots()); ++id) {
    if (!needed[id]) continue;
    if (auto m = match_matmul(g, id, readers)) {
      gemm_operand[m->a] = gemm_operand[m->b] = true;
      gemm[id] = true;
    }
  }
  std::vector<bool> out(g.node_slots(), false);
  std::vector<int64_t> size(g.node_slots(), 0);  // ops inlined when this node is read
  std::vector<bool> reduces(g.node_slots(), false);  // a reduction is inlined with it
  // Computed from row reductions and constants alone (softmax's shift): one
  // value per row, which a row form kernel computes once, before the row.
  std::vector<bool> row_value(g.node_slots(), false);
  // The stored buffers an inlined node reads (up to kFewLeaves + 1 of them).
  constexpr size_t kFewLeaves = 3;
  std::vector<std::vector<NodeId>> leaves(g.node_slots());
  auto add_leaves = [&](std::vector<NodeId>& into, const std::vector<NodeId>& from) {
    for (NodeId l : from) {
      if (into.size() > kFewLeaves) return;
      if (std::find(into.begin(), into.end(), l) == into.end()) into.push_back(l);
    }
  };
  // Arithmetic and comparisons of element indices and constants, and log2
  // of a comparison (a mask's 0 / -inf, printed as a select): a causal or
  // window mask built from iotas costs its reader next to nothing, as a
  // constant does.
  std::vector<bool> index_math(g.node_slots(), false), comparison(g.node_slots(), false);
  for (NodeId id : g.topo_order()) {
    if (!needed[id]) continue;
    const Node& n = g.node(id);
    if (n.op == Op::Constant) {
      out[id] = g.outputs().count(id) > 0;
      index_math[id] = true;
      continue;
    }
    bool of_indices = true;
    for (const Edge& e : n.inputs) of_indices = of_indices && !out[e.node] && index_math[e.node];
    comparison[id] = n.op == Op::LessThan ||
                     (n.op == Op::Mul && comparison[n.inputs[0].node] && comparison[n.inputs[1].node]);
    index_math[id] = of_indices && (is_binary(n.op) || (n.op == Op::Log2 && comparison[n.inputs[0].node]));
    int64_t own = 1;
    reduces[id] = is_reduce(n.op);
    for (const Edge& e : n.inputs) {
      own += out[e.node] ? 1 : index_math[e.node] ? 0 : size[e.node];
      reduces[id] = reduces[id] || (!out[e.node] && reduces[e.node]);
      if (out[e.node]) add_leaves(leaves[id], {e.node});
      else add_leaves(leaves[id], leaves[e.node]);
    }
    if (int64_t len = unrolled_length(n)) own = own * len;
    // A row reduction is computed once per row of the kernel it fuses into:
    // for its readers it costs like a stored value.
    bool row_reduction = is_reduce(n.op) && size_t(n.axis) + 1 == n.inputs[0].view.rank() &&
                         !gemm[id] && !unrolled_length(n);
    bool from_rows = !is_reduce(n.op) || unrolled_length(n), any_row = false;
    for (const Edge& e : n.inputs) {
      any_row = any_row || (!out[e.node] && row_value[e.node]);
      const Node& src = g.node(e.node);
      bool uniform = src.op == Op::Constant && !is_iota(src);
      from_rows = from_rows && ((!out[e.node] && row_value[e.node]) || uniform);
    }
    from_rows = from_rows && any_row;
    row_value[id] = row_reduction || from_rows;
    size[id] = row_value[id] ? 1 : own;
    bool shared = readers[id] > 1 || broadcast_read[id];
    // A reduction over the last axis may fuse into its elementwise readers
    // as a row reduction; the kernel builder stores it when it cannot.
    out[id] = n.op == Op::Input || g.outputs().count(id) || gemm_operand[id] ||
              (is_reduce(n.op) && !unrolled_length(n) && !row_reduction) ||
              (shared && own > (!reduces[id] && !broadcast_read[id] &&
                                        leaves[id].size() <= kFewLeaves
                                    ? kMaxElementwiseRecompute : kMaxRecompute));
  }
  return out;
}

namespace {

// The kernel computing node `id`; throws NeedsBuffer when an inlined source
// must be stored first.
Kernel build_one(const Graph& g, NodeId id, const std::vector<bool>& materialized,
                 const std::vector<int>& readers, bool row_form) {
  const Node& n = g.node(id);
  Kernel k;
  k.output = id;
  k.shape = n.shape;
  std::vector<Expr> idx;
  if (row_form) {
    k.row_form = true;
    Shape rows(n.shape.begin(), n.shape.end() - (n.shape.empty() ? 0 : 1));
    idx = unravel(loop_var(Kernel::kRowVar, product(rows)), rows);
    if (!n.shape.empty()) {
      k.row_length = n.shape.back();
      bool one = k.row_length == Expr(1);  // a size-1 row: its one column is 0, not a variable
      idx.push_back(one ? Expr(0) : loop_var(Kernel::kColVar, k.row_length));
    }
  } else {
    idx = unravel(loop_var(Kernel::kIndexVar, product(n.shape)), n.shape);
  }
  KernelBuilder b(g, materialized, k, id);
  if (is_reduce(n.op) && !unrolled_length(n)) {  // a tiny one unrolls: an elementwise kernel
    const Edge& e = n.inputs[0];
    k.reduce = n.op;
    k.matmul = match_matmul(g, id, readers);
    k.reduce_length = e.view.shape()[size_t(n.axis)];
    k.reduce_inner = product(Shape(n.shape.begin() + n.axis, n.shape.end()));
    k.reduce_outer = product(Shape(n.shape.begin(), n.shape.begin() + n.axis));
    idx.insert(idx.begin() + n.axis, loop_var(Kernel::kReduceVar, k.reduce_length));
    b.read(e, idx, Expr(1));
  } else {
    b.value_of(id, idx, Expr(1));
  }
  return k;
}

}  // namespace

std::vector<Kernel> build_kernels(const Graph& g) {
  std::vector<bool> needed = g.needed_by_outputs();
  std::vector<bool> materialized = materialized_nodes(g, needed);
  std::vector<int> readers = reader_counts(g, needed);
  std::vector<Kernel> kernels;
  // A kernel whose inlined index math grows too long stores that source
  // first: its kernel goes before this one (it is a producer), then retry.
  // Elementwise kernels over rows of 16+ elements loop rows, then columns:
  // a broadcast operand's index becomes the column (a bias) or the row (a
  // row statistic) instead of div/mod of a flat index, which vectorized as
  // gathers. Enough rows are needed to split over the cores.
  auto prefer_row_form = [&](const Node& n) {
    if ((is_reduce(n.op) && !unrolled_length(n)) || n.shape.size() < 2) return false;
    Expr rows = product(Shape(n.shape.begin(), n.shape.end() - 1));
    return generic_magnitude(n.shape.back()) >= 16 && generic_magnitude(rows) >= 16;
  };
  std::function<void(NodeId)> emit = [&](NodeId id) {
    bool row_form = prefer_row_form(g.node(id));
    for (;;) {
      try {
        Kernel k = build_one(g, id, materialized, readers, row_form);
        // A GEMM reads the product's operands, not the kernel's inputs: only
        // when they are the same buffers (the Mul inlined) may a backend call one.
        if (k.matmul && (std::find(k.inputs.begin(), k.inputs.end(), k.matmul->a) == k.inputs.end() ||
                         std::find(k.inputs.begin(), k.inputs.end(), k.matmul->b) == k.inputs.end()))
          k.matmul.reset();
        for (NodeId in : k.inputs) {
          const Node& src = g.node(in);
          k.input_formats.push_back(src.op == Op::Input && quant_format(src.dtype) ? src.dtype
                                                                                  : "");
        }
        kernels.push_back(std::move(k));
        return;
      } catch (const NeedsBuffer& more) {
        materialized[more.node] = true;
        emit(more.node);
        row_form = prefer_row_form(g.node(id));  // the stored node may have been the reason
      } catch (const NeedsRowForm&) {
        row_form = true;
      }
    }
  };
  for (NodeId id : g.topo_order()) {
    const Node& n = g.node(id);
    if (needed[id] && materialized[id] && n.op != Op::Input && n.op != Op::Constant) emit(id);
  }
  return kernels;
}

}  // namespace luminal
