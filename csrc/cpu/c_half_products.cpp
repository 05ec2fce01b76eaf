#include "cpu/c_products.h"

namespace luminal {

// F16/BF16 products (decode dot-product tiles), and the packed float32 GEMM on
// weights widened in cache that every 16+-row Q8_0/Q4_0/half product runs.
const char* const kHalfProducts = R"(#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define LM_HALF_SIMD 1
static inline __attribute__((always_inline)) __m256 lm_half8(const uint16_t* p, int bf16) {
  __m128i h = _mm_loadu_si128((const __m128i*)p);
  return bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
              : _mm256_cvtph_ps(h);
}
#elif defined(LM_NEON)
#define LM_HALF_NEON 1
static inline __attribute__((always_inline)) float32x4_t lm_half4(const uint16_t* p, int bf16) {
  const uint16x4_t h = vld1_u16(p);
  return bf16 ? vreinterpretq_f32_u32(vshll_n_u16(h, 16)) : vcvt_f32_f16(vreinterpret_f16_u16(h));
}
#endif
/* out[i * ldo] (+= when add) = the sum over t < len of a[i * lda + t] * w[t],
   for na (1..3) activation rows against one weight row. Always inlined
   with constant na and bf16, so the accumulators stay in registers and each
   weight vector, widened once, serves every activation row. Every output of
   the products below is this function's, so a row decoded alone equals its
   row in a batch of up to 4 (longer batches add k in slices of 1024).

   Four accumulator chains per row (pieces of 8 in turn): with two, decode
   was bound by the FMA latency (35 GB/s a core from L3 on Zen 5, 2 cores
   68-70, where this VM's memory reads up to 83; four: 44-45 and 84-105).
   Tiles of 3 activation rows keep 5- and 12-row prompts as fast as the 4-row
   tiles with two chains were. The weights stream one row at a time
   (prefetched LM_PREFETCH_BYTES ahead): reading 4 rows side by side (4
   streams a core) read 38-41 GB/s on Zen 5 where a plain sum reads 46-49,
   one row at a time 47-49. */
static inline __attribute__((always_inline)) void lm_dot_h(
    const float* a, int64_t lda, int na, const uint16_t* w, int64_t len, int bf16, float* out,
    int64_t ldo, int add) {
  int64_t t = 0;
  float sum[3];
#ifdef LM_HALF_SIMD
  __m256 acc[3][4]; /* 12 accumulators and 4 weight vectors: AVX2's 16 registers */
  for (int i = 0; i < na; ++i)
    for (int c = 0; c < 4; ++c) acc[i][c] = _mm256_setzero_ps();
  for (; t + 32 <= len; t += 32) {
    if (na == 1) lm_prefetch(w + t + LM_PREFETCH_BYTES / 2);
    __m256 wv[4];
    for (int c = 0; c < 4; ++c) wv[c] = lm_half8(w + t + 8 * c, bf16);
    for (int i = 0; i < na; ++i)
      for (int c = 0; c < 4; ++c)
        acc[i][c] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i * lda + t + 8 * c), wv[c], acc[i][c]);
  }
  for (; t + 8 <= len; t += 8) {
    const __m256 wv = lm_half8(w + t, bf16);
    for (int i = 0; i < na; ++i) acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i * lda + t), wv, acc[i][0]);
  }
  for (int i = 0; i < na; ++i)
    sum[i] = lm_hsum8(_mm256_add_ps(_mm256_add_ps(acc[i][0], acc[i][1]), _mm256_add_ps(acc[i][2], acc[i][3])));
#elif defined(LM_HALF_NEON)
  float32x4_t acc[3];
  for (int i = 0; i < na; ++i) acc[i] = vdupq_n_f32(0.0f);
  for (; t + 4 <= len; t += 4) {
    const float32x4_t wv = lm_half4(w + t, bf16);
    for (int i = 0; i < na; ++i) acc[i] = vfmaq_f32(acc[i], vld1q_f32(a + i * lda + t), wv);
  }
  for (int i = 0; i < na; ++i) sum[i] = vaddvq_f32(acc[i]);
#else
  for (int i = 0; i < na; ++i) sum[i] = 0.0f;
#endif
  for (int i = 0; i < na; ++i) {
    float s = sum[i];
    for (int64_t u = t; u < len; ++u)
      s += a[i * lda + u] * (bf16 ? lm_load_bf16_packed((const float*)w, u) : lm_load_f16_packed((const float*)w, u));
    out[i * ldo] = add ? out[i * ldo] + s : s;
  }
}
/* Weight rows [4 jq, 4 jq + 4) of lm_half_block's product, one at a time,
   against activation rows [r0, r1): 3 at a time, then one. */
static __attribute__((noinline)) void lm_half_rows4(
    float* out, const float* a, const uint16_t* w, int64_t r0, int64_t r1, int64_t n, int64_t k,
    int64_t lda, int64_t k0, int64_t len, int bf16, int64_t jq) {
  const int add = k0 > 0;
  for (int64_t j = 4 * jq; j < 4 * jq + 4 && j < n; ++j) {
    const uint16_t* wj = w + j * k + k0;
    int64_t r = r0;
    for (; r + 3 <= r1; r += 3)
      lm_dot_h(a + r * lda + k0, lda, 3, wj, len, bf16, out + r * n + j, n, add);
    for (; r < r1; ++r)
      lm_dot_h(a + r * lda + k0, lda, 1, wj, len, bf16, out + r * n + j, n, add);
  }
}
/* Rows [r0, r1) of out[rows, n] (+)= a[:, k0:k0+len] @ w[:, k0:k0+len]^T, w
   (n, k) halves. */
static inline __attribute__((always_inline)) void lm_half_block(
    float* out, const float* a, const uint16_t* w, int64_t r0, int64_t r1, int64_t n, int64_t k,
    int64_t lda, int64_t k0, int64_t len, int bf16) {
  LM_FOR((r1 - r0) * n * len > 16384, jq, (n + 3) / 4,
         lm_half_rows4(out, a, w, r0, r1, n, k, lda, k0, len, bf16, jq));
}
#ifdef LM_HALF_SIMD
/* Many rows (prefill) are compute-bound: a packed outer-product GEMM.
   ct[i * ldct + j] += sum_t wp[i * len + t] * ap[16 * t + j] for 6 weight
   rows i and 16 activation rows j: 12 accumulators, each step two vector
   loads of the packed activations and six broadcast weights. */
static inline __attribute__((always_inline)) void lm_hgemm_tile(
    const float* ap, const float* wp, int64_t len, float* ct, int64_t ldct) {
  __m256 acc[6][2];
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t t = 0; t < len; ++t) {
    const __m256 a0 = _mm256_loadu_ps(ap + 16 * t), a1 = _mm256_loadu_ps(ap + 16 * t + 8);
    for (int i = 0; i < 6; ++i) {
      const __m256 wv = _mm256_broadcast_ss(wp + i * len + t);
      acc[i][0] = _mm256_fmadd_ps(wv, a0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(wv, a1, acc[i][1]);
    }
  }
  for (int i = 0; i < 6; ++i) {
    float* c = ct + i * ldct;
    _mm256_storeu_ps(c, _mm256_add_ps(_mm256_loadu_ps(c), acc[i][0]));
    _mm256_storeu_ps(c + 8, _mm256_add_ps(_mm256_loadu_ps(c + 8), acc[i][1]));
  }
}
#define LM_HKC 128 /* k per pass: a 16-row activation panel of it (8 KB) stays in L1 */
#define LM_HMC 48  /* weight rows widened per block (24 KB, in L2) */
/* dst[0, len) = weight row `row` over k [k0, k0 + len), widened to float32
   exactly: fmt 0 f16_packed, 1 bf16_packed, 34 Q8_0, 18 Q4_0 (then k0 and
   len are multiples of 32). */
static inline const uint8_t* lm_weight_at(const float* wf, int64_t row, int64_t k, int64_t kk,
                                          int fmt) { /* the block holding weight (row, kk) */
  return (const uint8_t*)wf + (fmt >= 18 ? (row * (k / 32) + kk / 32) * fmt : 2 * (row * k + kk));
}
static inline void lm_widen(float* dst, const float* wf, int64_t row, int64_t k, int64_t k0,
                            int64_t len, int fmt) {
  int64_t t = 0;
  if (fmt >= 18) {
    for (; t < len; t += 32) {
      const uint8_t* blk = lm_weight_at(wf, row, k, k0 + t, fmt);
      const __m256 d = _mm256_set1_ps(lm_half(blk));
      const __m256i q = fmt == 34 ? lm_unpack_block(blk, 34) : lm_unpack_block(blk, 18);
      const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
      const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
      for (int j = 0; j < 4; ++j)
        _mm256_storeu_ps(dst + t + 8 * j,
                         _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[j]))));
    }
    return;
  }
  const uint16_t* src = (const uint16_t*)lm_weight_at(wf, row, k, k0, fmt);
  if (fmt) for (; t + 8 <= len; t += 8) _mm256_storeu_ps(dst + t, lm_half8(src + t, 1));
  else for (; t + 8 <= len; t += 8) _mm256_storeu_ps(dst + t, lm_half8(src + t, 0));
  for (; t < len; ++t)
    dst[t] = fmt ? lm_load_bf16_packed((const float*)src, t) : lm_load_f16_packed((const float*)src, t);
}
/* out[m, n] = a[m, k] @ w^T (w in format fmt, see lm_widen), m <= 256. The
   activations are packed transposed in 16-row panels (at[p][t][16],
   zero-padded, 64-byte aligned so no panel load splits a cache line). Each
   thread takes blocks of 48 weight rows and, per 128-wide k slice, widens
   them and runs every panel against them, accumulating transposed in its own
   cb[48][m16] (48 KB at most); a finished block is written out while cb is
   still in cache. A product-sized buffer transposed once at the end cost
   2-5% of a 64 x 4096 x 14336 product (zeroing it, strided reads from L3).
   Returns 0 (nothing written) when out of memory. */
static int lm_wide_gemm(float* out, const float* a, const float* w, int64_t m, int64_t n,
                        int64_t k, int64_t lda, int fmt) {
  const int64_t mp = (m + 15) / 16, m16 = mp * 16, np = (n + 5) / 6, per = LM_HMC / 6;
  const int64_t blocks = (np + per - 1) / per;
  float* at_mem = (float*)malloc(sizeof(float) * (size_t)(m16 * k) + 64);
  if (!at_mem) return 0;
  float* at = (float*)(((uintptr_t)at_mem + 63) & ~(uintptr_t)63);
  #pragma omp parallel
  {
    #pragma omp for schedule(static)
    for (int64_t p = 0; p < mp; ++p)
      for (int64_t t = 0; t < k; ++t)
        for (int j = 0; j < 16; ++j) {
          const int64_t r = p * 16 + j;
          at[(p * k + t) * 16 + j] = r < m ? a[r * lda + t] : 0.0f;
        }
    float wb[LM_HMC * LM_HKC]; /* 24 KB of stack */
    float cb[LM_HMC * 256];    /* 48 KB of stack */
    #pragma omp for schedule(static)
    for (int64_t bq = 0; bq < blocks; ++bq) {
      const int64_t q0 = bq * per, q1 = q0 + per < np ? q0 + per : np;
      for (int64_t i = 0; i < (q1 - q0) * 6 * m16; ++i) cb[i] = 0.0f;
      for (int64_t k0 = 0; k0 < k; k0 += LM_HKC) {
        const int64_t len = k - k0 < LM_HKC ? k - k0 : LM_HKC;
        for (int64_t row = q0 * 6; row < q1 * 6; ++row) {
          float* dst = wb + (row - q0 * 6) * len;
          if (row < n) lm_widen(dst, w, row, k, k0, len, fmt);
          else for (int64_t t = 0; t < len; ++t) dst[t] = 0.0f; /* rows past n */
        }
        /* Prefetch the next slice of these weight rows, a few lines before
           each tile: the rows are 8+ KB apart, so the hardware prefetcher
           does not follow them and widening stalled on memory (about 7 of
           50 ms for a 14336 x 4096 product); all at once, the prefetches
           stalled the tiles' loads instead. */
        const int64_t row_bytes = fmt >= 18 ? LM_HKC / 32 * fmt : 2 * LM_HKC;
        const int64_t per_row = (row_bytes + 63) / 64;
        const int64_t lines = k0 + LM_HKC < k ? (q1 - q0) * 6 * per_row : 0;
        const int64_t per_tile = (lines + mp * (q1 - q0) - 1) / (mp * (q1 - q0));
        int64_t line = 0;
        for (int64_t p = 0; p < mp; ++p)
          for (int64_t q = q0; q < q1; ++q) {
            for (const int64_t end = line + per_tile; line < end && line < lines; ++line) {
              const int64_t row = q0 * 6 + line / per_row;
              if (row < n)
                _mm_prefetch((const char*)lm_weight_at(w, row, k, k0 + LM_HKC, fmt) +
                                 line % per_row * 64, _MM_HINT_T0);
            }
            lm_hgemm_tile(at + (p * k + k0) * 16, wb + (q - q0) * 6 * len, len,
                          cb + (q - q0) * 6 * m16 + p * 16, m16);
          }
      }
      const int64_t j0 = q0 * 6, j1 = q1 * 6 < n ? q1 * 6 : n;
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = j0; j < j1; ++j) out[r * n + j] = cb[(j - j0) * m16 + r];
    }
  }
  free(at_mem);
  return 1;
}
#ifdef LM_BF16_TILES /* kAmxTiles, printed before this; kAmxProducts after: prefill on bf16 tiles */
static int lm_amx_gemm(float* out, const float* a, const float* w, int64_t m, int64_t n, int64_t k,
                       int64_t lda, int fmt);
#endif
/* lm_wide_gemm over all rows, 256 at a time; returns the rows done. */
static int64_t lm_wide_gemm_rows(float* out, const float* a, const float* w, int64_t rows, int64_t n,
                                 int64_t k, int64_t lda, int fmt) {
  int64_t r0 = 0;
  for (; r0 < rows; r0 += 256)
    if (!lm_wide_gemm(out + r0 * n, a + r0 * lda, w, rows - r0 < 256 ? rows - r0 : 256, n, k, lda,
                      fmt))
      break;
  return r0 < rows ? r0 : rows;
}
#endif
/* out[rows, n] = a[rows, k] (row stride lda) @ w^T for f16_packed or
   bf16_packed w of n rows, in float32. Decode (few rows) streams each
   weight row once through dot-product tiles; 16+ rows run lm_wide_gemm.
   Without AVX2/F16C, or out of memory, the tiles walk k in slices so a
   block of activation rows (64 x 1024 floats, 256 KB) stays in L2. */
static void lm_half_matmul(float* out, const float* a, const float* wf, int64_t rows, int64_t n,
                           int64_t k, int64_t lda, int bf16) {
  const uint16_t* w = (const uint16_t*)wf;
#ifdef LM_BF16_TILES /* prefill on the tiles where asked (lm_amx_gemm; LM_TILES_HALF_ROWS) */
  if (rows >= LM_TILES_HALF_ROWS && k > 0 && lm_amx_gemm(out, a, wf, rows, n, k, lda, bf16)) return;
#endif
#ifdef LM_HALF_SIMD
  if (rows >= 16 && k > 0) { /* prefill */
    const int64_t done = lm_wide_gemm_rows(out, a, wf, rows, n, k, lda, bf16);
    out += done * n; a += done * lda; rows -= done; /* out of memory: the rest by tiles */
  }
#endif
  const int64_t kb = rows <= 4 ? k : 1024, rb = 64;
  if (k == 0) {
    for (int64_t i = 0; i < rows * n; ++i) out[i] = 0.0f;
    return;
  }
  for (int64_t k0 = 0; k0 < k; k0 += kb) {
    const int64_t len = k - k0 < kb ? k - k0 : kb;
    for (int64_t r0 = 0; r0 < rows; r0 += rb) {
      const int64_t r1 = rows - r0 < rb ? rows : r0 + rb;
      if (bf16) lm_half_block(out, a, w, r0, r1, n, k, lda, k0, len, 1);
      else lm_half_block(out, a, w, r0, r1, n, k, lda, k0, len, 0);
    }
  }
}
)";

}  // namespace luminal
