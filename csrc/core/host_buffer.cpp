#include "core/host_buffer.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace luminal {

std::shared_ptr<std::vector<float>> copy_to_host_buffer(const float* data, size_t count) {
  auto buf = std::make_shared<std::vector<float>>();
  buf->reserve(count);  // allocated, not yet touched (malloc maps big blocks fresh)
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static const bool enabled = [] {
    const char* v = std::getenv("LUMINAL_HUGE_PAGES");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  if (enabled && count * sizeof(float) >= 4 * kHuge) {
    uintptr_t begin = (reinterpret_cast<uintptr_t>(buf->data()) + kHuge - 1) & ~(kHuge - 1);
    uintptr_t end = reinterpret_cast<uintptr_t>(buf->data() + count) & ~(kHuge - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // advice only
  }
#endif
  buf->assign(data, data + count);
  return buf;
}

}  // namespace luminal
