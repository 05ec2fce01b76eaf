"""Environment defaults set before luminal's native libraries start.

OpenMP (the CPU kernels' threads) and OpenBLAS (their matrix products) read
these when they load, so they are set at ``import luminal``; a value the user
set wins. They are process-wide: libraries loaded later in the process (torch's
OpenMP, numpy's OpenBLAS) and child processes see them too.

* ``OMP_WAIT_POLICY=PASSIVE`` with ``GOMP_SPINCOUNT=1000``: an idle OpenMP
  worker spins for some 20 us, then sleeps. Spinning long (libgomp's
  default, ~3 ms) took the cores from OpenBLAS's threads; sleeping at once
  made each kernel wait ~10 us for its workers to wake (a 32-layer model with
  tiny dims runs ~800 kernels a token: 3.4 ms with sleeping workers, 2.2-2.6
  ms with this spin, and a training step no slower).
* ``OPENBLAS_THREAD_TIMEOUT=4``: idle OpenBLAS threads sleep after 2^4 cycles
  instead of ~2^28, which on few cores took them from the fused kernels that
  run between products (a training step ran 20% slower).
"""

from __future__ import annotations

import os
import sys


def _libgomp_loaded() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return "libgomp" in maps.read()
    except OSError:
        return False


# True when another library (torch, typically) loaded OpenMP before luminal
# could ask for passive workers: they will spin (CPUCompiler warns once).
OMP_WORKERS_SPIN = "OMP_WAIT_POLICY" not in os.environ and _libgomp_loaded()

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
