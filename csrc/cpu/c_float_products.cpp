#include "cpu/c_float_products.h"

namespace luminal {

// Matrix-vector products (decode steps: one activation row) and few-row
// products over interleaved matrices (decode attention over a KV cache),
// called by CPUProgram instead of sgemv/sgemm, which stream the weight on
// one core, or read the cache matrix by matrix: here the work is split over
// the cores and the memory read in order.
const char* const kFloatProducts = R"(#include <stdlib.h>
/* x (stride incx) . w, k long. */
static inline float lm_dot_row(const float* x, int64_t incx, const float* w, int64_t k) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t t = 0;
  if (incx == 1) {
    for (; t + 8 <= k; t += 8) {
      #pragma omp simd
      for (int l = 0; l < 8; ++l) acc[l] += x[t + l] * w[t + l];
    }
  }
  float sum = 0.0f;
  for (; t < k; ++t) sum += x[t * incx] * w[t];
  for (int l = 0; l < 8; ++l) sum += acc[l];
  return sum;
}
/* y[j0, j0 + 256) for b read row-major (b[k * ldb + n]). */
static inline void lm_matvec_cols(float* y, const float* x, int64_t incx, const float* b, int64_t n,
                                  int64_t k, int64_t ldb, int64_t j0) {
  const int64_t j1 = j0 + 256 < n ? j0 + 256 : n;
  float acc[256];
  for (int64_t j = 0; j < 256; ++j) acc[j] = 0.0f;
  for (int64_t t = 0; t < k; ++t) {
    const float xv = x[t * incx];
    const float* row = b + t * ldb;
    #pragma omp simd
    for (int64_t j = j0; j < j1; ++j) acc[j - j0] += xv * row[j];
  }
  for (int64_t j = j0; j < j1; ++j) y[j] = acc[j - j0];
}
/* y[n] = sum_k x[k * incx] * B(k, n); B(k, n) is b[n * ldb + k] when trans
   (a Linear's weight read as W^T) else b[k * ldb + n]. */
void lm_matvec(float* y, const float* x, int64_t incx, const float* b, int64_t n, int64_t k,
               int64_t ldb, int trans) {
  if (trans)
    LM_FOR(n * k > 16384, j, n, y[j] = lm_dot_row(x, incx, b + j * ldb, k));
  else
    LM_FOR(n * k > 16384, q, (n + 255) / 256, lm_matvec_cols(y, x, incx, b, n, k, ldb, 256 * q));
}
/* Products C_t = A_t @ B_t (t < batches) of a few rows each, whose B
   matrices interleave: B's batch dims step inside its rows, as in a KV cache
   laid out (position, heads, head dim). Read matrix by matrix, each row of
   one is a short piece of its own page, which the hardware prefetcher does
   not reach in time (decode attention read its cache at 4-8 GB/s); here the
   positions (B's rows) are the outer loop, split over the cores, and each
   position is prefetched LM_AHEAD positions early, so B streams once in
   memory order. A_t's row r starts at a + a_off[t] + r * lda (unit stride
   along k); C_t is m x n row-major, the batches one after another. B_t(k, n)
   is b[b_off[t] + n * ldb + k] when b_trans (keys: one dot product per
   position), else b[b_off[t] + k * ldb + n] (values: each position's row
   added in, weighted). */
#define LM_AHEAD 4 /* measured: 4 and 16 alike, both well ahead of no prefetch */
/* Positions [p0, p1) of every B_t, in memory order: a dot product per row of
   A (b_trans: C's column p), or the position's row added to C's rows,
   weighted (c zeroed before). */
static void lm_interleaved_part(float* c, const float* a, int64_t lda, const int64_t* a_off,
                                const float* b, int64_t ldb, const int64_t* b_off, int b_trans,
                                int64_t batches, int64_t m, int64_t n, int64_t k, int64_t p0,
                                int64_t p1) {
  const int64_t row = b_trans ? k : n; /* a position's piece of one B_t */
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t t = 0; t < batches; ++t) {
      const float* bp = b + b_off[t] + p * ldb;
      if (p + LM_AHEAD < p1)
        for (int64_t q = 0; q < row; q += 16) __builtin_prefetch(bp + LM_AHEAD * ldb + q);
      for (int64_t r = 0; r < m; ++r) {
        if (b_trans) {
          const float* ar = a + a_off[t] + r * lda;
          float s = 0.0f;
          #pragma omp simd reduction(+:s)
          for (int64_t q = 0; q < k; ++q) s += ar[q] * bp[q];
          c[(t * m + r) * n + p] = s;
        } else {
          const float w = a[a_off[t] + r * lda + p];
          float* cr = c + (t * m + r) * n;
          #pragma omp simd
          for (int64_t q = 0; q < n; ++q) cr[q] += w * bp[q];
        }
      }
    }
}
void lm_interleaved_products(float* c, const float* a, int64_t lda, const int64_t* a_off,
                             const float* b, int64_t ldb, const int64_t* b_off, int b_trans,
                             int64_t batches, int64_t m, int64_t n, int64_t k) {
  /* CPUProgram calls this only for products that read megabytes: always
     worth both cores. */
  if (b_trans) {
    #pragma omp parallel
    {
      LM_SHARE(n, lo, hi);
      lm_interleaved_part(c, a, lda, a_off, b, ldb, b_off, 1, batches, m, n, k, lo, hi);
    }
    return;
  }
  /* Each core sums its positions' terms apart; the parts are added in core
     order, so a result does not depend on which core finished first. */
  const int64_t size = batches * m * n;
  float* parts = 0;
  int64_t used = 1;
  #pragma omp parallel
  {
    #pragma omp single
    {
      used = omp_get_num_threads();
      parts = (float*)calloc((size_t)(used * size), sizeof(float));
    }
    if (parts) {
      LM_SHARE(k, lo, hi);
      lm_interleaved_part(parts + omp_get_thread_num() * size, a, lda, a_off, b, ldb, b_off, 0,
                          batches, m, n, k, lo, hi);
    }
  }
  for (int64_t i = 0; i < size; ++i) c[i] = 0.0f;
  if (!parts) { /* no memory for the parts: one core */
    lm_interleaved_part(c, a, lda, a_off, b, ldb, b_off, 0, batches, m, n, k, 0, k);
    return;
  }
  for (int64_t w = 0; w < used; ++w)
    for (int64_t i = 0; i < size; ++i) c[i] += parts[w * size + i];
  free(parts);
}
)";

}  // namespace luminal
