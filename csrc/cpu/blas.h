// A BLAS sgemm loaded at run time (OpenBLAS from the scipy-openblas32 wheel on
// Linux), so the package builds without BLAS headers and works without BLAS:
// with none loaded, matrix products run as generated kernels.
#pragma once
#include <cstdint>
#include <string>

namespace luminal {

// cblas_sgemm's signature, 32-bit ints (scipy-openblas32).
using SgemmFn = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float* a, int lda, const float* b, int ldb, float beta, float* c,
                         int ldc);

// cblas_sgemv's signature: y = alpha * op(A) x + beta * y.
using SgemvFn = void (*)(int order, int trans, int m, int n, float alpha, const float* a,
                         int lda, const float* x, int incx, float beta, float* y, int incy);

// Load `path` and find its sgemm (scipy_cblas_sgemm or cblas_sgemm). Returns
// false (and keeps none) when that fails.
bool load_blas(const std::string& path);
SgemmFn blas_sgemm();  // nullptr when none is loaded
SgemvFn blas_sgemv();  // nullptr when none is loaded (or it has no sgemv)
std::string blas_path();
// Before a product of m*n*k multiply-adds: small ones and matrix-vector
// products run on one BLAS thread. Their threads' hand-offs cost more than
// the work, and under CPU contention a descheduled BLAS thread stalls the
// rest (measured: 2 ms -> 70 ms for a 4096x4096 matrix-vector product).
// Returns how many such products the caller may run at once (one per core
// for single-threaded ones, else 1).
int blas_prepare(int64_t m, int64_t n, int64_t k);

inline constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111, kCblasTrans = 112;

}  // namespace luminal
