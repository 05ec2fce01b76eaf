#include "cpu/cpu_program.h"

#include <unordered_map>

#include "core/errors.h"
#include "core/executor.h"
#include "cpu/c_printer.h"

namespace luminal {

std::shared_ptr<CPUProgram> CPUProgram::compile(const Graph& g) {
  auto p = std::make_shared<CPUProgram>();
  std::vector<bool> needed = g.needed_by_outputs();
  for (NodeId id : g.topo_order())
    if (needed[id]) p->order_.push_back(id);
  p->kernels_ = build_kernels(g);
  CSource src = print_c(p->kernels_);
  p->source_ = src.code;
  p->dims_ = src.dims;
  p->library_ = build_c_library(src.code);

  // The last step reading each buffer releases it (outputs and inputs stay).
  std::unordered_map<NodeId, size_t> last_read;
  for (size_t s = 0; s < p->kernels_.size(); ++s)
    for (NodeId in : p->kernels_[s].inputs) last_read[in] = s;
  for (size_t s = 0; s < p->kernels_.size(); ++s) {
    Step step{reinterpret_cast<KernelFn>(p->library_->symbol(src.kernel_names[s])),
              p->kernels_[s].output, p->kernels_[s].inputs, {}};
    for (NodeId in : step.inputs)
      if (last_read[in] == s && !g.outputs().count(in) && g.node(in).op != Op::Input)
        step.release.push_back(in);
    p->steps_.push_back(std::move(step));
  }
  return p;
}

void CPUProgram::run(Graph& g) {
  std::vector<std::vector<int64_t>> shapes = ReferenceExecutor::validate(g, order_);
  std::vector<int64_t> dims;
  for (const std::string& d : dims_) dims.push_back(Expr::var(d).eval(g.dims()));

  std::unordered_map<NodeId, std::shared_ptr<const std::vector<float>>> live;
  for (const auto& [id, data] : g.input_data()) live[id] = data;
  std::vector<const float*> args;
  for (const Step& step : steps_) {
    int64_t count = 1;
    for (int64_t d : shapes[step.output]) count *= d;
    auto out = std::make_shared<std::vector<float>>(size_t(count));
    args.clear();
    for (NodeId in : step.inputs) args.push_back(live.at(in)->data());
    step.fn(out->data(), args.data(), dims.data());
    live[step.output] = std::move(out);
    for (NodeId id : step.release) live.erase(id);
  }
  std::unordered_map<NodeId, Buffer> results;
  for (NodeId id : g.outputs()) {
    const Node& n = g.node(id);
    if (n.op == Op::Constant) {  // a constant output has no kernel: fill it here
      int64_t count = 1;
      for (int64_t d : shapes[id]) count *= d;
      double v = n.symbolic ? double(n.symbolic->eval(g.dims())) : n.value;
      live[id] = std::make_shared<std::vector<float>>(size_t(count), float(v));
    }
    results[id] = Buffer{live.at(id), shapes[id]};
  }
  g.set_results(std::move(results));
}

}  // namespace luminal
