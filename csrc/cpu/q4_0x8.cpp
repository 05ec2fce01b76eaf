#include "cpu/q4_0x8.h"

namespace luminal {

// Printed after the int8, k-quant and half products and before
// kQuantMatmul (c_products.h): it uses lm_dpbusd and lm_quantize_rows, and
// lm_quant_matmul calls lm_q4_0x8_matmul.
const char* const kQ4_0x8 = R"(/* Q4_0 weights repacked for decode, as llama.cpp repacks Q4_0 at load. In
   GGML's layout a block of 32 is one row's, so a row's int8 dot product
   ends spread over 8 lanes, and decode paid a scale broadcast, a float
   multiply-add and finally a horizontal sum per row: the kernel was
   compute-bound below the memory bandwidth. Here 8 rows sit side by side,
   one per int32 lane. Per group of 8 rows and block of 32 columns, 144
   bytes: the 8 rows' f16 scales, then 4 parts of 32 bytes where bytes
   4r..4r+3 of part i hold row r's columns 8i..8i+3 (low nibbles) and
   8i+4..8i+7 (high nibbles). n is padded to a multiple of 8 with zero rows.
   The runtime (CPUProgram) packs each weight once, where this ISA has the
   kernel (lm_q4_0x8_size is 0 elsewhere, and GGML's layout is used).
   2-layer Q4_0 decode went from 59.5 to 85 tok/s (2 cores, Zen 3). */
int64_t lm_q4_0x8_size(int64_t n, int64_t k) { /* bytes, or 0: not used here */
#ifdef LM_Q4_0X8
  return (n + 7) / 8 * (k / 32) * 144;
#else
  (void)n; (void)k;
  return 0;
#endif
}
/* Packing is a byte shuffle done 8 columns at a time: a 64-bit word of a
   block's nibbles (low: columns 8h.., high: 16 + 8h..) makes a 32-bit lane
   (little-endian words, as on every CPU with the kernel). */
static inline uint32_t lm_q4_0x8_lane(uint64_t nibbles) { /* 8 columns, 0..15 each */
  return (uint32_t)nibbles | (uint32_t)(nibbles >> 32) << 4;
}
void lm_q4_0x8_pack(const float* src, float* dst, int64_t n, int64_t k) {
  const uint8_t* s = (const uint8_t*)src;
  uint8_t* d = (uint8_t*)dst;
  const int64_t nb = k / 32, groups = (n + 7) / 8;
  #pragma omp parallel for schedule(static) if (groups * nb > 4096)
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* o = d + (g * nb + b) * 144;
      memset(o, 0, 144);
      for (int r = 0; r < 8 && g * 8 + r < n; ++r) {
        const uint8_t* blk = s + ((g * 8 + r) * nb + b) * 18;
        o[2 * r] = blk[0];
        o[2 * r + 1] = blk[1];
        for (int h = 0; h < 2; ++h) { /* parts h (columns 8h..8h+7) and 2 + h (16 + 8h..) */
          uint64_t q;
          memcpy(&q, blk + 2 + 8 * h, 8);
          const uint32_t lo = lm_q4_0x8_lane(q & 0x0f0f0f0f0f0f0f0full);
          const uint32_t hi = lm_q4_0x8_lane(q >> 4 & 0x0f0f0f0f0f0f0f0full);
          memcpy(o + 16 + 32 * h + 4 * r, &lo, 4);
          memcpy(o + 16 + 32 * (2 + h) + 4 * r, &hi, 4);
        }
      }
    }
}
#ifdef LM_Q4_0X8
static inline __attribute__((always_inline)) __m256i lm_quad(const int8_t* x) { /* x[0..3] in every lane */
  int32_t v;
  memcpy(&v, x, 4);
  return _mm256_set1_epi32(v);
}
/* out[r * ldo + 0..lanes) for activation rows r < count against one group of
   8 rows (g8), the activations quantized per 32 (scales as, int8 aq, and
   the sums of every 16, s16; rows nb, k and 2 nb apart). Per block, 8 u8 x s8
   products of 4 columns each (an activation quad in every lane) and one
   float multiply-add for the 8 rows. The nibbles (0..15) enter unsigned and
   the sum starts from -8 x the block's activation sum: the signed product,
   exactly. Without VNNI the 8 products add in int16 first: each is at most
   2 * 15 * 128 = 3840 in size, so 8 of them fit. Each output gets the same
   operations at any `count`: a row decoded alone equals its row in a batch. */
static __attribute__((noinline)) void lm_q4_0x8_group(const uint8_t* g8, int64_t nb, const float* as,
                                                      const int8_t* aq, const int16_t* s16, int64_t k,
                                                      int64_t count, float* out, int64_t ldo, int lanes) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  for (int64_t r = 0; r < count; ++r) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = g8 + b * 144;
      const int8_t* x = aq + r * k + 32 * b;
      const int32_t x8 = 8 * (s16[2 * (r * nb + b)] + s16[2 * (r * nb + b) + 1]); /* 8 x the block's sum */
      lm_prefetch(blk + LM_PREFETCH_BYTES);
      lm_prefetch(blk + LM_PREFETCH_BYTES + 64);
      lm_prefetch(blk + LM_PREFETCH_BYTES + 128);
#ifdef LM_VNNI
      __m256i p = _mm256_set1_epi32(-x8);
      for (int i = 0; i < 4; ++i) {
        const __m256i v = _mm256_loadu_si256((const __m256i*)(blk + 16 + 32 * i));
        p = lm_dpbusd(p, _mm256_and_si256(v, low), lm_quad(x + 8 * i));
        p = lm_dpbusd(p, _mm256_and_si256(_mm256_srli_epi16(v, 4), low), lm_quad(x + 8 * i + 4));
      }
#else
      __m256i s16 = _mm256_setzero_si256();
      for (int i = 0; i < 4; ++i) {
        const __m256i v = _mm256_loadu_si256((const __m256i*)(blk + 16 + 32 * i));
        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_and_si256(v, low), lm_quad(x + 8 * i)));
        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), low),
                                                         lm_quad(x + 8 * i + 4)));
      }
      const __m256i p = _mm256_sub_epi32(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)),
                                         _mm256_set1_epi32(x8));
#endif
      const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)blk)),
                                     _mm256_set1_ps(as[r * nb + b]));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc);
    }
    if (lanes == 8) {
      _mm256_storeu_ps(out + r * ldo, acc);
    } else { /* the last group's padding rows are not outputs */
      float part[8];
      _mm256_storeu_ps(part, acc);
      for (int j = 0; j < lanes; ++j) out[r * ldo + j] = part[j];
    }
  }
}
/* out[rows, n] = a[rows, k] (row stride lda) @ w^T, w packed by
   lm_q4_0x8_pack; activations quantized per 32 as for GGML's layout. Returns
   0 (nothing written) when out of memory. */
static int lm_q4_0x8_matmul(float* out, const float* a, const float* w8, int64_t rows, int64_t n,
                            int64_t k, int64_t lda) {
  const int64_t nb = k / 32, groups = (n + 7) / 8;
  int8_t* aq = (int8_t*)malloc((size_t)(rows * k) + 32);
  float* as = (float*)malloc(sizeof(float) * (size_t)(rows * nb) + 32);
  int16_t* s16 = (int16_t*)malloc(sizeof(int16_t) * (size_t)(rows * nb * 2) + 32);
  if (!aq || !as || !s16) {
    free(aq); free(as); free(s16);
    return 0;
  }
  lm_quantize_rows(a, rows, k, lda, 32, aq, as, s16);
  LM_FOR(n * rows * k > 16384, g, groups,
         lm_q4_0x8_group((const uint8_t*)w8 + g * nb * 144, nb, as, aq, s16, k, rows, out + 8 * g, n,
                         n - 8 * g < 8 ? (int)(n - 8 * g) : 8));
  free(aq); free(as); free(s16);
  return 1;
}
#endif
)";

}  // namespace luminal
