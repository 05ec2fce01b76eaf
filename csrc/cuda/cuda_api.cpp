#include "cuda/cuda_api.h"

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/errors.h"
#include "cpu/jit.h"

namespace luminal::cuda {

namespace fs = std::filesystem;

namespace {

constexpr int kAttrMultiprocessors = 16, kAttrMajor = 75, kAttrMinor = 76;

// The first of `names` that loads. RTLD_LOCAL: their symbols must not take
// the place of anything else in the process (a library loaded RTLD_GLOBAL
// joins the global scope, searched before the extension's own dependencies).
void* open_first(const std::vector<std::string>& names, std::string& tried) {
  for (const std::string& n : names) {
    if (n.empty()) continue;
    if (void* h = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
    const char* e = dlerror();
    tried += "\n  " + n + ": " + (e ? e : "not found");
  }
  return nullptr;
}

// Helper libraries next to `path` whose names start with `prefix`
// (libnvrtc-builtins, libcublasLt): loaded first, the main library finds them
// by soname even when their folder is not on the loader's path.
void preload_siblings(const std::string& path, const std::string& prefix) {
  if (path.empty()) return;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path(), ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name.find(".so") != std::string::npos)
      dlopen(e.path().c_str(), RTLD_NOW | RTLD_LOCAL);
  }
}

template <typename F>
void bind(void* lib, F& fn, const char* name, std::string& missing) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn) missing += std::string(" ") + name;
}

// NVRTC's entry points into `a`; throws ExecutionError when it is missing.
void bind_nvrtc(Api& a, const std::string& nvrtc) {
  std::string tried, missing;
  preload_siblings(nvrtc, "libnvrtc-builtins");
  void* rtc = open_first({nvrtc, "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"}, tried);
  if (!rtc)
    throw ExecutionError("[CUDA] NVRTC (libnvrtc) is not installed; pip install "
                         "nvidia-cuda-nvrtc (or the CUDA toolkit):" + tried);
  bind(rtc, a.nvrtcVersion, "nvrtcVersion", missing);
  bind(rtc, a.nvrtcCreateProgram, "nvrtcCreateProgram", missing);
  bind(rtc, a.nvrtcCompileProgram, "nvrtcCompileProgram", missing);
  bind(rtc, a.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize", missing);
  bind(rtc, a.nvrtcGetProgramLog, "nvrtcGetProgramLog", missing);
  bind(rtc, a.nvrtcGetCUBINSize, "nvrtcGetCUBINSize", missing);
  bind(rtc, a.nvrtcGetCUBIN, "nvrtcGetCUBIN", missing);
  bind(rtc, a.nvrtcDestroyProgram, "nvrtcDestroyProgram", missing);
  bind(rtc, a.nvrtcGetErrorString, "nvrtcGetErrorString", missing);
  if (!missing.empty()) throw ExecutionError("[CUDA] libnvrtc lacks:" + missing);
}

// --fmad=false: no contraction into fused multiply-adds, as the C kernels
// are built with -ffp-contract=off (NVRTC contracts by default). Contracted,
// `x*s - fmod(x*s, 1)` (floor, in interpolate's index math) need not be an
// integer. No fast math: IEEE division and sqrt.
const char* const kOptions[] = {"--std=c++17", "-default-device", "--fmad=false"};

// Compile to a CUBIN for `arch` ("sm_90"); throws with NVRTC's log.
std::string compile_cubin(const Api& a, const std::string& source, const std::string& arch) {
  const std::string option = "--gpu-architecture=" + arch;
  std::vector<const char*> options = {option.c_str()};
  for (const char* o : kOptions) options.push_back(o);
  nvrtcProgram prog = nullptr;
  if (nvrtcResult r = a.nvrtcCreateProgram(&prog, source.c_str(), "luminal.cu", 0, nullptr, nullptr))
    throw ExecutionError(std::string("[CUDACompiler] nvrtcCreateProgram: ") + a.nvrtcGetErrorString(r));
  nvrtcResult r = a.nvrtcCompileProgram(prog, int(options.size()), options.data());
  size_t log_size = 0;
  a.nvrtcGetProgramLogSize(prog, &log_size);
  std::string log(log_size, '\0');
  if (log_size) a.nvrtcGetProgramLog(prog, log.data());
  std::string binary;
  size_t size = 0;
  if (r == 0 && a.nvrtcGetCUBINSize(prog, &size) == 0 && size) {
    binary.resize(size);
    a.nvrtcGetCUBIN(prog, binary.data());
  }
  a.nvrtcDestroyProgram(&prog);
  if (binary.empty())
    throw ExecutionError(std::string("[CUDACompiler] NVRTC failed (") + a.nvrtcGetErrorString(r) +
                         ", " + arch + "):\n" + log.substr(0, 4000));
  return binary;
}

std::mutex open_mutex;
std::unique_ptr<Device> opened;

}  // namespace

void check(CUresult r, const char* where) {
  if (r == 0) return;
  const char* text = nullptr;
  if (opened && opened->api.cuGetErrorString) opened->api.cuGetErrorString(r, &text);
  throw ExecutionError(std::string("[") + where + "] CUDA error " + std::to_string(r) +
                       (text ? std::string(": ") + text : std::string()));
}

bool device_open() {
  std::lock_guard<std::mutex> lock(open_mutex);
  return opened != nullptr;
}

const Device& device() {
  std::lock_guard<std::mutex> lock(open_mutex);
  if (!opened)
    throw ExecutionError("[CUDACompiler] no CUDA device is open (luminal.cuda.is_available())");
  return *opened;
}

const Device& open_device(const std::string& driver, const std::string& nvrtc,
                          const std::string& cublas) {
  std::lock_guard<std::mutex> lock(open_mutex);
  if (opened) return *opened;
  auto d = std::make_unique<Device>();
  Api& a = d->api;
  std::string tried;
  void* cu = open_first({driver, "libcuda.so.1", "libcuda.so"}, tried);
  if (!cu) throw ExecutionError("[CUDA] the CUDA driver (libcuda) is not installed:" + tried);
  std::string missing;
  bind(cu, a.cuInit, "cuInit", missing);
  bind(cu, a.cuDeviceGetCount, "cuDeviceGetCount", missing);
  bind(cu, a.cuDeviceGet, "cuDeviceGet", missing);
  bind(cu, a.cuDeviceGetName, "cuDeviceGetName", missing);
  bind(cu, a.cuDeviceGetAttribute, "cuDeviceGetAttribute", missing);
  bind(cu, a.cuDeviceTotalMem, "cuDeviceTotalMem_v2", missing);
  bind(cu, a.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", missing);
  bind(cu, a.cuCtxSetCurrent, "cuCtxSetCurrent", missing);
  bind(cu, a.cuCtxSynchronize, "cuCtxSynchronize", missing);
  bind(cu, a.cuModuleLoadData, "cuModuleLoadData", missing);
  bind(cu, a.cuModuleGetFunction, "cuModuleGetFunction", missing);
  bind(cu, a.cuModuleUnload, "cuModuleUnload", missing);
  bind(cu, a.cuDriverGetVersion, "cuDriverGetVersion", missing);
  bind(cu, a.cuMemAlloc, "cuMemAlloc_v2", missing);
  bind(cu, a.cuMemFree, "cuMemFree_v2", missing);
  bind(cu, a.cuMemcpyHtoD, "cuMemcpyHtoD_v2", missing);
  bind(cu, a.cuMemcpyDtoH, "cuMemcpyDtoH_v2", missing);
  bind(cu, a.cuMemcpyDtoD, "cuMemcpyDtoD_v2", missing);
  bind(cu, a.cuLaunchKernel, "cuLaunchKernel", missing);
  bind(cu, a.cuGetErrorString, "cuGetErrorString", missing);
  if (!missing.empty()) throw ExecutionError("[CUDA] libcuda lacks:" + missing);

  bind_nvrtc(a, nvrtc);

  preload_siblings(cublas, "libcublasLt");
  std::string blas_tried;
  if (void* bl = open_first({cublas, "libcublas.so", "libcublas.so.13", "libcublas.so.12"},
                            blas_tried)) {
    bind(bl, a.cublasCreate, "cublasCreate_v2", missing);
    bind(bl, a.cublasSgemm, "cublasSgemm_v2", missing);
    bind(bl, a.cublasSgemmStridedBatched, "cublasSgemmStridedBatched", missing);
    if (!missing.empty()) a.cublasCreate = nullptr;  // an unusable cuBLAS: generated products
  }

  opened = std::move(d);  // check() reads error strings through it from here on
  Device& dev = *opened;
  try {
    check(a.cuInit(0), "cuInit");
    int driver = 0, rtc_major = 0, rtc_minor = 0;
    check(a.cuDriverGetVersion(&driver), "cuDriverGetVersion");
    a.nvrtcVersion(&rtc_major, &rtc_minor);
    if (rtc_major > driver / 1000)  // its kernels would not load
      throw ExecutionError("[CUDA] NVRTC " + std::to_string(rtc_major) + "." +
                           std::to_string(rtc_minor) + " is newer than the driver (CUDA " +
                           std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10) +
                           "): install the NVRTC of the driver's CUDA (e.g. nvidia-cuda-nvrtc-cu" +
                           std::to_string(driver / 1000) + ") or update the driver");
    int count = 0;
    check(a.cuDeviceGetCount(&count), "cuDeviceGetCount");
    if (count < 1) throw ExecutionError("[CUDA] the driver sees no CUDA device");
    check(a.cuDeviceGet(&dev.device, 0), "cuDeviceGet");
    char name[256] = {0};
    check(a.cuDeviceGetName(name, sizeof name - 1, dev.device), "cuDeviceGetName");
    dev.name = name;
    check(a.cuDeviceGetAttribute(&dev.major, kAttrMajor, dev.device), "cuDeviceGetAttribute");
    check(a.cuDeviceGetAttribute(&dev.minor, kAttrMinor, dev.device), "cuDeviceGetAttribute");
    check(a.cuDeviceGetAttribute(&dev.multiprocessors, kAttrMultiprocessors, dev.device),
          "cuDeviceGetAttribute");
    check(a.cuDeviceTotalMem(&dev.memory, dev.device), "cuDeviceTotalMem");
    check(a.cuDevicePrimaryCtxRetain(&dev.context, dev.device), "cuDevicePrimaryCtxRetain");
    check(a.cuCtxSetCurrent(dev.context), "cuCtxSetCurrent");
    if (a.cublasCreate && a.cublasCreate(&dev.blas) != 0) dev.blas = nullptr;
  } catch (...) {
    opened.reset();
    throw;
  }
  return dev;
}

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  const Device& d = device();
  check(d.api.cuCtxSetCurrent(d.context), "cuCtxSetCurrent");
  CUresult r = d.api.cuMemAlloc(&ptr_, bytes);
  if (r != 0) {
    ptr_ = 0;
    bytes_ = 0;
    check(r, ("cuMemAlloc of " + std::to_string(bytes) + " bytes").c_str());
  }
}

namespace {
// The device's context is made current first: the freeing thread may not be
// the one that allocated. Errors are ignored (a destructor; at exit the
// driver may already be shutting down).
void free_device(CUdeviceptr ptr) {
  if (!ptr || !opened) return;
  opened->api.cuCtxSetCurrent(opened->context);
  opened->api.cuMemFree(ptr);
}
}  // namespace

DeviceBuffer::~DeviceBuffer() { free_device(ptr_); }

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    free_device(ptr_);
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = 0;
    o.bytes_ = 0;
  }
  return *this;
}

Module::~Module() {
  if (module_ && opened) opened->api.cuModuleUnload(module_);
}

std::unique_ptr<Module> load_module(const std::string& source) {
  const Device& d = device();
  const Api& a = d.api;
  int major = 0, minor = 0;
  a.nvrtcVersion(&major, &minor);
  const std::string arch = "sm_" + std::to_string(d.major) + std::to_string(d.minor);
  std::string flags = arch + " nvrtc " + std::to_string(major) + "." + std::to_string(minor);
  for (const char* o : kOptions) flags += std::string(" ") + o;
  char key[64];
  std::snprintf(key, sizeof key, "%016llx", (unsigned long long)content_hash(flags + "\n" + source));
  fs::path dir = fs::path(cache_dir()) / "cuda";
  fs::path file = dir / (std::string(key) + ".cubin");
  check(a.cuCtxSetCurrent(d.context), "cuCtxSetCurrent");
  CUmodule module = nullptr;
  if (std::ifstream in{file, std::ios::binary}) {
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string cached = ss.str();
    // A damaged cache entry is rebuilt rather than trusted.
    if (cached.empty() || a.cuModuleLoadData(&module, cached.data()) != 0) module = nullptr;
  }
  if (!module) {
    std::string binary = compile_cubin(a, source, arch);
    check(a.cuModuleLoadData(&module, binary.data()), "cuModuleLoadData");
    std::error_code ec;
    fs::create_directories(dir, ec);
    static std::atomic<unsigned> writes{0};  // a unique temp name per writer, threads included
    fs::path tmp = dir / (std::string(key) + "." + std::to_string(getpid()) + "." +
                          std::to_string(writes++) + ".tmp");
    bool written = false;
    {
      std::ofstream out(tmp, std::ios::binary);
      out.write(binary.data(), std::streamsize(binary.size()));
      out.close();
      written = bool(out);
    }
    if (written) fs::rename(tmp, file, ec);  // atomic; a failed write only costs a rebuild
    if (!written || ec) fs::remove(tmp, ec);
  }
  return std::make_unique<Module>(module);
}

std::string compile_only(const std::string& source, const std::string& arch,
                         const std::string& nvrtc) {
  static std::mutex m;
  static Api a{};
  static bool bound = false;
  std::lock_guard<std::mutex> lock(m);
  if (!bound) {
    Api fresh{};
    bind_nvrtc(fresh, nvrtc);  // throws before anything is kept when NVRTC lacks a function
    a = fresh;
    bound = true;
  }
  return compile_cubin(a, source, arch);
}

}  // namespace luminal::cuda
