#include "core/host_buffer.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace luminal {

void advise_huge_pages(const void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static const bool enabled = [] {
    const char* v = std::getenv("LUMINAL_HUGE_PAGES");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  if (enabled && bytes >= 4 * kHuge) {
    uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
    uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // advice only
  }
#else
  (void)data;
  (void)bytes;
#endif
}

std::shared_ptr<std::vector<float>> copy_to_host_buffer(const float* data, size_t count) {
  auto buf = std::make_shared<std::vector<float>>();
  buf->reserve(count);  // allocated, not yet touched (malloc maps big blocks fresh)
  advise_huge_pages(buf->data(), count * sizeof(float));
  buf->assign(data, data + count);
  return buf;
}

}  // namespace luminal
