#include "cpu/blas.h"

#include <dlfcn.h>

#include <mutex>

namespace luminal {

namespace {
std::mutex mutex;
SgemmFn sgemm = nullptr;
SgemvFn sgemv = nullptr;
std::string loaded_path;
using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();
SetThreadsFn set_threads = nullptr;
int default_threads = 1, current_threads = 1;
constexpr int64_t kSmallProduct = int64_t(1) << 22;  // multiply-adds
}  // namespace

bool load_blas(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex);
  // Kept loaded for the life of the process: kernels may hold its functions.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return false;
  void* fn = dlsym(handle, "scipy_cblas_sgemm");
  if (!fn) fn = dlsym(handle, "cblas_sgemm");
  if (!fn) {
    dlclose(handle);
    return false;
  }
  sgemm = reinterpret_cast<SgemmFn>(fn);
  loaded_path = path;
  void* gemv = dlsym(handle, "scipy_cblas_sgemv");
  if (!gemv) gemv = dlsym(handle, "cblas_sgemv");
  sgemv = reinterpret_cast<SgemvFn>(gemv);
  void* set = dlsym(handle, "scipy_openblas_set_num_threads");
  void* get = dlsym(handle, "scipy_openblas_get_num_threads");
  if (!set) set = dlsym(handle, "openblas_set_num_threads");
  if (!get) get = dlsym(handle, "openblas_get_num_threads");
  if (set && get) {
    set_threads = reinterpret_cast<SetThreadsFn>(set);
    default_threads = current_threads = reinterpret_cast<GetThreadsFn>(get)();
  }
  return true;
}

SgemvFn blas_sgemv() {
  std::lock_guard<std::mutex> lock(mutex);
  return sgemv;
}

SgemmFn blas_sgemm() {
  std::lock_guard<std::mutex> lock(mutex);
  return sgemm;
}

int blas_prepare(int64_t m, int64_t n, int64_t k) {
  std::lock_guard<std::mutex> lock(mutex);
  if (!set_threads) return 1;
  bool small = m == 1 || n == 1 || m * n * k < kSmallProduct;
  int want = small ? 1 : default_threads;
  if (want != current_threads) set_threads(current_threads = want);
  return small ? default_threads : 1;
}

std::string blas_path() {
  std::lock_guard<std::mutex> lock(mutex);
  return loaded_path;
}

}  // namespace luminal
