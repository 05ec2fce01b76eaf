#include "cpu/cpu_program.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "core/errors.h"
#include "compiler/run_profile.h"
#include "core/executor.h"
#include "core/host_buffer.h"
#include "core/interrupt.h"
#include "cpu/blas.h"
#include "cpu/c_printer.h"

namespace luminal {

std::shared_ptr<CPUProgram> CPUProgram::compile(const Graph& g, bool bf16_float_products) {
  auto p = std::make_shared<CPUProgram>();
  p->kernels_ = build_kernels(g);
  p->plan_ = RunPlan::make(g, p->kernels_);
  CSource src = print_c(p->kernels_, bf16_float_products);
  p->source_ = src.code;
  p->dims_ = src.dims;
  p->library_ = build_c_library(src.code);
  p->matvec_ = reinterpret_cast<MatvecFn>(p->library_->find("lm_matvec"));
  p->interleaved_ = reinterpret_cast<InterleavedFn>(p->library_->find("lm_interleaved_products"));
  p->amx_sgemm_ = reinterpret_cast<AmxSgemmFn>(p->library_->find("lm_amx_sgemm"));
  // LUMINAL_REPACK=0: no repacked copies (less memory, slower Q4_0 decode).
  const char* repack = std::getenv("LUMINAL_REPACK");
  if (!repack || std::string(repack) != "0") {
    p->pack_size_ = reinterpret_cast<PackSizeFn>(p->library_->find("lm_q4_0x8_size"));
    p->pack_ = reinterpret_cast<PackFn>(p->library_->find("lm_q4_0x8_pack"));
  }

  std::map<std::tuple<NodeId, int64_t, int64_t>, size_t> pack_of;  // one copy per weight and shape
  for (size_t s = 0; s < p->kernels_.size(); ++s) {
    const Kernel& k = p->kernels_[s];
    Step step{reinterpret_cast<KernelFn>(p->library_->symbol(src.kernel_names[s])), k.output,
              k.inputs, p->plan_.slot[s], k.matmul, src.kernel_names[s], std::nullopt};
    if (const std::optional<PackedWeight>& w = src.packed[s]) {
      const NodeId id = k.inputs[w->input];
      auto [it, fresh] = pack_of.try_emplace({id, w->n, w->k}, p->packs_.size());
      if (fresh) p->packs_.push_back(Packed{id, w->n, w->k, {}, {}});
      step.pack = it->second;
    }
    // BLAS takes float operands only; quantized products run their kernel.
    for (const std::string& format : k.input_formats)
      if (!format.empty()) step.gemm.reset();
    p->steps_.push_back(std::move(step));
  }
  // Repack the weights already set now, so the first run (a prompt whose
  // tokens/s a user reads) does not pay for it; weights set later are
  // repacked by the run that first reads them.
  for (Packed& pk : p->packs_) {
    auto input = g.input_data().find(pk.input);
    if (input != g.input_data().end()) p->packed_weight(g, pk, input->second->data());
  }
  return p;
}

std::shared_ptr<std::vector<float>> CPUProgram::spare_buffer(
    std::shared_ptr<std::vector<float>> busy, size_t count) {
  if (!busy) return std::make_shared<std::vector<float>>();  // the slot's first buffer
  // A free spare whose memory holds `count` floats, else the largest free
  // one, which grow_slot replaces (rather than keep a spare too small for
  // this slot beside a new buffer).
  std::shared_ptr<std::vector<float>>* pick = nullptr;
  for (auto& spare : spares_) {
    if (spare.use_count() != 1) continue;
    if (spare->capacity() >= count) { pick = &spare; break; }
    if (!pick || spare->capacity() > (*pick)->capacity()) pick = &spare;
  }
  if (pick) {
    std::swap(*pick, busy);  // park the busy one, take the free one
    return busy;
  }
  if (spares_.size() < 2 * plan_.slot_count + 8) spares_.push_back(std::move(busy));
  return std::make_shared<std::vector<float>>();
}

namespace {

// A slot's buffer grown to `count` floats. Past its capacity, into fresh
// memory twice as large, huge pages asked for before the first touch; its
// contents are an earlier output, which the step overwrites, so nothing is
// copied (resize copied them: a prompt's attention scores, heads x block x
// past floats, grow with every block; growing took 619 ms of a 4-layer
// 2,048-token prompt's first run, 580 without the copies: the rest is the
// first touch of new pages, which this VM makes slow).
void grow_slot(std::vector<float>& slot, size_t count) {
  if (count > slot.capacity()) {
    const size_t capacity = std::max(count, 2 * slot.capacity());
    std::vector<float>().swap(slot);  // the old memory goes first
    slot.reserve(capacity);
    advise_huge_pages(slot.data(), capacity * sizeof(float));
  }
  slot.resize(count);
}

}  // namespace

void CPUProgram::run(Graph& g) {
  const auto run_start = std::chrono::steady_clock::now();
  std::vector<std::vector<int64_t>>& shapes = shapes_;
  plan_.shapes(g, shapes);
  const double check_ms = ms_since(run_start);
  std::vector<int64_t> dims;
  for (const std::string& d : dims_) dims.push_back(Expr::var(d).eval(g.dims()));
  g.set_results({});  // drop last run's hold on output slots so they can be reused
  if (slots_.size() < plan_.slot_count) slots_.resize(plan_.slot_count);

  std::vector<const float*> data(g.node_slots(), nullptr);
  for (const auto& [id, buffer] : g.input_data()) data[id] = buffer->data();
  std::vector<const float*> args;
  const bool profile = profile_top() > 0;
  std::vector<StepTime> times;
  for (const Step& step : steps_) {
    poll_interrupt();
    auto t0 = profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    int64_t count = 1;
    for (int64_t d : shapes[step.output]) count *= d;
    std::shared_ptr<std::vector<float>>& out = slots_[step.slot];
    if (!out || out.use_count() > 1) out = spare_buffer(std::move(out), size_t(count));
    if (out->size() < size_t(count)) grow_slot(*out, size_t(count));
    args.clear();
    for (NodeId in : step.inputs) args.push_back(data[in]);
    if (step.pack) {
      Packed& pk = packs_[*step.pack];
      args.push_back(packed_weight(g, pk, data[pk.input]));
    }
    bool done = step.gemm && run_gemm(*step.gemm, g, data[step.gemm->a], data[step.gemm->b],
                                      out->data());
    if (!done) step.fn(out->data(), args.data(), dims.data());
    data[step.output] = out->data();
    if (trace_)
      trace_->push_back({step.output, step.name, shapes[step.output],
                         std::vector<float>(out->begin(), out->begin() + count)});
    if (profile) times.push_back({ms_since(t0), step.name, step.gemm ? &*step.gemm : nullptr});
  }
  if (profile) print_profile(g, ms_since(run_start), check_ms, times);
  std::unordered_map<NodeId, Buffer> results;
  for (NodeId id : g.outputs()) {
    const Node& n = g.node(id);
    std::shared_ptr<const std::vector<float>> buffer;
    if (n.op == Op::Constant) {  // a constant output has no kernel: fill it here
      int64_t count = 1;
      for (int64_t d : shapes[id]) count *= d;
      buffer = std::make_shared<std::vector<float>>(constant_data(n, g.dims(), count));
    } else if (n.op == Op::Input) {
      buffer = g.input_data().at(id);
    } else {
      buffer = slots_[plan_.output_slot.at(id)];
    }
    results[id] = Buffer{buffer, shapes[id]};
  }
  g.set_results(std::move(results));
}

}  // namespace luminal

namespace luminal {

const float* CPUProgram::packed_weight(const Graph& g, Packed& p, const float* current) {
  // The copy in hand is this buffer's: a live buffer's data pointer is its own.
  const std::shared_ptr<const std::vector<float>> source = p.source.lock();
  if (source && source->data() == current) return p.data.empty() ? nullptr : p.data.data();
  auto input = g.input_data().find(p.input);
  if (input == g.input_data().end()) return nullptr;
  p.data = {};  // the old copy goes before the new one is built
  p.source = input->second;
  const int64_t bytes = pack_size_ && pack_ ? pack_size_(p.n, p.k) : 0;
  if (bytes <= 0) return nullptr;  // this ISA's kernels read GGML's layout
  const size_t count = size_t(bytes + 3) / 4;
  try {
    p.data.reserve(count);
    advise_huge_pages(p.data.data(), count * sizeof(float));  // decode streams the copy
    p.data.resize(count);
    pack_(input->second->data(), p.data.data(), p.n, p.k);
  } catch (const std::bad_alloc&) {
    p.data = {};  // no memory for a copy: the kernel reads GGML's layout
  }
  return p.data.empty() ? nullptr : p.data.data();
}

namespace {

// Whether B's batch dims step inside its rows (a KV cache's heads, laid out
// (position, heads, head dim)): the matrices interleave in memory.
bool interleaved(const BlasProduct& p) {
  if (p.batches < 2) return false;
  for (int64_t stride : p.b_strides)
    if (stride > 0 && stride < p.b.ld) return true;
  return false;
}

// A's and B's element offsets for every batch, as the library's batched
// products take them.
std::pair<std::vector<int64_t>, std::vector<int64_t>> batch_offsets(const BlasProduct& p) {
  std::vector<int64_t> a_off(static_cast<size_t>(p.batches)), b_off(static_cast<size_t>(p.batches));
  for (int64_t t = 0; t < p.batches; ++t) std::tie(a_off[size_t(t)], b_off[size_t(t)]) = p.offsets(t);
  return {std::move(a_off), std::move(b_off)};
}

}  // namespace

bool CPUProgram::run_gemm(const MatmulPattern& mm, const Graph& g, const float* a,
                          const float* b, float* c) const {
  SgemmFn sgemm = blas_sgemm();
  if (!sgemm) return false;
  std::optional<BlasProduct> p = blas_product(mm, g.dims());
  if (!p) return false;
  const int64_t M = p->m, N = p->n, K = p->k, batches = p->batches;
  const BlasMatrix &ma = p->a, &mb = p->b;
  if (M == 0 || N == 0) return true;
  // Compiled for bf16 products: 16+ rows on bf16 tiles (AMX or
  // AVX512-BF16), when the whole is worth a parallel region (~0.1 ms to wake
  // the workers and set up AMX tiles: 20 x 7 x 19 took 0.15 ms there, 0.01
  // in BLAS). 0 back means the tiles are off (or memory short): then BLAS
  // computes every batch.
  constexpr int64_t kAmxMinRows = 16, kAmxMinWork = int64_t(1) << 22;
  if (amx_sgemm_ && M >= kAmxMinRows && !ma.trans && batches * M * N * K >= kAmxMinWork) {
    auto [a_off, b_off] = batch_offsets(*p);
    if (amx_sgemm_(c, a, ma.ld, a_off.data(), b, mb.ld, b_off.data(), mb.trans, batches, M, N, K))
      return true;
  }
  int workers = blas_prepare(M, N, K);
  SgemvFn gemv = blas_sgemv();
  // Many small single-threaded products (attention's, per head): split the
  // batch over the cores when the whole is worth a thread start.
  // Few rows of A (decode's attention) make a product memory-bound: reading
  // a value of B costs about as long as 8 multiply-adds on a core (measured:
  // decode attention splits from 512 past tokens on, not at 256).
  constexpr int64_t kSplitWork = int64_t(1) << 22;
  const int64_t split = std::min<int64_t>(workers, batches);
  const bool memory_bound = batches * std::max<int64_t>(M, 8) * N * K >= kSplitWork;
  // Few rows over matrices that interleave (decode attention over a KV
  // cache): lm_interleaved_products, position by position over both cores
  // where memory-bound (the values' sums, batches x m x n per core, stay in
  // cache), else batch by batch on this core (0 back: no such kernel for
  // this ISA; then BLAS). Decode attention of a 32-layer model with 2 KV
  // heads of 64 (2 x 2 x 64 x past, 4 products a layer) spent 0.81 ms a
  // token in BLAS at 203 past tokens, 0.46 in the simple loops, and its
  // products alone took 5.7 -> 1.3 us (keys) and 3.0 -> 0.9 us (values)
  // once summed 16 positions or 64 columns at a time in registers.
  constexpr int64_t kMaxInterleavedSums = int64_t(1) << 16;
  if (interleaved_ && M <= 8 && !ma.trans && interleaved(*p) &&
      (mb.trans || !memory_bound || batches * M * N <= kMaxInterleavedSums)) {
    auto [a_off, b_off] = batch_offsets(*p);
    if (interleaved_(c, a, ma.ld, a_off.data(), b, mb.ld, b_off.data(), mb.trans, batches, M, N, K,
                     memory_bound))
      return true;
  }
  const bool split_batches = split > 1 && memory_bound;
  // One-row products this big run lm_matvec on all cores (sgemv uses one),
  // unless the batch is already split over the cores.
  constexpr int64_t kParallelMatvec = int64_t(1) << 14;
  auto product = [&](int64_t t) {
    auto [oa, ob] = p->offsets(t);
    if (matvec_ && !split_batches && M == 1 && N * K >= kParallelMatvec) {
      matvec_(c + t * M * N, a + oa, ma.trans ? ma.ld : 1, b + ob, N, K, mb.ld, mb.trans);
    } else if (gemv && M == 1) {
      // A row vector times B: y = B^T a, a matrix-vector product that
      // streams B once (sgemm would pack all of B on every call).
      gemv(kCblasRowMajor, mb.trans ? kCblasNoTrans : kCblasTrans, mb.trans ? int(N) : int(K),
           mb.trans ? int(K) : int(N), 1.0f, b + ob, int(mb.ld), a + oa,
           ma.trans ? int(ma.ld) : 1, 0.0f, c + t * M * N, 1);
    } else {
      sgemm(kCblasRowMajor, ma.trans ? kCblasTrans : kCblasNoTrans,
            mb.trans ? kCblasTrans : kCblasNoTrans, int(M), int(N), int(K), 1.0f, a + oa,
            int(ma.ld), b + ob, int(mb.ld), 0.0f, c + t * M * N, int(N));
    }
  };
  if (split_batches) {
    std::vector<std::thread> pool;
    auto run_share = [&](int64_t w) {
      for (int64_t t = w * batches / split; t < (w + 1) * batches / split; ++t) product(t);
    };
    for (int64_t w = 1; w < split; ++w) pool.emplace_back(run_share, w);
    run_share(0);
    for (std::thread& th : pool) th.join();
  } else {
    for (int64_t t = 0; t < batches; ++t) product(t);
  }
  return true;
}

}  // namespace luminal
