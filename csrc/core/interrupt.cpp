#include "core/interrupt.h"

#include <atomic>
#include <chrono>

namespace luminal {

namespace {
std::atomic<InterruptCheck> installed{nullptr};
constexpr std::chrono::milliseconds kEvery{20};
}  // namespace

void set_interrupt_check(InterruptCheck check) { installed.store(check); }

void check_interrupt_now() {
  if (const InterruptCheck check = installed.load(std::memory_order_relaxed)) check();
}

void poll_interrupt() {
  const InterruptCheck check = installed.load(std::memory_order_relaxed);
  if (!check) return;
  thread_local auto last = std::chrono::steady_clock::now();
  const auto now = std::chrono::steady_clock::now();
  if (now - last < kEvery) return;
  last = now;
  check();
}

}  // namespace luminal
