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

}  // namespace luminal
