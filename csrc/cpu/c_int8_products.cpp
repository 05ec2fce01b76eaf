#include "cpu/c_products.h"

namespace luminal {

// Q8_0/Q4_0 products in GGML's layout: the int8 helpers (VNNI where present),
// lm_dot_q for any rows, the 2x4 prompt tiles and the 4x1 decode rows; and
// the activations' int8 quantizer every int8 product uses.
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
#ifndef LM_QROWS
#define LM_QROWS 8 /* activation rows per weight block: 8 accumulators fit AVX2's 16 registers */
#endif
/* Always inlined: called with count == LM_QROWS it specializes to a loop of
   constant trip count, so the accumulators stay in registers (with a
   variable count they lived on the stack: 2x slower). */
static inline __attribute__((always_inline)) void lm_dot_q(
    const uint8_t* w, int bb, const float* as, const int8_t* aq, int64_t nb, int64_t k, int count,
    float* out, int64_t out_stride) {
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc[LM_QROWS];
  for (int i = 0; i < LM_QROWS; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * bb;
    const float d = lm_half(blk);
    const __m256i wq = lm_unpack_block(blk, bb);
    const __m256i wabs = _mm256_sign_epi8(wq, wq); /* u8 x s8: |w| times x with w's sign */
    for (int i = 0; i < count; ++i) {
      __m256i xs = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)(aq + i * k + b * 32)), wq);
      const __m256i dot = lm_dpbusd(_mm256_setzero_si256(), wabs, xs);
      acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(d * as[i * nb + b]), _mm256_cvtepi32_ps(dot), acc[i]);
    }
  }
  for (int i = 0; i < count; ++i) out[i * out_stride] = lm_hsum8(acc[i]);
#elif defined(LM_NEON)
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
#if defined(__AVX2__) && defined(__FMA__)
/* Two weight rows against 4 activation rows (8 accumulators): each
   activation block loaded feeds both weight rows, and the 4 rows' int8
   activations (16 KB for k = 4096) stay in L1 while the weight rows stream.
   The same float operations in the same order as lm_dot_q: equal results. */
static inline __attribute__((always_inline)) void lm_dot_q_2x4(
    const uint8_t* w0, const uint8_t* w1, int bb, const float* as, const int8_t* aq, int64_t nb,
    int64_t k, float* out, int64_t out_stride) {
  __m256 acc0[4], acc1[4];
  for (int i = 0; i < 4; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t *b0 = w0 + b * bb, *b1 = w1 + b * bb;
    const __m256 d0 = _mm256_set1_ps(lm_half(b0)), d1 = _mm256_set1_ps(lm_half(b1));
    const __m256i q0 = lm_unpack_block(b0, bb), q1 = lm_unpack_block(b1, bb);
    const __m256i a0 = _mm256_sign_epi8(q0, q0), a1 = _mm256_sign_epi8(q1, q1);
    for (int i = 0; i < 4; ++i) {
      const __m256i x = _mm256_loadu_si256((const __m256i*)(aq + i * k + b * 32));
      const __m256 s = _mm256_broadcast_ss(as + i * nb + b);
      const __m256i p0 = lm_dpbusd(_mm256_setzero_si256(), a0, _mm256_sign_epi8(x, q0));
      const __m256i p1 = lm_dpbusd(_mm256_setzero_si256(), a1, _mm256_sign_epi8(x, q1));
      acc0[i] = _mm256_fmadd_ps(_mm256_mul_ps(d0, s), _mm256_cvtepi32_ps(p0), acc0[i]);
      acc1[i] = _mm256_fmadd_ps(_mm256_mul_ps(d1, s), _mm256_cvtepi32_ps(p1), acc1[i]);
    }
  }
  for (int i = 0; i < 4; ++i) {
    out[i * out_stride] = lm_hsum8(acc0[i]);
    out[i * out_stride + 1] = lm_hsum8(acc1[i]);
  }
}
#endif
#if defined(__AVX2__) && defined(__FMA__)
/* Four weight rows (ldw bytes apart) against one activation row (decode):
   four independent accumulator chains, where lm_dot_q's single chain was
   bound by the FMA latency (2.2 -> 1.3 ns per block on Zen 3, so a core
   outruns its share of the memory bandwidth), and each activation block is
   loaded once. The same float operations in the same order as lm_dot_q per
   output: equal results. */
static inline __attribute__((always_inline)) void lm_dot_q_4x1_of(
    const uint8_t* w, int64_t ldw, int bb, const float* as, const int8_t* aq, int64_t nb, float* out) {
  __m256 acc[4];
  for (int j = 0; j < 4; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i x = _mm256_loadu_si256((const __m256i*)(aq + b * 32));
    const float s = as[b];
    /* Q4_0 (without its repacked copy, q4_0x8.cpp): the nibbles (0..15) go
       into the product unsigned, which starts from -8 * (the sum of every 4
       activations): the same int32 lanes as the signed product, without its
       two sign operations per row (2-layer Q4_0 decode 44.5 -> 55.1 tok/s). */
    const __m256i zero = _mm256_setzero_si256();
    const __m256i minus_x8 =
        bb == 18 ? _mm256_sub_epi32(zero, lm_dpbusd(zero, _mm256_set1_epi8(8), x)) : zero;
    for (int j = 0; j < 4; ++j) {
      const uint8_t* blk = w + j * ldw + b * bb;
      lm_prefetch(blk + 8 * ldw); /* the same place 8 rows on: 2 steps ahead (27 -> 35 GB/s) */
      __m256i p;
      if (bb == 18) {
        const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(blk + 2)));
        const __m256i u = _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0)),
                                           _mm256_set1_epi8(0x0f)); /* low nibbles, then high */
        p = lm_dpbusd(minus_x8, u, x);
      } else {
        const __m256i q = lm_unpack_block(blk, bb);
        p = lm_dpbusd(zero, _mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q));
      }
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(lm_half(blk) * s), _mm256_cvtepi32_ps(p), acc[j]);
    }
  }
  for (int j = 0; j < 4; ++j) out[j] = lm_hsum8(acc[j]);
}
/* Not inlined: in the caller's OpenMP body the four row pointers spilled to
   the stack (1.55 instead of 1.28 ns per block). */
static __attribute__((noinline)) void lm_dot_q_4x1(const uint8_t* w, int64_t ldw, int bb, const float* as,
                                                   const int8_t* aq, int64_t nb, float* out) {
  if (bb == 34) lm_dot_q_4x1_of(w, ldw, 34, as, aq, nb, out);
  else lm_dot_q_4x1_of(w, ldw, 18, as, aq, nb, out);
}
#endif
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
