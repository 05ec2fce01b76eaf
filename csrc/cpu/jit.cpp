#include "cpu/jit.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "core/errors.h"
#include "core/interrupt.h"

namespace luminal {

namespace fs = std::filesystem;

uint64_t content_hash(const std::string& s) {  // FNV-1a
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

namespace {

std::string quote(const std::string& s);

bool on_path(const std::string& program) {
  std::string cmd = "command -v " + quote(program) + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// Run a shell command, capturing stdout+stderr; returns the exit status.
int run(const std::string& cmd, std::string& output) {
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) output.append(buf.data(), n);
  return pclose(pipe);
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

SharedLibrary::SharedLibrary(const std::string& path) : path_(path) {
  // OpenMP threads that spin after a kernel steal the cores OpenBLAS needs for
  // the GEMM that often follows (3x slower transformer blocks on 2 cores), so
  // they sleep instead, unless the user chose otherwise. libgomp reads this
  // when the first kernel library loads it.
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  setenv("GOMP_SPINCOUNT", "1000", /*overwrite=*/0);  // ~20 us, then sleep (see _env.py)
  handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) throw ExecutionError(std::string("[CPUCompiler] cannot load ") + path + ": " + dlerror());
}

// Kernel libraries stay loaded until the process exits: OpenMP's worker
// threads keep pointers into the last kernels they ran, and unloading code a
// thread may still touch crashes at shutdown. The cost is one mapping per
// distinct compiled program.
SharedLibrary::~SharedLibrary() = default;

void* SharedLibrary::find(const std::string& name) const { return dlsym(handle_, name.c_str()); }

void* SharedLibrary::symbol(const std::string& name) const {
  void* p = find(name);
  if (!p) throw ExecutionError("[CPUCompiler] symbol " + name + " missing in " + path_);
  return p;
}

std::string find_c_compiler() {
  // An explicit $CC that does not exist means "no compiler", not a silent swap.
  if (const char* cc = std::getenv("CC"); cc && *cc) return on_path(cc) ? cc : "";
  for (const char* c : {"cc", "gcc", "clang"})
    if (on_path(c)) return c;
  return "";
}

std::string cache_dir() {
  if (const char* d = std::getenv("LUMINAL_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/luminal";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/luminal";
  return (fs::temp_directory_path() / "luminal-cache").string();
}

std::shared_ptr<SharedLibrary> build_c_library(const std::string& source) {
  std::string cc = find_c_compiler();
  if (cc.empty())
    throw ExecutionError("[CPUCompiler] no C compiler found: set CC or install gcc or clang");
  // -ffp-contract=off: no fused multiply-adds, so results match the reference
  // executor bit for bit; -march=native: the host's vector ISA.
  // -fno-math-errno: kernels never read errno, and the errno branch of
  // sqrtf/exp2f/log2f kept every loop using them from vectorizing.
  // -fno-trapping-math: kernels never read FP exception flags; with them
  // tracked, gcc keeps `a < b ? 1 : 0` (LessThan: relu, masks, where) a
  // branch, and every loop holding one ran scalar. Values are unchanged.
  const std::string flags =
      "-O3 -march=native -ffp-contract=off -fno-math-errno -fno-trapping-math -fPIC -shared "
      "-std=c99";
  fs::path dir = fs::path(cache_dir()) / "cpu";
  std::error_code ec;
  fs::create_directories(dir, ec);
  char key[32];
  std::snprintf(key, sizeof key, "%016llx",
                (unsigned long long)content_hash(cc + "\n" + flags + "\n" + source));
  fs::path lib = dir / (std::string(key) + ".so");
  if (fs::exists(lib)) return std::make_shared<SharedLibrary>(lib.string());

  std::string tag = std::string(key) + "." + std::to_string(getpid());
  fs::path c_file = dir / (tag + ".c"), tmp_lib = dir / (tag + ".so");
  {
    std::ofstream out(c_file);
    out << source;
    if (!out) throw ExecutionError("[CPUCompiler] cannot write " + c_file.string());
  }
  std::string log;
  std::string base = quote(cc) + " " + flags + " " + quote(c_file.string()) + " -o " +
                     quote(tmp_lib.string()) + " -lm";
  // Best first: OpenMP threads + glibc's vector math; then OpenMP alone; then
  // neither (single-threaded kernels still work).
  int status = -1;
  bool killed = false;
  for (const char* extra : {" -fopenmp -DLM_USE_MVEC -lmvec", " -fopenmp", ""}) {
    log.clear();
    status = run(base + extra, log);
    // Killed (Ctrl-C reaches the compiler too): stop, rather than build and
    // cache a slower fallback under the same key while the user waits.
    killed = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) > 128);
    if (status == 0 || killed) break;
  }
  fs::remove(c_file, ec);
  if (status != 0) {
    fs::remove(tmp_lib, ec);
    if (killed) check_interrupt_now();  // a pending Ctrl-C raises its KeyboardInterrupt here
    throw ExecutionError("[CPUCompiler] the C compiler (" + cc + ") " +
                         (killed ? "was stopped by a signal" : "failed") + ":\n" + log.substr(0, 4000));
  }
  fs::rename(tmp_lib, lib, ec);  // atomic; another process may have won the race
  if (ec && !fs::exists(lib)) throw ExecutionError("[CPUCompiler] cannot store " + lib.string());
  if (ec) fs::remove(tmp_lib, ec);
  return std::make_shared<SharedLibrary>(lib.string());
}

}  // namespace luminal
