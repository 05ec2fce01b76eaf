#include "cpu/c_products.h"

namespace luminal {

// Q8_0/Q4_0 prompts on AVX512-VNNI (AMD Zen 4 and 5, Intel Ice Lake and
// later without AMX): activations quantized to int8 per 32 as decode and
// llama.cpp quantize them, products in int8 with vpdpbusd, which does twice
// the multiply-adds of AVX512-BF16's vdpbf16ps per instruction at the same
// rate (both 2 a cycle on a Zen 5 core). Each block's two scales cost a
// multiply and an FMA (on the same pipes), so a 16-column x 32-deep block is
// 10 operations where the bf16 tiles take 16: a 512 x 4096 -> 14336 product
// ran 63 -> 43 ms on a Zen 5 core pair. With AMX, the bf16 tiles are faster.
const char* const kInt8Gemm = R"(#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && !defined(LM_AMX)
#define LM_INT8_GEMM 1
/* The fewest rows of a Q8_0 (bb 34) or Q4_0 product the GEMM takes: below,
   decode's kernels read the weights once without packing them (4096 ->
   14336 on a Zen 5 core pair: Q8_0 3 rows 1.85 ms against the GEMM's 2.09,
   4 rows 1.88 against 3.44 on the bf16 tiles; Q4_0's repacked kernel 6 rows
   2.07 against 2.34, 8 rows 2.70 against 2.22). */
#define LM_INT8_GEMM_ROWS(bb) ((bb) == 34 ? 4 : 8)
/* A packed weight block: 16 columns x 32 values of k. Line p (64 bytes)
   holds values 4p..4p+3 of each column as unsigned bytes (value + 128),
   column q at bytes 4q.., the operand one vpdpbusd multiplies with 4
   activations broadcast; then the 16 columns' float scales. */
#define LM_I8_LINES 512
#define LM_I8_BLOCK (LM_I8_LINES + 64)
/* Weight rows j.. (16 of them; zero past n) of nb blocks of `bb` bytes
   (34 Q8_0, 18 Q4_0; rows ld bytes apart) packed into nb blocks at dst. */
static void lm_i8_pack16(const uint8_t* w, int64_t ld, int bb, int64_t j, int64_t n, int64_t nb, uint8_t* dst) {
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  const uint8_t* w0 = w + j * ld;
  int64_t b = 0;
  if (j + 16 <= n && ld <= INT32_MAX / 16) {
    /* two blocks at a time: row q's 64 values as one register, transposed */
    const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)ld));
    for (; b + 2 <= nb; b += 2) {
      __m512i r[16];
      for (int q = 0; q < 16; ++q) {
        const uint8_t* blk = w0 + q * ld + b * bb;
        lm_prefetch(blk + 8 * bb); /* 16 rows stream at once, more than the prefetchers follow */
        r[q] = _mm512_inserti64x4(_mm512_castsi256_si512(lm_unpack_block(blk, bb)), lm_unpack_block(blk + bb, bb), 1);
      }
      lm_transpose16(r);
      uint8_t* d = dst + b * LM_I8_BLOCK;
      for (int p = 0; p < 8; ++p) {
        _mm512_storeu_si512(d + 64 * p, _mm512_xor_si512(r[p], flip));
        _mm512_storeu_si512(d + LM_I8_BLOCK + 64 * p, _mm512_xor_si512(r[p + 8], flip));
      }
      for (int h = 0; h < 2; ++h) { /* the 16 scales: the low half of a word at each block */
        const __m512i words = _mm512_i32gather_epi32(rows, w0 + (b + h) * bb, 1);
        _mm512_storeu_ps(d + h * LM_I8_BLOCK + LM_I8_LINES, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words)));
      }
    }
  }
  for (; b < nb; ++b) { /* an odd last block, or columns reaching past n */
    uint8_t* d = dst + b * LM_I8_BLOCK;
    float* scales = (float*)(d + LM_I8_LINES);
    for (int q = 0; q < 16; ++q) {
      uint8_t v[32];
      memset(v, 0x80, 32); /* the value 0 */
      scales[q] = 0.0f;
      if (j + q < n) {
        const uint8_t* blk = w0 + q * ld + b * bb;
        _mm256_storeu_si256((__m256i*)v, _mm256_xor_si256(lm_unpack_block(blk, bb), _mm256_set1_epi8((char)0x80)));
        scales[q] = lm_half(blk);
      }
      for (int p = 0; p < 8; ++p) memcpy(d + 64 * p + 4 * q, v + 4 * p, 4);
    }
  }
}
/* R (a constant: 16, 8, 4, 2 or 1) activation rows against 16 packed
   columns: out's R x 16 sums (rows n apart). The activations x hold a block
   of 16 rows x 32 int8 values at a time (the rows' blocks b at x + 512 b);
   corr and as, 16 per block, -128 x each row-block's sum (the +128 of the
   unsigned weights taken back: the int32 sums are exact) and its scale.
   The R float sums and the block's 8 weight lines stay in registers. */
static inline __attribute__((always_inline)) void lm_i8_rows(const uint8_t* wt, const int8_t* x, const int32_t* corr,
                                                             const float* as, int64_t nb, float* out, int64_t n,
                                                             const int R) {
  __m512 acc[16];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = wt + b * LM_I8_BLOCK;
    __m512i w[8];
    #pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) w[p] = _mm512_loadu_si512(blk + 64 * p);
    const __m512 dw = _mm512_loadu_ps(blk + LM_I8_LINES);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const int8_t* xr = x + b * 512 + r * 32;
      __m512i s = _mm512_set1_epi32(corr[b * 16 + r]);
      #pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) {
        int32_t four;
        memcpy(&four, xr + 4 * p, 4);
        s = _mm512_dpbusd_epi32(s, w[p], _mm512_set1_epi32(four));
      }
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(as[b * 16 + r])), acc[r]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(out + r * n, acc[r]);
}
/* `count` (1..16) rows of a 16-row group: lm_i8_rows with constant R, so
   its sums stay in registers. */
static __attribute__((noinline)) void lm_i8_group(const uint8_t* wt, const int8_t* x, const int32_t* corr,
                                                  const float* as, int64_t nb, float* out, int64_t n, int count) {
  int r = 0;
  if (count == 16) {
    lm_i8_rows(wt, x, corr, as, nb, out, n, 16);
    return;
  }
  for (; r + 8 <= count; r += 8) lm_i8_rows(wt, x + r * 32, corr + r, as + r, nb, out + r * n, n, 8);
  for (; r + 4 <= count; r += 4) lm_i8_rows(wt, x + r * 32, corr + r, as + r, nb, out + r * n, n, 4);
  for (; r + 2 <= count; r += 2) lm_i8_rows(wt, x + r * 32, corr + r, as + r, nb, out + r * n, n, 2);
  for (; r < count; ++r) lm_i8_rows(wt, x + r * 32, corr + r, as + r, nb, out + r * n, n, 1);
}
/* Columns a thread packs and runs together: 4 x 16 (packed, 72 KB each for
   k = 4096), so each 16-row group's activations are read from L3 once for
   64 columns, then from L2 (32, 64 and 128 measured within 3%). */
#define LM_I8_COLS 64
/* out[m, n] = a[m, k] (row stride lda) @ w^T for Q8_0 (bb 34) or Q4_0
   (bb 18) w, k a multiple of 32. Activations quantized by lm_quantize_row
   (decode's), laid out 16 rows a group, block by block. Returns 0 (nothing
   written) where memory is short. */
static int lm_int8_gemm(float* out, const float* a, const float* wf, int64_t m, int64_t n, int64_t k, int64_t lda,
                        int bb) {
  const uint8_t* w = (const uint8_t*)wf;
  const int64_t nb = k / 32, groups = (m + 15) / 16;
  int8_t* x = (int8_t*)malloc((size_t)(groups * 16 * k) + 64);
  int32_t* corr = (int32_t*)malloc(sizeof(int32_t) * (size_t)(groups * 16 * nb));
  float* as = (float*)malloc(sizeof(float) * (size_t)(groups * 16 * nb));
  int failed = !x || !corr || !as;
  #pragma omp parallel if (!failed && m * k > 65536)
  {
    int8_t* row = failed ? NULL : (int8_t*)malloc((size_t)k + 32);
    float* rs = failed ? NULL : (float*)malloc(sizeof(float) * (size_t)nb + 32);
    if (!failed && (!row || !rs)) {
      #pragma omp atomic write
      failed = 1;
    }
    #pragma omp barrier
    #pragma omp for
    for (int64_t r = 0; r < groups * 16; ++r) {
      if (failed) continue;
      const int64_t g = r / 16, i = r % 16;
      if (r < m) lm_quantize_row(a + r * lda, k, 32, row, rs, NULL);
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t at = (g * nb + b) * 16 + i;
        __m256i v = _mm256_setzero_si256(); /* rows past m: zero */
        as[at] = 0.0f;
        if (r < m) {
          v = _mm256_loadu_si256((const __m256i*)(row + b * 32));
          as[at] = rs[b];
        }
        _mm256_storeu_si256((__m256i*)(x + at * 32), v);
        const __m512i wide = _mm512_add_epi32(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(v)),
                                              _mm512_cvtepi8_epi32(_mm256_extracti128_si256(v, 1)));
        corr[at] = -128 * _mm512_reduce_add_epi32(wide);
      }
    }
    free(row);
    free(rs);
  }
  #pragma omp parallel if (!failed && m * n * k > 65536)
  {
    uint8_t* wt = failed ? NULL : (uint8_t*)malloc((size_t)(LM_I8_COLS / 16 * nb * LM_I8_BLOCK));
    if (!failed && !wt) {
      #pragma omp atomic write
      failed = 1;
    }
    #pragma omp barrier
    #pragma omp for schedule(dynamic, 1)
    for (int64_t j0 = 0; j0 < n; j0 += LM_I8_COLS) {
      if (failed) continue;
      const int64_t tiles = (n - j0 + 15) / 16 < LM_I8_COLS / 16 ? (n - j0 + 15) / 16 : LM_I8_COLS / 16;
      for (int64_t t = 0; t < tiles; ++t) lm_i8_pack16(w, nb * bb, bb, j0 + 16 * t, n, nb, wt + t * nb * LM_I8_BLOCK);
      for (int64_t g = 0; g < groups; ++g) {
        const int count = m - g * 16 < 16 ? (int)(m - g * 16) : 16;
        for (int64_t t = 0; t < tiles; ++t) {
          float* o = out + g * 16 * n + j0 + 16 * t;
          if (j0 + 16 * t + 16 <= n) {
            lm_i8_group(wt + t * nb * LM_I8_BLOCK, x + g * nb * 512, corr + g * nb * 16, as + g * nb * 16, nb, o, n,
                        count);
          } else { /* the last columns: their 16 sums through a buffer */
            float sums[16 * 16];
            lm_i8_group(wt + t * nb * LM_I8_BLOCK, x + g * nb * 512, corr + g * nb * 16, as + g * nb * 16, nb, sums,
                        16, count);
            for (int r = 0; r < count; ++r) memcpy(o + r * n, sums + r * 16, sizeof(float) * (size_t)(n - j0 - 16 * t));
          }
        }
      }
    }
    free(wt);
  }
  free(x);
  free(corr);
  free(as);
  return !failed;
}
#endif
)";

}  // namespace luminal
