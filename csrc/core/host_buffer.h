// Host buffers for graph inputs.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

namespace luminal {

// A new buffer holding a copy of data[0, count). Large ones (weights) ask
// Linux for transparent huge pages before their first touch: streaming
// gigabytes of weights per decoded token then misses the TLB once per 2 MB
// instead of once per 4 KB. (LUMINAL_HUGE_PAGES=0 turns this off.)
std::shared_ptr<std::vector<float>> copy_to_host_buffer(const float* data, size_t count);

// The huge-page advice alone, for memory [data, data + bytes) not yet
// touched (8 MB and up; nothing elsewhere or when turned off).
void advise_huge_pages(const void* data, size_t bytes);

}  // namespace luminal
