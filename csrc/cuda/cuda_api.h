// The CUDA driver API, NVRTC and cuBLAS, loaded with dlopen at run time: the
// package builds and imports on machines with no CUDA at all. Only the few
// entry points luminal calls are declared here (their C ABI is stable).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace luminal::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st*;
using CUmodule = struct CUmod_st*;
using CUfunction = struct CUfunc_st*;
using CUstream = struct CUstream_st*;
using nvrtcResult = int;
using nvrtcProgram = struct _nvrtcProgram*;
using cublasStatus = int;
using cublasHandle = struct cublasContext*;

struct Api {
  // Driver API (libcuda).
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGetCount)(int*);
  CUresult (*cuDeviceGet)(CUdevice*, int);
  CUresult (*cuDeviceGetName)(char*, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice);
  CUresult (*cuDeviceTotalMem)(size_t*, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuModuleLoadData)(CUmodule*, const void*);
  CUresult (*cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuDriverGetVersion)(int*);
  CUresult (*cuMemAlloc)(CUdeviceptr*, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void*, size_t);
  CUresult (*cuMemcpyDtoH)(void*, CUdeviceptr, size_t);
  CUresult (*cuMemcpyDtoD)(CUdeviceptr, CUdeviceptr, size_t);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, CUstream, void**, void**);
  CUresult (*cuGetErrorString)(CUresult, const char**);
  // NVRTC.
  nvrtcResult (*nvrtcVersion)(int*, int*);
  nvrtcResult (*nvrtcCreateProgram)(nvrtcProgram*, const char*, const char*, int,
                                    const char* const*, const char* const*);
  nvrtcResult (*nvrtcCompileProgram)(nvrtcProgram, int, const char* const*);
  nvrtcResult (*nvrtcGetProgramLogSize)(nvrtcProgram, size_t*);
  nvrtcResult (*nvrtcGetProgramLog)(nvrtcProgram, char*);
  nvrtcResult (*nvrtcGetCUBINSize)(nvrtcProgram, size_t*);
  nvrtcResult (*nvrtcGetCUBIN)(nvrtcProgram, char*);
  nvrtcResult (*nvrtcDestroyProgram)(nvrtcProgram*);
  const char* (*nvrtcGetErrorString)(nvrtcResult);
  // cuBLAS (column-major, host scalars, the default stream).
  cublasStatus (*cublasCreate)(cublasHandle*);
  cublasStatus (*cublasSgemm)(cublasHandle, int, int, int, int, int, const float*, const float*,
                              int, const float*, int, const float*, float*, int);
  cublasStatus (*cublasSgemmStridedBatched)(cublasHandle, int, int, int, int, int, const float*,
                                            const float*, int, long long, const float*, int,
                                            long long, const float*, float*, int, long long, int);
};

// The device luminal runs on (device 0) and its loaded libraries.
struct Device {
  Api api{};
  CUdevice device = 0;
  CUcontext context = nullptr;
  cublasHandle blas = nullptr;  // null when cuBLAS did not load: products run generated kernels
  std::string name;
  int major = 0, minor = 0, multiprocessors = 0;
  size_t memory = 0;
};

// Load the libraries (each path may be "" to search the loader's path) and
// open device 0. Idempotent; throws ExecutionError saying what is missing.
const Device& open_device(const std::string& driver, const std::string& nvrtc,
                          const std::string& cublas);
// The opened device; throws ExecutionError when open_device has not succeeded.
const Device& device();
bool device_open();

// Throw ExecutionError("[where] <CUDA error text>") unless `r` is success.
void check(CUresult r, const char* where);

// Device memory, freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = 0; o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  CUdeviceptr ptr() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  CUdeviceptr ptr_ = 0;
  size_t bytes_ = 0;
};

// A loaded module, unloaded on destruction.
class Module {
 public:
  explicit Module(CUmodule m = nullptr) : module_(m) {}
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  CUmodule get() const { return module_; }

 private:
  CUmodule module_;
};

// Compile CUDA C with NVRTC for the device's architecture (cached on disk
// under cache_dir() by a hash of source, options and NVRTC version) and load it.
std::unique_ptr<Module> load_module(const std::string& source);

// NVRTC alone (no driver, no GPU): compile `source` for `arch` ("sm_90") and
// return the CUBIN, or throw with NVRTC's log. Lets machines without a GPU
// check that generated CUDA compiles.
std::string compile_only(const std::string& source, const std::string& arch,
                         const std::string& nvrtc);

}  // namespace luminal::cuda
