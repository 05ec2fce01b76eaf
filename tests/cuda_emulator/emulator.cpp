// A host stand-in for the CUDA driver, NVRTC and cuBLAS, so the CUDA backend
// (printer, CUDAProgram, its uploads, launches and cuBLAS calls) runs on a
// machine without a GPU. Test-only: tests/test_cuda_emulated.py builds it
// with the system C++ compiler and opens it in place of libcuda, libnvrtc and
// libcublas (luminal.cuda loads them by path).
//
// - "NVRTC" compiles the printed CUDA C as C++ with the shims below, into a
//   shared library named by a hash of the source; its "CUBIN" is that path.
// - A launch runs the grid's blocks one after another; a block's threads are
//   fibers (ucontext) on this thread, switched at __syncthreads and warp
//   shuffles, so barriers and shuffles mean what they mean on a GPU. Threads
//   that wait at a barrier their block never completes are reported.
// - Device memory is host memory; cuBLAS products sum in double.
//
// It checks what the kernels compute, not how fast: timings mean nothing.
#include <dlfcn.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

// The shims that make printed CUDA C a C++ translation unit; the kernels go
// in a namespace of their own (their prelude typedefs int64_t and friends).
const char* kShims = R"(#include <math.h>
#include <string.h>
struct LmEmuIdx { unsigned x, y, z; };
struct LmEmuState {  /* set by the emulator when it loads this library */
  LmEmuIdx thread, block, block_dim, grid_dim;
  void (*sync)();
  double (*shfl_down)(double, int);
};
extern "C" { LmEmuState* lmemu_state = 0; }
#define threadIdx (lmemu_state->thread)
#define blockIdx (lmemu_state->block)
#define blockDim (lmemu_state->block_dim)
#define gridDim (lmemu_state->grid_dim)
#define __syncthreads() (lmemu_state->sync())
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static
template <class T> static inline T __shfl_down_sync(unsigned, T v, int delta) {
  return (T)lmemu_state->shfl_down((double)v, delta);
}
static inline float __int_as_float(int b) { float f; memcpy(&f, &b, 4); return f; }
static inline int __float_as_int(float f) { int b; memcpy(&b, &f, 4); return b; }
namespace lmdev {
)";

// The same layout as the shims' LmEmuState.
struct LmEmuIdx {
  unsigned x, y, z;
};
struct LmEmuState {
  LmEmuIdx thread, block, block_dim, grid_dim;
  void (*sync)();
  double (*shfl_down)(double, int);
};

struct Program {
  std::string source, log, image;
};

struct Function {
  void (*launch)(void**);
};

struct Fiber {
  ucontext_t context{};
  std::unique_ptr<char[]> stack;
  bool done = false;
};

constexpr size_t kStack = 256 * 1024;

// The launch in progress.
struct Launch {
  void (*launch)(void**) = nullptr;
  void** params = nullptr;
  std::vector<Fiber> fibers;
  ucontext_t scheduler{};  // the running thread is state.thread.x
  // Barriers: arrivals and a generation, per block and per warp.
  unsigned block_arrived = 0, block_generation = 0;
  std::vector<unsigned> warp_arrived, warp_generation;
  std::vector<double> warp_values;  // a shuffle's operands, one per thread
  uint64_t arrivals = 0;            // barrier arrivals so far: progress
};
Launch launch_state;
void syncthreads();
double shfl_down(double v, int delta);
LmEmuState state{{0, 0, 0}, {0, 0, 0}, {1, 1, 1}, {1, 1, 1}, syncthreads, shfl_down};
std::string last_error;

void yield() { swapcontext(&launch_state.fibers[state.thread.x].context, &launch_state.scheduler); }

void wait_barrier(unsigned& arrived, unsigned& generation, unsigned expected) {
  const unsigned g = generation;
  ++launch_state.arrivals;
  if (++arrived == expected) {
    arrived = 0;
    ++generation;
    return;
  }
  while (generation == g) yield();
}

void syncthreads() {
  Launch& l = launch_state;
  wait_barrier(l.block_arrived, l.block_generation, unsigned(l.fibers.size()));
}

double shfl_down(double v, int delta) {
  Launch& l = launch_state;
  const unsigned t = state.thread.x, warp = t / 32, lane = t % 32;
  l.warp_values[t] = v;
  wait_barrier(l.warp_arrived[warp], l.warp_generation[warp], 32);
  const double r = lane + unsigned(delta) < 32 ? l.warp_values[t + unsigned(delta)] : v;
  wait_barrier(l.warp_arrived[warp], l.warp_generation[warp], 32);
  return r;
}

void fiber_main() {
  Launch& l = launch_state;
  l.launch(l.params);
  l.fibers[state.thread.x].done = true;
  // returning resumes uc_link: the scheduler
}

std::string run_command(const std::string& cmd, int& status) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) {
    status = -1;
    return "could not run: " + cmd;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  status = pclose(p);
  return out;
}

// One launcher per kernel: lmemu_launch_<name>(params) calls the kernel with
// cuLaunchKernel's argument array (out, in0.., a struct by value: LmDims for printed kernels).
std::string launchers(const std::string& source) {
  std::ostringstream os;
  const std::string mark = "extern \"C\" __global__ void __launch_bounds__(";
  for (size_t at = source.find(mark); at != std::string::npos; at = source.find(mark, at + 1)) {
    size_t name_start = source.find(") ", at + mark.size()) + 2;
    size_t paren = source.find('(', name_start);
    std::string name = source.substr(name_start, paren - name_start);
    std::string params = source.substr(paren + 1, source.find(')', paren) - paren - 1);
    int inputs = 0;
    for (size_t p = params.find(" in"); p != std::string::npos; p = params.find(" in", p + 1)) ++inputs;
    // The last parameter is a struct by value (LmDims, or a fixed kernel's own).
    std::string last = params.substr(params.rfind(',') + 1);
    last = last.substr(last.find_first_not_of(' '));
    const std::string type = last.substr(0, last.rfind(' '));
    os << "extern \"C\" void lmemu_launch_" << name << "(void** p) {\n  lmdev::" << name
       << "(*(float**)p[0]";
    for (int i = 0; i < inputs; ++i) os << ", *(const float**)p[" << i + 1 << "]";
    os << ", *(lmdev::" << type << "*)p[" << inputs + 1 << "]);\n}\n";
  }
  return os.str();
}

std::string work_dir() {
  const char* env = std::getenv("LUMINAL_CUDA_EMULATOR_DIR");
  std::string dir = env && *env ? env : "/tmp/luminal-cuda-emulator-" + std::to_string(getuid());
  std::string cmd = "mkdir -p '" + dir + "'";
  int status = 0;
  run_command(cmd, status);
  return dir;
}

}  // namespace

extern "C" {

// ---- driver ----
int cuInit(unsigned) { return 0; }
int cuDriverGetVersion(int* v) { *v = 12090; return 0; }
int cuDeviceGetCount(int* n) { *n = 1; return 0; }
int cuDeviceGet(int* d, int) { *d = 0; return 0; }
int cuDeviceGetName(char* name, int len, int) {
  std::snprintf(name, size_t(len), "luminal host emulator");
  return 0;
}
int cuDeviceGetAttribute(int* v, int attr, int) {
  *v = attr == 75 ? 9 : attr == 76 ? 0 : attr == 16 ? 2 : 0;  // sm_90, 2 multiprocessors
  return 0;
}
int cuDeviceTotalMem_v2(size_t* bytes, int) { *bytes = size_t(1) << 32; return 0; }
int cuDevicePrimaryCtxRetain(void** ctx, int) { static int c; *ctx = &c; return 0; }
int cuCtxSetCurrent(void*) { return 0; }
int cuCtxSynchronize() { return 0; }
int cuGetErrorString(int, const char** text) { *text = last_error.c_str(); return 0; }

int cuMemAlloc_v2(unsigned long long* ptr, size_t bytes) {
  // The exact size, so a sanitizer sees a kernel reading past the end.
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes ? bytes : 1) != 0) return 2;  // CUDA_ERROR_OUT_OF_MEMORY
  *ptr = reinterpret_cast<uintptr_t>(p);
  return 0;
}
int cuMemFree_v2(unsigned long long ptr) { std::free(reinterpret_cast<void*>(ptr)); return 0; }
int cuMemcpyHtoD_v2(unsigned long long dst, const void* src, size_t n) {
  std::memcpy(reinterpret_cast<void*>(dst), src, n);
  return 0;
}
int cuMemcpyDtoH_v2(void* dst, unsigned long long src, size_t n) {
  std::memcpy(dst, reinterpret_cast<const void*>(src), n);
  return 0;
}
int cuMemcpyDtoD_v2(unsigned long long dst, unsigned long long src, size_t n) {
  std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
  return 0;
}

int cuModuleLoadData(void** module, const void* image) {
  const char* text = static_cast<const char*>(image);
  const char* magic = "LMEMU1\n";
  if (std::strncmp(text, magic, std::strlen(magic)) != 0) return 200;  // CUDA_ERROR_INVALID_IMAGE
  void* handle = dlopen(text + std::strlen(magic), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    last_error = dlerror();
    return 200;
  }
  auto** slot = static_cast<LmEmuState**>(dlsym(handle, "lmemu_state"));
  if (!slot) {
    dlclose(handle);
    return 200;
  }
  *slot = &state;
  *module = handle;
  return 0;
}
int cuModuleGetFunction(void** fn, void* module, const char* name) {
  void* sym = dlsym(module, ("lmemu_launch_" + std::string(name)).c_str());
  if (!sym) return 500;  // CUDA_ERROR_NOT_FOUND
  static std::vector<std::unique_ptr<Function>> functions;
  functions.push_back(std::make_unique<Function>(Function{reinterpret_cast<void (*)(void**)>(sym)}));
  *fn = functions.back().get();
  return 0;
}
int cuModuleUnload(void* module) { return dlclose(module) ? 1 : 0; }

int cuLaunchKernel(void* fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned bz, unsigned, void*, void** params, void**) {
  if (gy != 1 || gz != 1 || by != 1 || bz != 1 || bx % 32 != 0) {
    last_error = "the emulator runs 1-D grids of whole warps";
    return 1;
  }
  Launch& l = launch_state;
  l.launch = static_cast<Function*>(fn)->launch;
  l.params = params;
  l.fibers.resize(bx);
  for (Fiber& f : l.fibers)
    if (!f.stack) f.stack = std::make_unique<char[]>(kStack);
  l.warp_arrived.assign(bx / 32, 0);
  l.warp_generation.assign(bx / 32, 0);
  l.warp_values.assign(bx, 0.0);
  state.block_dim = {bx, 1, 1};
  state.grid_dim = {gx, 1, 1};
  for (unsigned b = 0; b < gx; ++b) {
    state.block = {b, 0, 0};
    l.block_arrived = 0;
    for (unsigned t = 0; t < bx; ++t) {
      Fiber& f = l.fibers[t];
      f.done = false;
      getcontext(&f.context);
      f.context.uc_stack.ss_sp = f.stack.get();
      f.context.uc_stack.ss_size = kStack;
      f.context.uc_link = &l.scheduler;
      makecontext(&f.context, fiber_main, 0);
    }
    // Round robin until every thread has returned. A round in which no
    // thread finished or reached a barrier means threads wait for ones that
    // never come (the fibers are abandoned: the next launch starts them anew).
    for (unsigned left = bx; left > 0;) {
      const unsigned left_before = left;
      const uint64_t arrivals_before = l.arrivals;
      for (unsigned t = 0; t < bx; ++t) {
        if (l.fibers[t].done) continue;
        state.thread = {t, 0, 0};
        swapcontext(&l.scheduler, &l.fibers[t].context);
        if (l.fibers[t].done) --left;
      }
      if (left == left_before && l.arrivals == arrivals_before) {
        last_error = "threads of block " + std::to_string(b) +
                     " wait at a barrier or shuffle that other threads never reach";
        return 719;  // CUDA_ERROR_LAUNCH_FAILED
      }
    }
  }
  return 0;
}

// ---- NVRTC ----
int nvrtcVersion(int* major, int* minor) { *major = 12; *minor = 9; return 0; }
int nvrtcCreateProgram(Program** prog, const char* src, const char*, int, const char* const*,
                       const char* const*) {
  *prog = new Program{src, "", ""};
  return 0;
}
int nvrtcCompileProgram(Program* prog, int, const char* const*) {
  const std::string dir = work_dir();
  char key[32];
  const char* key_flags = std::getenv("LUMINAL_CUDA_EMULATOR_FLAGS");
  std::snprintf(key, sizeof key, "%016zx",
                std::hash<std::string>()(prog->source + (key_flags ? key_flags : "")));
  const std::string lib = dir + "/" + key + ".so";
  if (access(lib.c_str(), R_OK) != 0) {
    const std::string cpp = dir + "/" + key + "." + std::to_string(getpid()) + ".cpp";
    const std::string tmp = lib + "." + std::to_string(getpid()) + ".tmp";
    {
      std::ofstream out(cpp);
      out << kShims << prog->source << "\n}  // namespace lmdev\n" << launchers(prog->source);
    }
    const char* cxx = std::getenv("CXX");
    // LUMINAL_CUDA_EMULATOR_FLAGS: more compiler flags (-fsanitize=address finds
    // kernels reading or writing past their buffers, in a process run with libasan).
    const char* flags = std::getenv("LUMINAL_CUDA_EMULATOR_FLAGS");
    int status = 0;
    prog->log = run_command(std::string(cxx && *cxx ? cxx : "g++") + " -std=c++17 -O1 -w -shared -fPIC " +
                                (flags ? flags : "") + " -o '" + tmp + "' '" + cpp + "'",
                            status);
    std::remove(cpp.c_str());
    if (status != 0) {
      std::remove(tmp.c_str());
      return 6;  // NVRTC_ERROR_COMPILATION
    }
    std::rename(tmp.c_str(), lib.c_str());
  }
  prog->image = "LMEMU1\n" + lib;
  prog->image.push_back('\0');
  return 0;
}
int nvrtcGetProgramLogSize(Program* prog, size_t* n) { *n = prog->log.size() + 1; return 0; }
int nvrtcGetProgramLog(Program* prog, char* out) {
  std::memcpy(out, prog->log.c_str(), prog->log.size() + 1);
  return 0;
}
int nvrtcGetCUBINSize(Program* prog, size_t* n) { *n = prog->image.size(); return 0; }
int nvrtcGetCUBIN(Program* prog, char* out) {
  std::memcpy(out, prog->image.data(), prog->image.size());
  return 0;
}
int nvrtcDestroyProgram(Program** prog) {
  delete *prog;
  *prog = nullptr;
  return 0;
}
const char* nvrtcGetErrorString(int r) { return r ? "NVRTC_ERROR_COMPILATION (host emulator)" : "NVRTC_SUCCESS"; }

// ---- cuBLAS (column-major) ----
int cublasCreate_v2(void** handle) { static int h; *handle = &h; return 0; }
int cublasSgemmStridedBatched(void*, int ta, int tb, int m, int n, int k, const float* alpha,
                              const float* a, int lda, long long sa, const float* b, int ldb,
                              long long sb, const float* beta, float* c, int ldc, long long sc,
                              int batches) {
  for (int t = 0; t < batches; ++t) {
    const float *at = a + t * sa, *bt = b + t * sb;
    float* ct = c + t * sc;
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double s = 0;
        for (int l = 0; l < k; ++l)
          s += double(ta ? at[l + i * lda] : at[i + l * lda]) * (tb ? bt[j + l * ldb] : bt[l + j * ldb]);
        float& out = ct[i + j * ldc];
        out = float(*alpha * s + (*beta != 0.0f ? double(*beta) * out : 0.0));
      }
  }
  return 0;
}
int cublasSgemm_v2(void* h, int ta, int tb, int m, int n, int k, const float* alpha, const float* a,
                   int lda, const float* b, int ldb, const float* beta, float* c, int ldc) {
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

}  // extern "C"
