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
   positions (B's rows) are the outer loop, split over the cores, so B
   streams once in memory order: in blocks summed in registers where the
   in-cache kernels exist (see the parallel branch), else position by
   position, each prefetched LM_AHEAD positions early. A_t's row r starts at a + a_off[t] + r * lda (unit stride
   along k); C_t is m x n row-major, the batches one after another. B_t(k, n)
   is b[b_off[t] + n * ldb + k] when b_trans (keys: one dot product per
   position), else b[b_off[t] + k * ldb + n] (values: each position's row
   added in, weighted). Products that fit in cache (not `parallel`) run
   batch by batch on the calling core (lm_few_rows_dots / _sums), where the
   ISA has those kernels (0 back where not: BLAS then). */
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
#if defined(__AVX512F__) && (defined(__clang__) || __GNUC__ >= 12)
/* One core's few-row product, batch by batch, for products that fit in
   cache: 16 float lanes as GCC/clang vectors (no immintrin.h, which costs a
   float program ~0.35 s of compile). */
typedef float lm_v16 __attribute__((vector_size(64)));
static inline lm_v16 lm_ld16(const float* p) {
  lm_v16 v;
  __builtin_memcpy(&v, p, 64);
  return v;
}
/* Lane i of the result: the sum of v[i]'s 16 lanes. A tree of shuffles
   that adds halves of pairs of vectors at each level: 45 operations for 16
   sums, where a reduction each takes ~8. */
static inline lm_v16 lm_sums16(const lm_v16 v[16]) {
  lm_v16 w[8], x[4], y[2];
  #pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) /* lanes 0-7: v[2i]'s 8 partial sums, 8-15: v[2i + 1]'s */
    w[i] = __builtin_shufflevector(v[2 * i], v[2 * i + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
           __builtin_shufflevector(v[2 * i], v[2 * i + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  #pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) /* block j of 4 lanes: v[4i + j]'s 4 partial sums */
    x[i] = __builtin_shufflevector(w[2 * i], w[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
           __builtin_shufflevector(w[2 * i], w[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  #pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) /* block j: 2 partial sums of v[8i + j], then 2 of v[8i + 4 + j] */
    y[i] = __builtin_shufflevector(x[2 * i], x[2 * i + 1], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29) +
           __builtin_shufflevector(x[2 * i], x[2 * i + 1], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
  /* block j: the sums of v[j], v[4 + j], v[8 + j], v[12 + j]; then in order */
  const lm_v16 z = __builtin_shufflevector(y[0], y[1], 0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30) +
                   __builtin_shufflevector(y[0], y[1], 1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31);
  return __builtin_shufflevector(z, z, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}
/* Row r of a (k long, k a multiple of 16) against positions [p, p + count)
   of b (rows ldb apart), count <= 16: c[r * n + p ..] */
static inline void lm_dots16(float* c, const float* ar, const float* b, int64_t ldb, int64_t k, int64_t p,
                             int64_t count) {
  lm_v16 v[16] = {{0}};
  #pragma GCC unroll 16
  for (int i = 0; i < 16; ++i)
    if (i < count) {
      const float* bp = b + (p + i) * ldb;
      lm_v16 s = lm_ld16(ar) * lm_ld16(bp);
      for (int64_t q = 16; q < k; q += 16) s += lm_ld16(ar + q) * lm_ld16(bp + q);
      v[i] = s;
    }
  const lm_v16 sums = lm_sums16(v);
  __builtin_memcpy(c + p, &sums, (size_t)count * 4);
}
/* c (m x n) = a (m x k, rows lda apart) times B(k, n) = b[n * ldb + k]:
   a dot product per row of a and position of b */
static void lm_few_rows_dots(float* c, const float* a, int64_t lda, const float* b, int64_t ldb,
                             int64_t m, int64_t n, int64_t k) {
  if (k % 16 == 0) {
    for (int64_t p = 0; p < n; p += 16)
      for (int64_t r = 0; r < m; ++r) lm_dots16(c + r * n, a + r * lda, b, ldb, k, p, n - p < 16 ? n - p : 16);
    return;
  }
  for (int64_t p = 0; p < n; ++p)
    for (int64_t r = 0; r < m; ++r) {
      float s = 0.0f;
      for (int64_t q = 0; q < k; ++q) s += a[r * lda + q] * b[p * ldb + q];
      c[r * n + p] = s;
    }
}
/* c (m x n) = a (m x k) times B(k, n) = b[k * ldb + n] (add: c += that):
   each position's row of b added to c's rows, weighted; 64 columns of 4
   rows summed at a time in registers */
static void lm_few_rows_sums(float* c, const float* a, int64_t lda, const float* b, int64_t ldb,
                             int64_t m, int64_t n, int64_t k, int add) {
  int64_t j = 0;
  for (; j + 64 <= n; j += 64)
    for (int64_t r0 = 0; r0 < m; r0 += 4) {
      const int64_t rows = m - r0 < 4 ? m - r0 : 4;
      lm_v16 acc[4][4] = {{{0}}};
      if (add)
        for (int64_t r = 0; r < rows; ++r) __builtin_memcpy(acc[r], c + (r0 + r) * n + j, 256);
      for (int64_t p = 0; p < k; ++p) {
        const float* bp = b + p * ldb + j;
        const lm_v16 b0 = lm_ld16(bp), b1 = lm_ld16(bp + 16), b2 = lm_ld16(bp + 32), b3 = lm_ld16(bp + 48);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; ++r)
          if (r < rows) {
            const float w = a[(r0 + r) * lda + p];
            acc[r][0] += w * b0;
            acc[r][1] += w * b1;
            acc[r][2] += w * b2;
            acc[r][3] += w * b3;
          }
      }
      for (int64_t r = 0; r < rows; ++r) __builtin_memcpy(c + (r0 + r) * n + j, acc[r], 256);
    }
  for (int64_t r = 0; r < m; ++r) /* the last < 64 columns */
    for (int64_t q = j; q < n; ++q) {
      float s = add ? c[r * n + q] : 0.0f;
      for (int64_t p = 0; p < k; ++p) s += a[r * lda + p] * b[p * ldb + q];
      c[r * n + q] = s;
    }
}
#define LM_FEW_ROWS_ALONE 1
#endif
int lm_interleaved_products(float* c, const float* a, int64_t lda, const int64_t* a_off,
                            const float* b, int64_t ldb, const int64_t* b_off, int b_trans,
                            int64_t batches, int64_t m, int64_t n, int64_t k, int parallel) {
  if (!parallel) { /* data in cache: batch by batch on this core, or BLAS (0) */
#ifdef LM_FEW_ROWS_ALONE
    for (int64_t t = 0; t < batches; ++t)
      if (b_trans) lm_few_rows_dots(c + t * m * n, a + a_off[t], lda, b + b_off[t], ldb, m, n, k);
      else lm_few_rows_sums(c + t * m * n, a + a_off[t], lda, b + b_off[t], ldb, m, n, k, 0);
    return 1;
#else
    return 0;
#endif
  }
#ifdef LM_FEW_ROWS_ALONE
  /* Blocks of positions over the cores, each block read in memory order
     (its rows are contiguous, every batch's piece side by side) and summed
     in registers by the in-cache kernels: 16 keys at a time, whose 16 sums
     share one shuffle tree (a dot product with its own horizontal sum per
     position, row and head read the cache at 15-30 GB/s); values 64
     positions at a time into each core's part. */
  if (b_trans && k % 16 == 0) {
    #pragma omp parallel
    {
      LM_SHARE((n + 15) / 16, lo, hi);
      for (int64_t q = lo; q < hi; ++q)
        for (int64_t t = 0; t < batches; ++t)
          for (int64_t r = 0; r < m; ++r)
            lm_dots16(c + (t * m + r) * n, a + a_off[t] + r * lda, b + b_off[t], ldb, k, 16 * q,
                      n - 16 * q < 16 ? n - 16 * q : 16);
    }
    return 1;
  }
#endif
  if (b_trans) {
    #pragma omp parallel
    {
      LM_SHARE(n, lo, hi);
      lm_interleaved_part(c, a, lda, a_off, b, ldb, b_off, 1, batches, m, n, k, lo, hi);
    }
    return 1;
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
      float* part = parts + omp_get_thread_num() * size;
#ifdef LM_FEW_ROWS_ALONE
      for (int64_t p = lo; p < hi; p += 64)
        for (int64_t t = 0; t < batches; ++t)
          lm_few_rows_sums(part + t * m * n, a + a_off[t] + p, lda, b + b_off[t] + p * ldb, ldb, m, n,
                           hi - p < 64 ? hi - p : 64, 1);
#else
      lm_interleaved_part(part, a, lda, a_off, b, ldb, b_off, 0, batches, m, n, k, lo, hi);
#endif
    }
  }
  for (int64_t i = 0; i < size; ++i) c[i] = 0.0f;
  if (!parts) { /* no memory for the parts: one core */
    lm_interleaved_part(c, a, lda, a_off, b, ldb, b_off, 0, batches, m, n, k, 0, k);
    return 1;
  }
  for (int64_t w = 0; w < used; ++w)
    for (int64_t i = 0; i < size; ++i) c[i] += parts[w * size + i];
  free(parts);
  return 1;
}
)";

}  // namespace luminal
