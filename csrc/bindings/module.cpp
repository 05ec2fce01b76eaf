// Python bindings: thin wrappers only; no logic lives here.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/set.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unordered_map.h>
#include <nanobind/stl/vector.h>

#include "compiler/autograd.h"
#include "compiler/generic.h"
#include "compiler/matmul_pattern.h"
#include "core/errors.h"
#include "core/first_difference.h"
#include "core/graph.h"
#include "core/host_buffer.h"
#include "core/interrupt.h"
#include "cpu/blas.h"
#include "cpu/cpu_program.h"
#include "cpu/jit.h"
#include "cuda/cuda_api.h"
#include "cuda/cuda_printer.h"
#include "cuda/cuda_program.h"

namespace nb = nanobind;
using namespace nb::literals;
using namespace luminal;

namespace {

nb::ndarray<nb::numpy, float> to_numpy(Buffer buf) {
  // The array owns a copy-free handle on the buffer's vector.
  auto* keep = new std::shared_ptr<const std::vector<float>>(buf.data);
  nb::capsule owner(keep, [](void* p) noexcept {
    delete static_cast<std::shared_ptr<const std::vector<float>>*>(p);
  });
  std::vector<size_t> shape(buf.shape.begin(), buf.shape.end());
  return nb::ndarray<nb::numpy, float>(const_cast<float*>(buf.data->data()), shape.size(),
                                       shape.data(), owner);
}

nb::list node_table(const Graph& g) {
  nb::list out;
  for (NodeId id : g.topo_order()) {
    const Node& n = g.node(id);
    nb::dict d;
    d["id"] = id;
    d["op"] = op_name(n.op);
    nb::list inputs, views;
    for (const Edge& e : n.inputs) {
      inputs.append(e.node);
      views.append(e.view.is_identity() ? std::string() : e.view.str());
    }
    d["inputs"] = inputs;
    d["views"] = views;
    d["shape"] = shape_str(n.shape);
    d["axis"] = n.axis;
    d["name"] = n.name;
    d["dtype"] = n.dtype;
    d["parameter"] = n.parameter;
    d["value"] = is_iota(n)    ? nb::cast(std::string("iota"))
                 : n.symbolic ? nb::cast(n.symbolic->str())
                              : nb::cast(n.value);
    d["output"] = bool(g.outputs().count(id));
    out.append(d);
  }
  return out;
}

// Structural equality with anything: ints compare as constants, others unequal.
bool expr_equals(const Expr& a, nb::handle b) {
  Expr e;
  return nb::try_cast<Expr>(b, e) && a == e;
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "luminal's C++ core: symbolic dims, shape trackers, the graph, executor, passes";

  nb::exception<ShapeError>(m, "ShapeError", PyExc_ValueError);
  nb::exception<UnboundDimError>(m, "UnboundDimError", PyExc_RuntimeError);
  nb::exception<ExecutionError>(m, "ExecutionError", PyExc_RuntimeError);
  // Ctrl-C (or any signal whose Python handler raises) ends a running
  // execute() between kernels, raising the handler's exception there. Python
  // runs signal handlers in its main thread only, so other threads never
  // wait for the GIL here.
  static const unsigned long main_thread =
      nb::cast<unsigned long>(nb::module_::import_("threading").attr("main_thread")().attr("ident"));
  set_interrupt_check([] {
    if (PyThread_get_thread_ident() != main_thread) return;
    nb::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw nb::python_error();
  });

  nb::class_<Expr>(m, "Expr", "A symbolic integer expression over named dims.")
      .def(nb::init<int64_t>(), "value"_a)
      .def_static("var", [](const std::string& n) { return Expr::var(n); }, "name"_a)
      .def_prop_ro("is_const", &Expr::is_const)
      .def("as_const", &Expr::as_const)
      .def("eval", &Expr::eval, "dims"_a)
      .def("vars", &Expr::vars)
      .def("__add__", [](const Expr& a, const Expr& b) { return a + b; })
      .def("__radd__", [](const Expr& a, const Expr& b) { return b + a; })
      .def("__sub__", [](const Expr& a, const Expr& b) { return a - b; })
      .def("__rsub__", [](const Expr& a, const Expr& b) { return b - a; })
      .def("__mul__", [](const Expr& a, const Expr& b) { return a * b; })
      .def("__rmul__", [](const Expr& a, const Expr& b) { return b * a; })
      .def("__floordiv__", [](const Expr& a, const Expr& b) { return floordiv(a, b); })
      .def("__rfloordiv__", [](const Expr& a, const Expr& b) { return floordiv(b, a); })
      .def("__mod__", [](const Expr& a, const Expr& b) { return mod(a, b); })
      .def("__rmod__", [](const Expr& a, const Expr& b) { return mod(b, a); })
      .def("__neg__", [](const Expr& a) { return -a; })
      .def("min", [](const Expr& a, const Expr& b) { return min(a, b); })
      .def("max", [](const Expr& a, const Expr& b) { return max(a, b); })
      .def("lt", [](const Expr& a, const Expr& b) { return lt(a, b); })
      .def("__eq__", [](const Expr& a, nb::handle b) { return expr_equals(a, b); },
           nb::arg("other").none())
      .def("__ne__", [](const Expr& a, nb::handle b) { return !expr_equals(a, b); },
           nb::arg("other").none())
      .def("__hash__", &Expr::hash)
      .def("__str__", &Expr::str)
      .def("__repr__", &Expr::str);
  nb::implicitly_convertible<int64_t, Expr>();

  nb::class_<ShapeTracker>(m, "ShapeTracker", "A view: shape, strides, offset and mask.")
      .def_static("contiguous", &ShapeTracker::contiguous, "shape"_a)
      .def_prop_ro("shape", &ShapeTracker::shape)
      .def_prop_ro("strides", &ShapeTracker::strides)
      .def_prop_ro("offset", &ShapeTracker::offset)
      .def_prop_ro("is_identity", &ShapeTracker::is_identity)
      .def_prop_ro("is_masked", &ShapeTracker::is_masked)
      .def("numel", &ShapeTracker::numel)
      .def("permute", &ShapeTracker::permute, "axes"_a)
      .def("expand", &ShapeTracker::expand, "shape"_a)
      .def("unsqueeze", &ShapeTracker::unsqueeze, "axis"_a)
      .def("slice", &ShapeTracker::slice, "axis"_a, "start"_a, "stop"_a, "step"_a)
      .def("pad", &ShapeTracker::pad, "axis"_a, "before"_a, "after"_a)
      .def("flip", &ShapeTracker::flip, "axis"_a)
      .def("reshape", &ShapeTracker::reshape, "shape"_a)
      .def("index_expr", &ShapeTracker::index_expr, "index"_a)
      .def("valid_expr", &ShapeTracker::valid_expr, "index"_a)
      .def("__eq__", &ShapeTracker::operator==)
      .def("__eq__", [](const ShapeTracker&, nb::handle) { return false; }, nb::arg("other").none())
      .def("__repr__", &ShapeTracker::str);

  nb::class_<Graph>(m, "Graph", "The graph core: nodes, handles, data and the executor.")
      .def(nb::init<>())
      .def("clone", [](const Graph& g) { return Graph(g); })
      .def("add_input", &Graph::add_input, "shape"_a, "name"_a, "dtype"_a, "parameter"_a)
      .def("add_constant", &Graph::add_constant, "value"_a)
      .def("add_symbolic_constant", &Graph::add_symbolic_constant, "value"_a)
      .def("add_iota", &Graph::add_iota, "n"_a)
      .def(
          "add_op",
          [](Graph& g, const std::string& op,
             const std::vector<std::pair<HandleId, ShapeTracker>>& inputs, int axis) {
            return g.add_op(op_from_name(op), inputs, axis);
          },
          "op"_a, "inputs"_a, "axis"_a = -1)
      .def("retrieve", &Graph::retrieve, "handle"_a)
      .def("set_dim", &Graph::set_dim, "name"_a, "value"_a)
      .def_prop_ro("dims", [](const Graph& g) { return g.dims(); })
      .def(
          "set_input",
          [](Graph& g, HandleId h,
             nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu> data,
             bool keep_results) {
            auto buf = copy_to_host_buffer(data.data(), size_t(data.shape(0)));
            g.set_input(h, std::move(buf), keep_results);
          },
          "handle"_a, "data"_a, "keep_results"_a = false)
      .def("share_input", [](Graph& g, const Graph& from, HandleId h) {
        NodeId id = from.node_of(h);
        auto it = from.input_data().find(id);
        if (it != from.input_data().end()) g.set_input(h, it->second);
      })
      .def("assign", &Graph::assign, "target"_a, "value"_a)
      .def("append", &Graph::append, "target"_a, "rows"_a, "rows_shape"_a = nb::none())
      .def("truncate_input", &Graph::truncate_input, "h"_a, "count"_a)
      .def("execute", &Graph::execute, nb::call_guard<nb::gil_scoped_release>())
      .def(
          "read",
          [](const Graph& g, HandleId h, const ShapeTracker& view) {
            Buffer b;
            {
              nb::gil_scoped_release release;
              b = g.read(h, view);
            }
            return to_numpy(std::move(b));
          },
          "handle"_a, "view"_a)
      .def("node_shape", [](const Graph& g, HandleId h) { return g.node(g.node_of(h)).shape; })
      .def("node_of", &Graph::node_of, "handle"_a)
      .def("is_input", [](const Graph& g, HandleId h) {
        return g.node(g.node_of(h)).op == Op::Input;
      })
      .def("node_count", &Graph::live_node_count)
      .def("handle_count", &Graph::handle_count)
      .def_prop_ro("version", &Graph::version)
      .def("nodes", &node_table);

  m.def(
      "add_gradients",
      [](Graph& g, HandleId loss, const ShapeTracker& loss_view,
         const std::vector<HandleId>& wrt) {
        std::vector<std::pair<HandleId, ShapeTracker>> out;
        for (GradValue& v : add_gradients(g, loss, loss_view, wrt))
          out.emplace_back(v.handle, std::move(v.view));
        return out;
      },
      "graph"_a, "loss"_a, "loss_view"_a, "wrt"_a);
  m.def("remove_unused_nodes", &remove_unused_nodes);
  m.def("common_subexpression_elimination", &common_subexpression_elimination);
  m.def("constant_folding", &constant_folding);
  m.def("arithmetic_simplification", &arithmetic_simplification);
  m.def("remove_redundant_contiguous", &remove_redundant_contiguous);
  m.def("generic_compile", &generic_compile);
  m.def(
      "cpu_compile",
      [](Graph& g, bool bf16_float_products) {
        std::shared_ptr<CPUProgram> p;
        {
          nb::gil_scoped_release release;  // the C compiler may take a moment
          dense_matmul_operands(g);
          p = CPUProgram::compile(g, bf16_float_products);
        }
        g.set_program(std::move(p));
      },
      "graph"_a, "bf16_float_products"_a = false);
  m.def(
      "cuda_compile",
      [](Graph& g) {
        std::shared_ptr<CUDAProgram> p;
        {
          nb::gil_scoped_release release;  // NVRTC may take a moment
          dense_matmul_operands(g);
          p = CUDAProgram::compile(g);
        }
        g.set_program(std::move(p));
      },
      "graph"_a);
  m.def(
      "cuda_open",
      [](const std::string& driver, const std::string& nvrtc, const std::string& cublas) {
        const cuda::Device& d = cuda::open_device(driver, nvrtc, cublas);
        return std::map<std::string, nb::object>{
            {"name", nb::cast(d.name)},
            {"compute_capability", nb::cast(std::make_pair(d.major, d.minor))},
            {"multiprocessors", nb::cast(d.multiprocessors)},
            {"memory", nb::cast(d.memory)},
            {"cublas", nb::cast(d.blas != nullptr)}};
      },
      "driver"_a, "nvrtc"_a, "cublas"_a);
  m.def("cuda_source", [](const Graph& g) { return print_cuda(build_kernels(g)).code; }, "graph"_a);
  m.def(
      "nvrtc_compile",
      [](const std::string& source, const std::string& arch, const std::string& nvrtc) {
        std::string cubin;
        {
          nb::gil_scoped_release release;
          cubin = cuda::compile_only(source, arch, nvrtc);
        }
        return nb::bytes(cubin.data(), cubin.size());
      },
      "source"_a, "arch"_a, "nvrtc"_a);
  m.def("c_compiler", &find_c_compiler);
  m.def("load_blas", &load_blas, "path"_a);
  m.def("blas_path", &blas_path);
  m.def("cache_dir", &cache_dir);
  m.def("kernel_count", [](const Graph& g) -> size_t {
    return g.program() ? g.program()->kernel_count() : 0;
  });
  auto products = [](const Graph& g) -> std::vector<const MatmulPattern*> {
    if (auto* p = dynamic_cast<const CPUProgram*>(g.program())) return p->products();
    if (auto* p = dynamic_cast<const CUDAProgram*>(g.program())) return p->products();
    return {};
  };
  m.def("gemm_count", [products](const Graph& g) { return products(g).size(); });
  m.def(
      "blas_products",
      [products](const Graph& g) {
        std::vector<std::optional<std::map<std::string, int64_t>>> out;
        for (const MatmulPattern* mm : products(g)) {
          std::optional<BlasProduct> p = blas_product(*mm, g.dims());
          if (!p) out.emplace_back();
          else out.push_back(std::map<std::string, int64_t>{
              {"batches", p->batches}, {"m", p->m}, {"n", p->n}, {"k", p->k}});
        }
        return out;
      },
      "graph"_a,
      "Each compiled matrix product as BLAS runs it with the graph's current dims: "
      "{batches, m, n, k}, or None where its strides fit no BLAS layout.");
  m.def(
      "first_difference",
      [](Graph& g, double rtol, double atol) -> std::optional<std::map<std::string, nb::object>> {
        std::optional<Difference> d;
        {
          nb::gil_scoped_release release;
          d = first_difference(g, rtol, atol);
        }
        if (!d) return std::nullopt;
        return std::map<std::string, nb::object>{
            {"node", nb::cast(d->node)},     {"op", nb::cast(d->op)},
            {"kernel", nb::cast(d->kernel)}, {"shape", nb::cast(d->shape)},
            {"index", nb::cast(d->index)},   {"got", nb::cast(d->got)},
            {"want", nb::cast(d->want)},     {"max_abs", nb::cast(d->max_abs)}};
      },
      "graph"_a, "rtol"_a, "atol"_a,
      "Re-run the compiled program and the reference executor on it; the first kernel whose "
      "output differs (a dict), or None.");
  m.def("kernel_source", [](const Graph& g) -> std::string {
    return g.program() ? g.program()->source() : std::string();
  });
  m.def("primitive_ops", [] {
    std::vector<std::string> names;
    for (Op op : kAllOps) names.push_back(op_name(op));
    return names;
  });
}
