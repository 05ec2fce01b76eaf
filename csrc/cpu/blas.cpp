#include "cpu/blas.h"

#include <dlfcn.h>

#include <mutex>

namespace luminal {

namespace {
std::mutex mutex;
SgemmFn sgemm = nullptr;
std::string loaded_path;
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
  return true;
}

SgemmFn blas_sgemm() {
  std::lock_guard<std::mutex> lock(mutex);
  return sgemm;
}

std::string blas_path() {
  std::lock_guard<std::mutex> lock(mutex);
  return loaded_path;
}

}  // namespace luminal
