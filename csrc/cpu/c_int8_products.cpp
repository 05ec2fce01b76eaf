#include "cpu/c_products.h"

namespace luminal {

// Q8_0/Q4_0 products in GGML's layout: the int8 helpers (VNNI where present),
// lm_dot_q (one weight row against 1..LM_QROWS activation rows); and the
// activations' int8 quantizer every int8 product uses.
const char* const kInt8Products = R"(/* Outputs of a Q8_0 or Q4_0 product for `count` (1..LM_QROWS) activation rows
   against one weight row w (nb blocks of `bb` bytes: 34 for Q8_0, 18 for
   Q4_0): the activations are quantized to int8 per 32-block (scales as,
   values aq, rows `k` apart), so the dot products run in int8. A weight block
   is loaded, unpacked and sign-split once for all the rows. */
#if defined(__AVX2__) && defined(__FMA__)
/* The 32 signed values of a Q8_0 (bb 34) or Q4_0 (bb 18) block. Q4_0: low
   nibbles are values 0..15, high nibbles 16..31, minus 8. */
static inline __attribute__((always_inline)) __m256i lm_unpack_block(const uint8_t* blk, int bb) {
  if (bb == 34) return _mm256_loadu_si256((const __m256i*)(blk + 2));
  __m128i packed = _mm_loadu_si128((const __m128i*)(blk + 2));
  __m128i lo = _mm_and_si128(packed, _mm_set1_epi8(0x0f));
  __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f));
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}
/* acc + the sums of every 4 products u8 x s8 (one vpdpbusd with VNNI), and
   acc + the sums of every 2 products s16 x s16 (vpdpwssd). Without VNNI,
   maddubs and madd: equal int32 lanes wherever maddubs' int16 pairs do not
   saturate, which our operands (|w| <= 128 or nibbles, |x| <= 127) never do. */
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define LM_VNNI(op) _mm256_##op##_epi32
#elif defined(__AVXVNNI__)
#define LM_VNNI(op) _mm256_##op##_avx_epi32
#endif
static inline __attribute__((always_inline)) __m256i lm_dpbusd(__m256i acc, __m256i u, __m256i s) {
#ifdef LM_VNNI
  return LM_VNNI(dpbusd)(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
static inline __attribute__((always_inline)) __m256i lm_dpwssd(__m256i acc, __m256i a, __m256i b) {
#ifdef LM_VNNI
  return LM_VNNI(dpwssd)(acc, a, b);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}
static inline __attribute__((always_inline)) float lm_hsum8(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif
#if defined(LM_NEON)
/* The int8 dot product of 32 weights (w0, w1) and 32 activations, in 4 lanes. */
static inline __attribute__((always_inline)) int32x4_t lm_dot32(int8x16_t w0, int8x16_t w1,
                                                                int8x16_t x0, int8x16_t x1) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1);
#else  /* each int16 product widened before it is summed: no overflow */
  int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
  s = vpadalq_s16(s, vmull_high_s8(w0, x0));
  s = vpadalq_s16(s, vmull_s8(vget_low_s8(w1), vget_low_s8(x1)));
  return vpadalq_s16(s, vmull_high_s8(w1, x1));
#endif
}
#endif
#ifndef LM_QROWS /* activation rows per weight block: AVX2's 16 registers hold 2 x 4 accumulators */
#if defined(__AVX2__) && defined(__FMA__)
#define LM_QROWS 4
#else
#define LM_QROWS 8
#endif
#endif
#if defined(__AVX2__) && defined(__FMA__)
/* Weight block b (at blk) against `count` activation rows, into acc[0..count).
   Q4_0: the nibbles (0..15) go into the product unsigned, which starts from
   -8 x the activation block's sum (x8[i * nb + b]) in its first lane: the
   same int32 total as the signed product, in fewer operations. */
static inline __attribute__((always_inline)) void lm_dot_q_block(
    const uint8_t* blk, int bb, const float* as, const int8_t* aq, const int32_t* x8, int64_t b,
    int64_t nb, int64_t k, int count, __m256* acc) {
  const float d = lm_half(blk);
  const __m256i zero = _mm256_setzero_si256();
  if (bb == 18) {
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(blk + 2)));
    const __m256i u = _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0)),
                                       _mm256_set1_epi8(0x0f)); /* low nibbles, then high */
    for (int i = 0; i < count; ++i) {
      const __m256i x = _mm256_loadu_si256((const __m256i*)(aq + i * k + b * 32));
      const __m256i dot = lm_dpbusd(_mm256_castsi128_si256(_mm_cvtsi32_si128(x8[i * nb + b])), u, x);
      acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(d * as[i * nb + b]), _mm256_cvtepi32_ps(dot), acc[i]);
    }
    return;
  }
  const __m256i wq = lm_unpack_block(blk, bb);
  const __m256i wabs = _mm256_sign_epi8(wq, wq); /* u8 x s8: |w| times x with w's sign */
  for (int i = 0; i < count; ++i) {
    const __m256i xs = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)(aq + i * k + b * 32)), wq);
    const __m256i dot = lm_dpbusd(zero, wabs, xs);
    acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(d * as[i * nb + b]), _mm256_cvtepi32_ps(dot), acc[i]);
  }
}
#endif
/* Always inlined: called with a constant count and bb it specializes to
   loops of constant trip count, so the accumulators stay in registers (with
   a variable count they lived on the stack: 2x slower). Every Q8_0/Q4_0
   output of the int8 kernels is this function's, one weight row at a time,
   so a row decoded alone equals its row in a batch.

   AVX2: two accumulator chains per activation row (even and odd blocks),
   so decode is not bound by the FMA latency, and the weights stream one
   row at a time (prefetched LM_PREFETCH_BYTES ahead). Reading 4
   rows side by side (4 streams a core) had read 39-41 GB/s on Zen 5 where
   a plain sum reads 49-53, and one row at a time reads 50-52 (72 -> 77-82
   where the VM's memory was faster; sum 80-83). */
static inline __attribute__((always_inline)) void lm_dot_q(
    const uint8_t* w, int bb, const float* as, const int8_t* aq, const int32_t* x8, int64_t nb, int64_t k,
    int count, float* out, int64_t out_stride) {
#if defined(__AVX2__) && defined(__FMA__)
  __m256 even[LM_QROWS], odd[LM_QROWS];
  for (int i = 0; i < LM_QROWS; ++i) even[i] = odd[i] = _mm256_setzero_ps();
  int64_t b = 0;
#ifdef __AVX512BW__
  if (bb == 34) { /* Q8_0, two blocks a step: b in a 512-bit register's low half (the even chain), b + 1
                     in its high half (odd); each half's operations are lm_dot_q_block's, in 2/3 the
                     instructions (decode: 37 -> 47 GB/s a core from L3) */
    __m512 acc[LM_QROWS];
    for (int i = 0; i < LM_QROWS; ++i) acc[i] = _mm512_setzero_ps();
    const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    for (; b + 2 <= nb; b += 2) {
      const uint8_t* blk = w + b * 34;
      lm_prefetch(blk + LM_PREFETCH_BYTES);
      lm_prefetch(blk + LM_PREFETCH_BYTES + 64);
      const __m512i wq = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(blk + 2))),
                                            _mm256_loadu_si256((const __m256i*)(blk + 36)), 1);
      const __m512i wabs = _mm512_abs_epi8(wq); /* u8 x s8: |w| times x with w's sign */
      const __mmask64 negative = _mm512_movepi8_mask(wq);
      uint16_t h0, h1;
      memcpy(&h0, blk, 2);
      memcpy(&h1, blk + 34, 2);
      const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128((int)(h0 | ((uint32_t)h1 << 16)))); /* both scales */
      for (int i = 0; i < count; ++i) {
        const __m512i x = _mm512_loadu_si512(aq + i * k + b * 32);
        const __m512i xs = _mm512_mask_sub_epi8(x, negative, _mm512_setzero_si512(), x);
#ifdef __AVX512VNNI__
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wabs, xs);
#else
        const __m512i dot = _mm512_madd_epi16(_mm512_maddubs_epi16(wabs, xs), _mm512_set1_epi16(1));
#endif
        const __m128 ds = _mm_mul_ps(d, _mm_castsi128_ps(_mm_loadl_epi64((const __m128i*)(as + i * nb + b))));
        acc[i] = _mm512_fmadd_ps(_mm512_permutexvar_ps(halves, _mm512_castps128_ps512(ds)), _mm512_cvtepi32_ps(dot),
                                 acc[i]);
      }
    }
    for (int i = 0; i < count; ++i) {
      even[i] = _mm512_castps512_ps256(acc[i]);
      odd[i] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[i]), 1));
    }
  }
#endif
  for (; b + 2 <= nb; b += 2) {
    lm_prefetch(w + b * bb + LM_PREFETCH_BYTES);
    lm_prefetch(w + b * bb + LM_PREFETCH_BYTES + 64);
    lm_dot_q_block(w + b * bb, bb, as, aq, x8, b, nb, k, count, even);
    lm_dot_q_block(w + (b + 1) * bb, bb, as, aq, x8, b + 1, nb, k, count, odd);
  }
  if (b < nb) lm_dot_q_block(w + b * bb, bb, as, aq, x8, b, nb, k, count, even);
  for (int i = 0; i < count; ++i) out[i * out_stride] = lm_hsum8(_mm256_add_ps(even[i], odd[i]));
#elif defined(LM_NEON)
  (void)x8;
  float32x4_t acc[LM_QROWS];
  for (int i = 0; i < LM_QROWS; ++i) acc[i] = vdupq_n_f32(0.0f);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * bb;
    const float d = lm_half(blk);
    int8x16_t w0, w1;  /* the block's values 0..15 and 16..31 */
    if (bb == 34) {
      w0 = vld1q_s8((const int8_t*)blk + 2);
      w1 = vld1q_s8((const int8_t*)blk + 18);
    } else {
      const uint8x16_t packed = vld1q_u8(blk + 2);
      w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
      w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), vdupq_n_s8(8));
    }
    for (int i = 0; i < count; ++i) {
      const int8_t* x = aq + i * k + b * 32;
      acc[i] = vfmaq_n_f32(acc[i], vcvtq_f32_s32(lm_dot32(w0, w1, vld1q_s8(x), vld1q_s8(x + 16))),
                           d * as[i * nb + b]);
    }
  }
  for (int i = 0; i < count; ++i) out[i * out_stride] = vaddvq_f32(acc[i]);
#else
  (void)x8;
  for (int i = 0; i < count; ++i) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * bb;
      int32_t sum = 0;
      for (int j = 0; j < 32; ++j) {
        int q = bb == 34 ? (int)(int8_t)blk[2 + j]
                         : (j < 16 ? (blk[2 + j] & 0x0f) : (blk[2 + j - 16] >> 4)) - 8;
        sum += q * (int32_t)aq[i * k + b * 32 + j];
      }
      acc += lm_half(blk) * as[i * nb + b] * (float)sum;
    }
    out[i * out_stride] = acc;
  }
#endif
}
/* C's roundf (half away from zero), in operations GCC vectorizes (v - t is
   exact): the scalar roundf calls cost 1-4% of a k-quant prefill product. */
static inline float lm_round_away(float v) {
  const float t = truncf(v);
  return t + (fabsf(v - t) >= 0.5f ? copysignf(1.0f, v) : 0.0f);
}
/* Activation rows quantized to int8 per `block` values (32: Q8_0, 256:
   llama.cpp's Q8_K) with scale amax / 127, as llama.cpp does; with sums16,
   also the int sum of every 16 (for the k-quants' offsets). */
static inline void lm_quantize_row(const float* x, int64_t k, int block, int8_t* q, float* s,
                                   int16_t* sums16) {
  for (int64_t b = 0; b < k / block; ++b) {
    const float* xb = x + b * block;
    int8_t* y = q + b * block;
    float amax = 0.0f;
#ifdef __AVX512F__
    /* GCC leaves the max and the sums below in scalar code: a 512-row
       prompt's activations, 4096 wide, took 2.96 ms of a 512 x 4096 -> 16
       int8 GEMM, now 0.75 (a 4-layer 512-token Q8_0 prefill, in turn in
       one process: best 786 -> 831 tok/s). max(v, m) keeps m where v is
       NaN, as the scalar comparison does, and the rounding is
       lm_round_away's operations, lane by lane: the same bytes. */
    __m512 m = _mm512_setzero_ps();
    for (int j = 0; j < block; j += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xb + j)), m);
    amax = _mm512_reduce_max_ps(m);
#else
    for (int j = 0; j < block; ++j) { float v = fabsf(xb[j]); amax = v > amax ? v : amax; }
#endif
    const float d = amax / 127.0f, inv = d != 0.0f ? 1.0f / d : 0.0f;
    const float id = inv <= 3.40282347e38f ? inv : 0.0f; /* a subnormal d: 1 / d is inf */
    s[b] = d;
#ifdef __AVX512F__
    for (int j = 0; j < block; j += 16) {
      const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(xb + j), _mm512_set1_ps(id));
      const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
      const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
      const __m128i q8 = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one)));
      _mm_storeu_si128((__m128i*)(y + j), q8);
      if (sums16) sums16[b * (block / 16) + j / 16] = (int16_t)_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(q8));
    }
    continue;
#endif
    for (int j = 0; j < block; ++j) y[j] = (int8_t)lm_round_away(xb[j] * id);
    if (sums16)
      for (int g = 0; g < block / 16; ++g) {
        int sum = 0;
        for (int j = 0; j < 16; ++j) sum += y[16 * g + j];
        sums16[b * (block / 16) + g] = (int16_t)sum;
      }
  }
}
static void lm_quantize_rows(const float* a, int64_t rows, int64_t k, int64_t lda, int block, int8_t* q,
                             float* s, int16_t* sums16) {
  const int64_t nb = k / block;
  LM_FOR(rows * k > 65536, r, rows,
         lm_quantize_row(a + r * lda, k, block, q + r * k, s + r * nb,
                         sums16 ? sums16 + r * nb * (block / 16) : NULL));
}
)";

}  // namespace luminal
