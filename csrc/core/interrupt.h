// Ctrl-C in a long execute(): the run loops poll between kernels, and the
// check the bindings install (Python's pending signal handlers) throws to end
// the run. The core itself knows nothing of Python.
#pragma once

namespace luminal {

using InterruptCheck = void (*)();  // throws to stop the run; returns otherwise

void set_interrupt_check(InterruptCheck check);

// Runs the check when 20 ms or more passed since its last run on this thread:
// a step costs one clock read, a decode step's hundreds of kernels a few us.
void poll_interrupt();

// Runs the check now (after a child process died of a signal, say).
void check_interrupt_now();

}  // namespace luminal
