#include "cuda/cuda_program.h"

#include <algorithm>
#include <unordered_set>

#include "compiler/c_family.h"
#include "compiler/run_profile.h"
#include "core/errors.h"

namespace luminal {

using cuda::CUdeviceptr;

// A compact product's kernel decodes W once per group of 8 rows of A, and
// each further group costs about as much again (64 rows took 22x one row's
// time on an H100): with more rows than one group, W is widened to floats
// once and the product goes to cuBLAS.
constexpr int64_t kWidenRows = 8;

std::shared_ptr<CUDAProgram> CUDAProgram::compile(const Graph& g) {
  const cuda::Device& dev = cuda::device();
  auto p = std::make_shared<CUDAProgram>();
  p->kernels_ = build_kernels(g);
  p->plan_ = RunPlan::make(g, p->kernels_);
  CudaSource src = print_cuda(p->kernels_);
  p->source_ = src.code;
  p->dims_ = src.dims;
  p->module_ = cuda::load_module(src.code);
  std::unordered_map<std::string, cuda::CUfunction> functions;
  std::unordered_set<NodeId> read;
  auto function = [&](const std::string& name) {
    auto [it, fresh] = functions.try_emplace(name, nullptr);
    if (fresh) cuda::check(dev.api.cuModuleGetFunction(&it->second, p->module_->get(), name.c_str()),
                           "cuModuleGetFunction");
    return it->second;
  };
  if (src.few_rows)
    p->few_rows_ = {function("lm_few_rows_dot"), function("lm_few_rows_columns"), function("lm_few_rows_sum")};
  for (size_t s = 0; s < p->kernels_.size(); ++s) {
    const Kernel& k = p->kernels_[s];
    const CudaKernel& ck = src.kernels[s];
    Step step{function(ck.name), ck.launch, ck.threads, k.output, k.inputs,
              p->plan_.slot[s], k.matmul, ck.name, std::nullopt};
    // The few-row kernels and cuBLAS take float operands only; compact
    // products run their kernel, or widen W first when A has many rows.
    for (const std::string& format : k.input_formats)
      if (!format.empty()) step.gemm.reset();
    if (!ck.widen.empty() && dev.blas)
      step.widen = Step::Widen{function(ck.widen), *k.matmul, compact_product(k)->k};
    for (NodeId in : k.inputs)
      if (g.node(in).op == Op::Input && read.insert(in).second) p->read_inputs_.push_back(in);
    p->steps_.push_back(std::move(step));
  }
  return p;
}

CUdeviceptr CUDAProgram::resolve_input(const cuda::Api& api, NodeId id,
                                       const std::shared_ptr<const std::vector<float>>& host) {
  InputCopy& copy = inputs_[id];
  const size_t count = host->size(), bytes = count * sizeof(float);
  if (copy.host.lock() == host && copy.uploaded <= count) {
    if (copy.uploaded == count) return copy.buffer.ptr();
    reserve(api, copy, count);  // grown in place (append)
  } else {
    copy.host = host;
    copy.uploaded = 0;
    if (copy.buffer.bytes() < bytes || copy.buffer.bytes() > 2 * bytes + 4096)
      copy.buffer = cuda::DeviceBuffer(bytes);
    for (const auto& [result, slot] : handed_) {  // a result fed back: still on the device
      if (result.lock() == host && slots_[slot].bytes() >= bytes) {
        if (bytes) cuda::check(api.cuMemcpyDtoD(copy.buffer.ptr(), slots_[slot].ptr(), bytes),
                               "cuMemcpyDtoD");
        copy.uploaded = count;
        return copy.buffer.ptr();
      }
    }
  }
  if (count > copy.uploaded)
    cuda::check(api.cuMemcpyHtoD(copy.buffer.ptr() + copy.uploaded * sizeof(float),
                                 host->data() + copy.uploaded, (count - copy.uploaded) * sizeof(float)),
                "cuMemcpyHtoD");
  copy.uploaded = count;
  return copy.buffer.ptr();
}

int64_t CUDAProgram::count_of(NodeId id) const {
  int64_t c = 1;
  for (int64_t d : shapes_[size_t(id)]) c *= d;
  return c;
}

void CUDAProgram::reserve(const cuda::Api& api, InputCopy& copy, size_t count) {
  const size_t bytes = count * sizeof(float);
  if (copy.buffer.bytes() >= bytes) return;
  cuda::DeviceBuffer bigger(std::max(bytes, 2 * copy.buffer.bytes()));
  if (copy.uploaded)
    cuda::check(api.cuMemcpyDtoD(bigger.ptr(), copy.buffer.ptr(), copy.uploaded * sizeof(float)),
                "cuMemcpyDtoD");
  copy.buffer = std::move(bigger);
}

// A KV cache's new rows are results the graph appends to its inputs on the
// host; without this they would go back up with the next run (after a
// prefill, the whole prompt's keys and values).
void CUDAProgram::append_on_device(const Graph& g, const cuda::Api& api) {
  for (const Graph::Feedback& f : g.feedback()) {
    if (!f.append) continue;
    const NodeId target = g.node_of(f.target), value = g.node_of(f.value);
    auto slot = plan_.output_slot.find(value);
    auto copy_it = inputs_.find(target);
    if (slot == plan_.output_slot.end() || copy_it == inputs_.end()) continue;
    InputCopy& copy = copy_it->second;
    std::shared_ptr<const std::vector<float>> host = copy.host.lock();
    if (!host || copy.uploaded != host->size()) continue;  // the device copy is not current
    const size_t count = size_t(count_of(value));
    reserve(api, copy, copy.uploaded + count);
    if (count)
      cuda::check(api.cuMemcpyDtoD(copy.buffer.ptr() + copy.uploaded * sizeof(float), slots_[slot->second].ptr(),
                                   count * sizeof(float)),
                  "cuMemcpyDtoD");
    appended_.push_back({target, copy.uploaded + count});
  }
}

void CUDAProgram::after_feedback(Graph& g) {
  for (const auto& [target, count] : appended_) {
    const std::shared_ptr<const std::vector<float>>& host = g.input_data().at(target);
    if (host->size() != count) continue;  // not what was appended: uploaded anew when read
    InputCopy& copy = inputs_.at(target);
    copy.host = host;
    copy.uploaded = count;
  }
  appended_.clear();
}

void CUDAProgram::run(Graph& g) {
  const cuda::Device& dev = cuda::device();
  const cuda::Api& api = dev.api;
  const auto run_start = std::chrono::steady_clock::now();
  cuda::check(api.cuCtxSetCurrent(dev.context), "cuCtxSetCurrent");
  std::vector<std::vector<int64_t>>& shapes = shapes_;
  plan_.shapes(g, shapes);
  const double check_ms = ms_since(run_start);
  std::vector<int64_t> dims(std::max<size_t>(dims_.size(), 1), 0);
  for (size_t d = 0; d < dims_.size(); ++d) dims[d] = Expr::var(dims_[d]).eval(g.dims());
  g.set_results({});

  std::vector<CUdeviceptr> data(g.node_slots(), 0);
  for (NodeId id : read_inputs_) data[id] = resolve_input(api, id, g.input_data().at(id));
  handed_.clear();
  if (slots_.size() < plan_.slot_count) slots_.resize(plan_.slot_count);

  auto download = [&](CUdeviceptr ptr, int64_t count) {
    auto host = std::make_shared<std::vector<float>>(size_t(count));
    if (count) cuda::check(api.cuMemcpyDtoH(host->data(), ptr, size_t(count) * sizeof(float)),
                           "cuMemcpyDtoH");
    return host;
  };
  std::vector<CUdeviceptr> args;
  std::vector<void*> params;
  const bool profile = profile_top() > 0;
  std::vector<StepTime> times;
  for (const Step& step : steps_) {
    auto t0 = profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    const int64_t count = count_of(step.output);
    cuda::DeviceBuffer& out = slots_[step.slot];
    const size_t bytes = size_t(count) * sizeof(float);
    if (out.bytes() < bytes) out = cuda::DeviceBuffer(bytes + bytes / 4);
    data[step.output] = out.ptr();
    bool done = count == 0 ||
                (step.gemm && run_gemm(*step.gemm, g, data[step.gemm->a], data[step.gemm->b], out.ptr()));
    const MatmulPattern* product = step.gemm ? &*step.gemm : nullptr;  // for the profile
    const int64_t cap = int64_t(dev.multiprocessors) * 32;  // blocks a launch gets at most
    if (!done && step.widen && count / std::max<int64_t>(shapes[step.output].back(), 1) > kWidenRows) {
      const Step::Widen& w = *step.widen;
      const size_t values = size_t(shapes[step.output].back() * w.k);
      if (widened_.bytes() < values * sizeof(float)) widened_ = cuda::DeviceBuffer(values * sizeof(float));
      CUdeviceptr wargs[2] = {widened_.ptr(), data[w.gemm.b]};
      void* wparams[3] = {&wargs[0], &wargs[1], dims.data()};
      const int64_t blocks = std::clamp<int64_t>((int64_t(values) + kCudaBlock - 1) / kCudaBlock, 1, cap);
      if (cuda::CUresult r = api.cuLaunchKernel(w.fn, unsigned(blocks), 1, 1, kCudaBlock, 1, 1, 0, nullptr,
                                                wparams, nullptr))
        cuda::check(r, ("cuLaunchKernel (widen) " + step.name).c_str());
      done = run_gemm(w.gemm, g, data[w.gemm.a], widened_.ptr(), out.ptr());
      if (done) product = &w.gemm;
    }
    if (!done) {
      args.assign(1, out.ptr());
      for (NodeId in : step.inputs) args.push_back(data[in]);
      params.clear();
      for (CUdeviceptr& a : args) params.push_back(&a);
      params.push_back(dims.data());  // LmDims, by value
      int64_t blocks = 1;
      switch (step.launch) {
        case CudaKernel::Launch::Elementwise:
        case CudaKernel::Launch::ColumnReduce: blocks = (count + kCudaBlock - 1) / kCudaBlock; break;
        case CudaKernel::Launch::WarpReduce: blocks = (count + kCudaBlock / 32 - 1) / (kCudaBlock / 32); break;
        case CudaKernel::Launch::RowBlock: {
          const std::vector<int64_t>& s = shapes[step.output];
          blocks = s.empty() ? 1 : count / std::max<int64_t>(s.back(), 1);
          break;
        }
        case CudaKernel::Launch::CompactProduct: {  // a block per weight row and group of 8 rows of A
          const std::vector<int64_t>& s = shapes[step.output];
          const int64_t wn = s.empty() ? 1 : std::max<int64_t>(s.back(), 1);
          blocks = wn * ((count / wn + 7) / 8);
          break;
        }
      }
      blocks = std::clamp<int64_t>(blocks, 1, cap);
      // The error text is built only on failure: this runs for every kernel of every run.
      if (cuda::CUresult r = api.cuLaunchKernel(step.fn, unsigned(blocks), 1, 1, unsigned(step.threads), 1, 1, 0,
                                                nullptr, params.data(), nullptr))
        cuda::check(r, ("cuLaunchKernel " + step.name).c_str());
    }
    if (trace_) {
      auto host = download(out.ptr(), count);
      trace_->push_back({step.output, step.name, shapes[step.output], std::move(*host)});
    }
    if (profile) {  // launches are asynchronous: wait for this one to time it
      if (cuda::CUresult r = api.cuCtxSynchronize()) cuda::check(r, ("kernel " + step.name).c_str());
      times.push_back({ms_since(t0), step.name, product});
    }
  }
  std::unordered_map<NodeId, Buffer> results;
  for (NodeId id : g.outputs()) {
    const Node& n = g.node(id);
    std::shared_ptr<const std::vector<float>> buffer;
    if (n.op == Op::Constant) {  // a constant output has no kernel: fill it here
      buffer = std::make_shared<std::vector<float>>(constant_data(n, g.dims(), count_of(id)));
    } else if (n.op == Op::Input) {
      buffer = g.input_data().at(id);
    } else {
      size_t slot = plan_.output_slot.at(id);
      buffer = download(slots_[slot].ptr(), count_of(id));
      handed_.push_back({buffer, slot});
    }
    results[id] = Buffer{buffer, shapes[id]};
  }
  g.set_results(std::move(results));
  appended_.clear();
  if (!trace_) append_on_device(g, api);  // a traced run applies no feedback
  if (profile) print_profile(g, ms_since(run_start), check_ms, times);
}

bool CUDAProgram::run_gemm(const MatmulPattern& mm, const Graph& g, CUdeviceptr a, CUdeviceptr b,
                           CUdeviceptr c) {
  const cuda::Device& dev = cuda::device();
  std::optional<BlasProduct> p = blas_product(mm, g.dims());
  if (!p || p->k == 0) return false;  // k == 0: the kernel writes the zeros
  if (few_rows_.dot && few_row_product(*p)) {
    run_few_rows(dev, few_rows_, *p, a, b, c, few_rows_parts_);
    return true;
  }
  if (!dev.blas) return false;
  const int64_t M = p->m, N = p->n, K = p->k;
  const BlasMatrix &ma = p->a, &mb = p->b;
  // Row-major C = A B is column-major C^T = B^T A^T: cuBLAS gets B first.
  const int op_a = ma.trans ? 1 : 0, op_b = mb.trans ? 1 : 0;
  const float one = 1.0f, zero = 0.0f;
  const float *pa = reinterpret_cast<const float*>(a), *pb = reinterpret_cast<const float*>(b);
  float* pc = reinterpret_cast<float*>(c);
  // The innermost batch dim goes to one strided-batched call; outer ones loop.
  const int64_t inner = p->batch_shape.empty() ? 1 : p->batch_shape.back();
  const int64_t stride_a = p->batch_shape.empty() ? 0 : p->a_strides.back();
  const int64_t stride_b = p->batch_shape.empty() ? 0 : p->b_strides.back();
  for (int64_t t = 0; t < p->batches / inner; ++t) {
    auto [oa, ob] = p->offsets(t * inner);
    float* pct = pc + t * inner * M * N;
    int status = dev.api.cublasSgemmStridedBatched(
        dev.blas, op_b, op_a, int(N), int(M), int(K), &one, pb + ob, int(mb.ld), stride_b,
        pa + oa, int(ma.ld), stride_a, &zero, pct, int(N), M * N, int(inner));
    if (status != 0)
      throw ExecutionError("[matmul] cuBLAS sgemm failed with status " + std::to_string(status));
  }
  return true;
}

}  // namespace luminal
