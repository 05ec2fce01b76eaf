// Build C source into a shared library with the system C compiler and load
// it. Libraries are cached on disk by a hash of source and flags, written with
// a temp file and a rename so concurrent processes never see half a file.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace luminal {

// A loaded library. It is never unloaded (see the destructor).
class SharedLibrary {
 public:
  explicit SharedLibrary(const std::string& path);
  ~SharedLibrary();
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;
  void* symbol(const std::string& name) const;  // throws if missing
  void* find(const std::string& name) const;    // nullptr if missing
  const std::string& path() const { return path_; }

 private:
  void* handle_ = nullptr;
  std::string path_;
};

// The C compiler to use: $CC, else the first of cc, gcc, clang on PATH; "" if none.
std::string find_c_compiler();
// Where built kernels are cached: $LUMINAL_CACHE_DIR, else $XDG_CACHE_HOME/luminal,
// else ~/.cache/luminal.
std::string cache_dir();
// A 64-bit hash of `s` (FNV-1a), for cache keys.
uint64_t content_hash(const std::string& s);
// Compile (or find in the cache) and load. Throws ExecutionError with the
// compiler's output when the build fails.
std::shared_ptr<SharedLibrary> build_c_library(const std::string& source);

}  // namespace luminal
