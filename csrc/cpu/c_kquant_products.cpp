#include "cpu/c_products.h"

namespace luminal {

// Super-block (k-quant Q2_K..Q6_K and IQ4_XS) products: one weight row against 1
// or 4 activation rows quantized per 256 (lm_k_tile), on AVX2 and NEON; defines
// LM_K_INT8 where one exists.
const char* const kKQuantProducts = R"(/* A Q4_K super-block's 12 bytes of 6-bit scales and mins (at blk + 4) as 16
   bytes in 4 words: p[0..1] the 8 scales, p[2..3] the 8 mins. Sub-blocks
   0..3 are the low 6 bits of bytes 0..3 (4..7 for mins); 4..7 take their
   low 4 bits from bytes 8..11 and their top 2 from the top of bytes 0..3
   (4..7). */
static inline void lm_q4k_unpack(const uint8_t* blk, uint32_t p[4]) {
  uint32_t u[3];
  memcpy(u, blk + 4, 12);
  p[0] = u[0] & 0x3f3f3f3fu;
  p[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  p[2] = u[1] & 0x3f3f3f3fu;
  p[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
}
/* Q3_K's 16 scales (12 bytes at blk + 96, 6 bits each, stored + 32) as 16
   bytes in 4 words, still + 32: scale g's low 4 bits are nibble g / 8 of
   byte g % 8, its top 2 bits 2 (g / 4) of byte 8 + g % 4. */
static inline void lm_q3k_unpack(const uint8_t* blk, uint32_t p[4]) {
  uint32_t u[3];
  memcpy(u, blk + 96, 12);
  p[0] = (u[0] & 0x0f0f0f0fu) | ((u[2] & 0x03030303u) << 4);
  p[1] = (u[1] & 0x0f0f0f0fu) | (((u[2] >> 2) & 0x03030303u) << 4);
  p[2] = ((u[0] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 4) & 0x03030303u) << 4);
  p[3] = ((u[1] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 6) & 0x03030303u) << 4);
}
#if defined(__AVX2__) && defined(__FMA__)
/* GFNI's affine map over GF(2) that moves bits [s, s + n) of every byte to
   bits [d, d + n) and clears the rest: its matrix (one per 64-bit word)
   has row d + i (byte 7 - d - i) take bit s + i. One operation for a shift
   and a mask. */
static inline __attribute__((always_inline)) unsigned long long lm_gf_matrix(int s, int d, int n) {
  unsigned long long m = 0;
  for (int i = 0; i < n; ++i) m |= 1ull << (8 * (7 - d - i) + s + i);
  return m;
}
/* Bits [s, s + n) of every byte of v at bits [d, d + n), the rest 0: the
   affine map where there is GFNI, else a 16-bit shift (bits that cross a
   byte fall outside the mask) and the mask. */
static inline __attribute__((always_inline)) __m256i lm_bits256(__m256i v, int s, int n, int d) {
#ifdef __GFNI__
  return _mm256_gf2p8affine_epi64_epi8(v, _mm256_set1_epi64x((long long)lm_gf_matrix(s, d, n)), 0);
#else
  const __m256i moved = s > d ? _mm256_srli_epi16(v, s - d) : s < d ? _mm256_slli_epi16(v, d - s) : v;
  return _mm256_and_si256(moved, _mm256_set1_epi8((char)(((1 << n) - 1) << d)));
#endif
}
/* IQ4_XS's sub-block s (32 values: 16 bytes, low nibbles the first 16) as
   int8 levels, by a byte shuffle of the levels in both 128-bit lanes */
static inline __m256i lm_iq4xs_run(const uint8_t* blk, int s) {
  const __m128i v = _mm_loadu_si128((const __m128i*)(blk + 8 + 16 * s));
  const __m256i levels = _mm256_set_epi64x((long long)LM_IQ4_LEVELS_HI, (long long)LM_IQ4_LEVELS_LO,
                                           (long long)LM_IQ4_LEVELS_HI, (long long)LM_IQ4_LEVELS_LO);
#ifdef __GFNI__ /* low nibbles in the low 128 bits, high in the high */
  const __m256i nibbles = _mm256_gf2p8affine_epi64_epi8(
      _mm256_broadcastsi128_si256(v), _mm256_set_epi64x((long long)lm_gf_matrix(4, 0, 4), (long long)lm_gf_matrix(4, 0, 4),
                                                        (long long)lm_gf_matrix(0, 0, 4), (long long)lm_gf_matrix(0, 0, 4)), 0);
#else
  const __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0f));
#endif
  return _mm256_shuffle_epi8(levels, nibbles);
}
/* Byte-shuffle masks that spread int16 lane i of a register's low 128 bits
   over its low half and lane j of its high 128 bits over its high half:
   (j, j) for j < 8 (row m = j), then (2r, 2r + 1) for r < 4 (row 8 + r).
   A table, as llama.cpp keeps one: masks built per use cost as much as the
   products (and byte-shift intrinsics need constant counts, which loop
   indices are not for clang or at -O0). */
#define LM_L2(i) 2 * (i), 2 * (i) + 1
#define LM_L16(i) LM_L2(i), LM_L2(i), LM_L2(i), LM_L2(i), LM_L2(i), LM_L2(i), LM_L2(i), LM_L2(i)
static const uint8_t lm_lane_masks[12][32] __attribute__((aligned(32))) = {
    {LM_L16(0), LM_L16(0)}, {LM_L16(1), LM_L16(1)}, {LM_L16(2), LM_L16(2)}, {LM_L16(3), LM_L16(3)},
    {LM_L16(4), LM_L16(4)}, {LM_L16(5), LM_L16(5)}, {LM_L16(6), LM_L16(6)}, {LM_L16(7), LM_L16(7)},
    {LM_L16(0), LM_L16(1)}, {LM_L16(2), LM_L16(3)}, {LM_L16(4), LM_L16(5)}, {LM_L16(6), LM_L16(7)}};
#undef LM_L16
#undef LM_L2
static inline __attribute__((always_inline)) __m256i lm_lane16(__m256i v, int m) {
  return _mm256_shuffle_epi8(v, _mm256_load_si256((const __m256i*)lm_lane_masks[m]));
}
/* Run r (values 128h + 32r ..) of a Q6_K super-block's half h: 32 quants,
   stored + 32 (0..63), with their low 4 bits in ql row r % 2 (low nibbles
   for r < 2) and their top 2 in qh bits 2r, 2r + 1, moved to bits 4, 5. */
static inline __attribute__((always_inline)) __m256i lm_q6k_run(const uint8_t* blk, int h, int r) {
  const __m256i l = _mm256_loadu_si256((const __m256i*)(blk + 64 * h + 32 * (r % 2)));
  const __m256i hb = _mm256_loadu_si256((const __m256i*)(blk + 128 + 32 * h));
  return _mm256_or_si256(lm_bits256(l, r < 2 ? 0 : 4, 4, 0), lm_bits256(hb, 2 * r, 2, 4));
}
#ifdef __AVX512BW__
/* Bits [s, s + n) of every byte of v, s = s0 in the qwords that hi's bits
   leave clear and s1 in the others, moved to bits [d, d + n), the rest 0.
   With GFNI one affine map over GF(2) per qword (its matrix: bit s + i of
   the input byte to bit d + i) replaces a shift and a mask (Q3_K's decode
   12% faster on Zen 5, whose variable 16-bit shifts cost). Without it, the
   16-bit shifts those took (bits that cross a byte fall outside the mask):
   one count, or a masked shift where only the qwords in hi move, or a
   count per qword; callers move both kinds of qword the same way. */
static inline __attribute__((always_inline)) __m512i lm_bits512_shifted(__m512i v, __mmask8 hi, int s0, int s1, int d) {
  if (s0 == s1 && s0 == d) return v;
  if (s0 == s1) return s0 > d ? _mm512_srli_epi16(v, s0 - d) : _mm512_slli_epi16(v, d - s0);
  __mmask32 words = 0; /* hi's qwords as 16-bit lanes */
  for (int i = 0; i < 8; ++i)
    if (hi >> i & 1) words |= 0xfu << 4 * i;
  if (s0 == d) return _mm512_mask_srli_epi16(v, words, v, s1 - d);
  const __m512i count = _mm512_mask_blend_epi64(hi, _mm512_set1_epi16((short)(s0 >= d ? s0 - d : d - s0)),
                                                _mm512_set1_epi16((short)(s1 >= d ? s1 - d : d - s1)));
  return s0 >= d ? _mm512_srlv_epi16(v, count) : _mm512_sllv_epi16(v, count);
}
static inline __attribute__((always_inline)) __m512i lm_bits512(__m512i v, __mmask8 hi, int s0, int s1, int n, int d) {
#ifdef __GFNI__
  return _mm512_gf2p8affine_epi64_epi8(v, _mm512_mask_blend_epi64(hi, _mm512_set1_epi64((long long)lm_gf_matrix(s0, d, n)),
                                                                  _mm512_set1_epi64((long long)lm_gf_matrix(s1, d, n))), 0);
#else
  return _mm512_and_si512(lm_bits512_shifted(v, hi, s0, s1, d), _mm512_set1_epi8((char)(((1 << n) - 1) << d)));
#endif
}
/* q | lm_bits512(v, ...): q's bits [d, d + n) are 0 */
static inline __attribute__((always_inline)) __m512i lm_or_bits512(__m512i q, __m512i v, __mmask8 hi, int s0, int s1,
                                                                  int n, int d) {
#ifdef __GFNI__
  return _mm512_or_si512(q, lm_bits512(v, hi, s0, s1, n, d));
#else
  return _mm512_ternarylogic_epi32(q, lm_bits512_shifted(v, hi, s0, s1, d),
                                   _mm512_set1_epi8((char)(((1 << n) - 1) << d)), 0xf8); /* q | (v' & mask) */
#endif
}
/* A super-block's products against one activation row x, each group's
   times its scale (sc: the int16 scales, 8 for a scale per 32 values, 16
   for one per 16), in the int32 lanes lm_k_tile_of's 256-bit loop sums
   them into (lane l: bytes 4l..4l+3 of every 32 values; exact, so both give
   the same floats). 64 values a step, x's 64 matching, one permute placing
   the step's 2 or 4 scales; where two runs of 32 take their bits from the
   same bytes at different shifts, one per-half shift serves both (16-bit
   lanes: bits that cross a byte fall outside the masks):
   - Q4_K: the 32 bytes holding sub-blocks 2t (low nibbles) and 2t + 1
     (high), the upper half shifted down 4;
   - Q5_K: the same, its fifth bits (bit j of byte l for value 32j + l)
     shifted to bit 4 and or'd in;
   - IQ4_XS: sub-block s's 16 bytes hold its values 0..15 (low nibbles) and
     16..31 (high): each 16 bytes fill two 128-bit lanes, the second shifted
     down 4, and a byte shuffle turns nibbles into signed levels (their signs
     go to x, as in the 256-bit loop);
   - Q6_K: half h's 64 bytes of low bits hold runs 0, 1 (low nibbles) and
     2, 3 (high); its 32 bytes of top bits serve all four (bits 2r, 2r + 1
     to bits 4, 5);
   - Q2_K: run r of half h is bits 2r, 2r + 1 of its 32 bytes;
   - Q3_K: the same, plus bit 4h + r of the 32 hmask bytes at bit 2.
   About half the operations of the 256-bit loop, whose decodes were bound
   by their instruction count on Zen 5 (one core from L3: Q4_K 30 GB/s, Q6_K
   36, Q2_K, Q3_K and IQ4_XS 18). The bits are picked by lm_bits512. */
static inline __attribute__((always_inline)) __m256i lm_k_runs512(const uint8_t* blk, int bb, const int8_t* x,
                                                                 __m256i sc) {
  const __m512i scales = _mm512_castsi256_si512(sc);
  const int per32 = bb == 144 || bb == 176 || bb == 136;
  __m512i sum = _mm512_setzero_si512();
  #pragma GCC unroll 4
  for (int t = 0; t < 4; ++t) {
    /* int16 lane pairs: per 32, lanes 16i.. take scale 2t + i; per 16, lanes 8i.. take 4t + i */
    const int g0 = per32 ? 2 * t : 4 * t, g1 = per32 ? 2 * t : 4 * t + 1, g2 = per32 ? 2 * t + 1 : 4 * t + 2,
              g3 = per32 ? 2 * t + 1 : 4 * t + 3;
    const __m512i pick = _mm512_set_epi32(g3 * 0x10001, g3 * 0x10001, g3 * 0x10001, g3 * 0x10001, g2 * 0x10001,
                                          g2 * 0x10001, g2 * 0x10001, g2 * 0x10001, g1 * 0x10001, g1 * 0x10001,
                                          g1 * 0x10001, g1 * 0x10001, g0 * 0x10001, g0 * 0x10001, g0 * 0x10001,
                                          g0 * 0x10001);
    const int h = t / 2; /* the 16-value formats' half */
    __m512i q, xv = _mm512_loadu_si512(x + 64 * t);
    if (bb == 144 || bb == 176) {
      const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(blk + (bb == 176 ? 48 : 16) + 32 * t)));
      q = lm_bits512(v, 0xf0, 0, 4, 4, 0);
      if (bb == 176) /* bits 2t and 2t + 1 of the fifth bits' bytes to bit 4 */
        q = lm_or_bits512(q, _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(blk + 16))), 0xf0, 2 * t,
                          2 * t + 1, 1, 4);
    } else if (bb == 136) { /* 128-bit lanes: sub-block 2t's bytes, again shifted, then 2t + 1's twice */
      const __m512i v = _mm512_permutexvar_epi64(_mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0),
                                                 _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(blk + 8 + 32 * t))));
      const __m512i levels = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)LM_IQ4_LEVELS_HI, (long long)LM_IQ4_LEVELS_LO));
      q = _mm512_shuffle_epi8(levels, lm_bits512(v, 0xcc, 0, 4, 4, 0));
      xv = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(q), _mm512_setzero_si512(), xv); /* no level is 0 */
      q = _mm512_abs_epi8(q);
    } else if (bb == 210) { /* Q6_K runs 0, 1 (t even): top bits left by 4, 2; runs 2, 3: right by 0, 2 */
      const __m512i l = _mm512_loadu_si512(blk + 64 * h);
      const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(blk + 128 + 32 * h)));
      const int s = t % 2 ? 4 : 0;
      q = lm_or_bits512(lm_bits512(l, 0, s, s, 4, 0), hb, 0xf0, s, s + 2, 2, 4);
    } else { /* Q2_K, Q3_K: runs r = 2 (t % 2) and r + 1, right by 2r, 2r + 2 */
      const int r = 2 * (t % 2);
      const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(blk + (bb == 84 ? 16 : 32) + 32 * h)));
      q = lm_bits512(v, 0xf0, 2 * r, 2 * r + 2, 2, 0);
      if (bb == 110) /* Q3_K: hmask bits 4h + r and 4h + r + 1 to bit 2 */
        q = lm_or_bits512(q, _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)blk)), 0xf0, 4 * h + r,
                          4 * h + r + 1, 1, 2);
    }
    const __m512i prod = _mm512_maddubs_epi16(q, xv);
#ifdef __AVX512VNNI__
    sum = _mm512_dpwssd_epi32(sum, prod, _mm512_permutexvar_epi16(pick, scales));
#else
    sum = _mm512_add_epi32(sum, _mm512_madd_epi16(prod, _mm512_permutexvar_epi16(pick, scales)));
#endif
  }
  return _mm256_add_epi32(_mm512_castsi512_si256(sum), _mm512_extracti64x4_epi64(sum, 1));
}
#endif
#if defined(__AVX512VBMI__) && defined(__AVX512VL__)
#define LM_SIX_BITS 1
/* 16 six-bit scales gathered by VBMI's byte-field selection (multishift:
   byte j of a result is the 8 bits of its 64-bit word from bit ctrl[j] on,
   wrapping around): byte j takes the bits set in keep[j] from word a's
   field at bit fa[j], the others from word b's at fb[j], and loses its top
   two. Four operations where shifts, masks and shuffles took 10-13: Q3_K's
   scales were a fifth of its decode on Zen 5. */
static inline __attribute__((always_inline)) __m128i lm_six_bits(const uint8_t* a, __m128i fa, const uint8_t* b,
                                                                 __m128i fb, __m128i keep) {
  long long wa; /* 8 bytes at a; 4 at b, twice (broadcast from memory) */
  int wb;
  memcpy(&wa, a, 8);
  memcpy(&wb, b, 4);
  return _mm_and_si128(_mm_ternarylogic_epi32(_mm_multishift_epi64_epi8(fa, _mm_set1_epi64x(wa)),
                                              _mm_multishift_epi64_epi8(fb, _mm_set1_epi32(wb)), keep, 0xe4),
                       _mm_set1_epi8(0x3f)); /* keep ? a's : b's */
}
#endif
/* One k-quant (or IQ4_XS) weight row against C activation rows quantized per 256
   like llama.cpp's Q8_K (row c: scale as[c * nsb + sb], int8
   aq[(c * nsb + sb) * 256 ..], the int sum of every 16
   bsum[(c * nsb + sb) * 16 ..]); out[c * ldo]. The sub-block scales are
   small integers, so a super-block's products sum in int32 (each
   sub-block's scaled by madd) and meet the float scales once; the offsets
   (Q2_K's, Q4_K's and Q5_K's mins, Q3_K's -4, Q6_K's -32) come from the
   activation sums, one madd per
   super-block. A tile unpacks each weight sub-block and its scale once for
   its C rows. Every output gets the same int32 lanes (exact in any order)
   and the same float operations in super-block order whatever C: a row
   decoded alone equals itself in a batch. Tiles of more weight rows ran
   slower here: AVX2's 16 registers cannot hold their sums, and GCC spilled
   them. */
static inline __attribute__((always_inline)) void lm_k_tile_of(const uint8_t* w, int bb, int C,
                                                               const float* as, const int16_t* bsum,
                                                               const int8_t* aq, int64_t nsb, float* out,
                                                               int64_t ldo) {
  __m256 acc[4]; /* C <= 4 */
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* blk = w + sb * bb;
    for (int l = 0; l < bb; l += 64) lm_prefetch(blk + LM_PREFETCH_BYTES + l);
    /* scale[j]: the int16 scales of run j's 16 pairs, one per sub-block of
       32 (Q4_K, Q5_K, IQ4_XS) or 16 (Q2_K, Q3_K, Q6_K); offset: a min (Q2_K,
       Q4_K, Q5_K) or scale (Q3_K, Q6_K) per 16 values, for the activation
       sums (none for IQ4_XS) */
    /* dec_scales: Q4_K/Q5_K/IQ4_XS's 8 scales, Q2_K/Q3_K/Q6_K's 16, for the AVX-512 decode only */
    __m256i isum[4], scale[8], offset, dec_scales = _mm256_setzero_si256();
    (void)dec_scales;
    for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
    if (bb == 144 || bb == 176) { /* Q4_K and Q5_K share their first 16 bytes */
      /* lm_q4k_unpack in vector registers (the scalar one went through the
         stack and back; 2% of a decode step): 32-bit lanes (u0, u2, u1, u2 >> 4) masked to their low
         6 / 4 bits, or'd with the top 2 bits of (u0, u0, u1, u1) moved to
         bits 4-5 where lm_q4k_unpack takes them. */
      const __m128i u = _mm_loadu_si128((const __m128i*)(blk + 4)); /* 12 bytes + 4 of the quants */
      const __m128i lo = _mm_srlv_epi32(_mm_shuffle_epi32(u, 0x98), _mm_set_epi32(4, 0, 0, 0));
      const __m128i p = _mm_or_si128(_mm_and_si128(lo, _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f)),
                                     _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(u, 0x50), 2),
                                                   _mm_set_epi32(0x30303030, 0, 0x30303030, 0)));
      const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(p));
      dec_scales = sc;
      for (int j = 0; j < 8; ++j) scale[j] = lm_lane16(sc, j);
      /* a min per 16: bytes 8..15 of p (the mins), each twice */
      offset = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(p, _mm_set_epi8(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8)));
    } else if (bb == 136) { /* IQ4_XS: a signed scale per sub-block, no offset: low 4 bits the
                               nibbles of bytes 4..7 in turn, top 2 bits 2s of the u16 at 2 */
#ifdef LM_SIX_BITS /* scale s: bits 32 + 4s.. of the block's first 8 bytes, 16 + 2s.. of its first 4 */
      const __m128i fa = _mm_setr_epi8(32, 36, 40, 44, 48, 52, 56, 60, 0, 0, 0, 0, 0, 0, 0, 0);
      const __m128i fb = _mm_setr_epi8(12, 14, 16, 18, 20, 22, 24, 26, 0, 0, 0, 0, 0, 0, 0, 0);
      const __m128i sc8 = _mm_sub_epi16(_mm_cvtepu8_epi16(lm_six_bits(blk, fa, blk, fb, _mm_set1_epi8(0x0f))),
                                        _mm_set1_epi16(32));
#else
      uint32_t scales_low;
      memcpy(&scales_low, blk + 4, 4);
      const __m128i v = _mm_cvtsi32_si128((int)scales_low);
      const __m128i low = _mm_unpacklo_epi8(_mm_and_si128(v, _mm_set1_epi8(0x0f)),
                                            _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0f)));
      const __m128i h = _mm_set1_epi32(blk[2] | (blk[3] << 8));
      const __m128i top = _mm_packus_epi32(_mm_and_si128(_mm_srlv_epi32(h, _mm_set_epi32(6, 4, 2, 0)), _mm_set1_epi32(3)),
                                           _mm_and_si128(_mm_srlv_epi32(h, _mm_set_epi32(14, 12, 10, 8)), _mm_set1_epi32(3)));
      const __m128i sc8 = _mm_sub_epi16(_mm_or_si128(_mm_cvtepu8_epi16(low), _mm_slli_epi16(top, 4)), _mm_set1_epi16(32));
#endif
      const __m256i sc = dec_scales = _mm256_broadcastsi128_si256(sc8);
      for (int j = 0; j < 8; ++j) scale[j] = lm_lane16(sc, j);
      offset = _mm256_setzero_si256();
    } else {
      __m256i sc16; /* 16 scales */
      if (bb == 84) { /* Q2_K: a byte per 16 values, the scale's low nibble, the min's high */
        const __m128i s = _mm_loadu_si128((const __m128i*)blk);
        sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(s, _mm_set1_epi8(0x0f)));
        offset = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0x0f)));
      } else if (bb == 110) { /* lm_q3k_unpack in vector registers (through memory, a store-forwarding
                                 stall cost more than the products): 16 bytes ending at d, shifted to
                                 start at the scales; low 4 bits: bytes 0..7's low, then high
                                 nibbles; top 2: byte 8 + g % 4 >> 2 (g / 4) */
#ifdef LM_SIX_BITS /* scale g: bits 8 (g % 8) + 4 (g / 8).. of bytes 0..7, and bits 8 (g % 4) + 2 (g / 4)
                       of bytes 8..11 moved to bits 4, 5 (a field 4 bits earlier; 60 wraps to -4) */
        const __m128i six = lm_six_bits(blk + 96, _mm_setr_epi8(0, 8, 16, 24, 32, 40, 48, 56, 4, 12, 20, 28, 36, 44, 52, 60),
                                        blk + 104, _mm_setr_epi8(60, 4, 12, 20, 62, 6, 14, 22, 0, 8, 16, 24, 2, 10, 18, 26),
                                        _mm_set1_epi8(0x0f));
#else
        const __m128i u = _mm_srli_si128(_mm_loadu_si128((const __m128i*)(blk + 94)), 2);
        const __m128i low = _mm_and_si128(_mm_unpacklo_epi64(u, _mm_srli_epi16(u, 4)), _mm_set1_epi8(0x0f));
        const __m128i top = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(u, 0xaa), _mm_set_epi32(6, 4, 2, 0)),
                                          _mm_set1_epi8(0x03));
        const __m128i six = _mm_or_si128(low, _mm_slli_epi16(top, 4));
#endif
        sc16 = offset = _mm256_sub_epi16(_mm256_cvtepu8_epi16(six), _mm256_set1_epi16(32));
      } else {
        sc16 = offset = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(blk + 192)));
      }
      dec_scales = sc16;
      const __m256i lo = _mm256_permute2x128_si256(sc16, sc16, 0x00);
      const __m256i hi = _mm256_permute2x128_si256(sc16, sc16, 0x11);
      for (int run = 0; run < 4; ++run) {
        scale[run] = lm_lane16(lo, 8 + run);
        scale[4 + run] = lm_lane16(hi, 8 + run);
      }
    }
#ifdef __AVX512BW__
    if (C == 1) /* decode: 64 values a step (lm_k_runs512) */
      isum[0] = lm_k_runs512(blk, bb, aq + sb * 256, dec_scales);
    else
#endif
    /* unrolled: constant shifts and indices (GCC kept a loop, half as fast) */
    #pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) { /* values 32j..: Q4_K/Q5_K sub-block j (chunk j / 2, nibble j % 2), the others' run j */
      __m256i q;
      if (bb == 144 || bb == 176) {
        const __m256i v = _mm256_loadu_si256((const __m256i*)(blk + (bb == 176 ? 48 : 16) + 32 * (j / 2)));
        q = lm_bits256(v, j % 2 ? 4 : 0, 4, 0);
        if (bb == 176) /* Q5_K: bit j of byte l is value 32j + l's fifth, moved to bit 4 */
          q = _mm256_or_si256(q, lm_bits256(_mm256_loadu_si256((const __m256i*)(blk + 16)), j, 1, 4));
      } else if (bb == 84 || bb == 110) { /* bits 2 (j % 4) of half j / 4's 32 bytes */
        const __m256i v = _mm256_loadu_si256((const __m256i*)(blk + (bb == 84 ? 16 : 32) + 32 * (j / 4)));
        q = lm_bits256(v, 2 * (j % 4), 2, 0);
        if (bb == 110) /* Q3_K: bit j of hmask[l] at bit 2: q + 4, 0..7 */
          q = _mm256_or_si256(q, lm_bits256(_mm256_loadu_si256((const __m256i*)blk), j, 1, 2));
      } else if (bb == 136) {
        q = lm_iq4xs_run(blk, j);
      } else {
        q = lm_q6k_run(blk, j / 4, j % 4);
      }
      /* maddubs takes unsigned weights: IQ4_XS's signed levels as |q| against x with q's sign */
      const __m256i qa = bb == 136 ? _mm256_sign_epi8(q, q) : q;
      for (int c = 0; c < C; ++c) {
        __m256i x = _mm256_loadu_si256((const __m256i*)(aq + (c * nsb + sb) * 256 + 32 * j));
        if (bb == 136) x = _mm256_sign_epi8(x, q); /* no level is 0 */
        isum[c] = lm_dpwssd(isum[c], _mm256_maddubs_epi16(qa, x), scale[j]);
        __asm__("" : "+x"(isum[c])); /* keep the running sums: GCC's tree of products spilled */
      }
    }
    for (int c = 0; c < C; ++c) {
      const float s = as[c * nsb + sb];
      if (bb == 136) {
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(lm_half(blk) * s), _mm256_cvtepi32_ps(isum[c]), acc[c]);
        continue;
      }
      const __m256i sums = _mm256_loadu_si256((const __m256i*)(bsum + (c * nsb + sb) * 16)); /* 16 x int16 */
      const __m256i o = _mm256_madd_epi16(offset, sums);
      if (bb != 110 && bb != 210) { /* minus dmin * sum_g min_g * (sum of group g) */
        uint32_t dd; /* d, then dmin: both widened and times s at once */
        memcpy(&dd, blk + (bb == 84 ? 80 : 0), 4);
        const __m256 ds = _mm256_castps128_ps256(_mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dd)), _mm_set1_ps(s)));
        acc[c] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm256_castps256_ps128(ds)), _mm256_cvtepi32_ps(isum[c]), acc[c]);
        acc[c] = _mm256_fnmadd_ps(_mm256_permutevar8x32_ps(ds, _mm256_set1_epi32(1)), _mm256_cvtepi32_ps(o), acc[c]);
      } else { /* the quants are stored + 32 (Q3_K: + 4): minus that * sum_g scale_g * (sum of group g) */
        const __m256i v = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(o, bb == 210 ? 5 : 2));
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(lm_half(blk + (bb == 210 ? 208 : 108)) * s), _mm256_cvtepi32_ps(v),
                                 acc[c]);
      }
    }
  }
  for (int c = 0; c < C; ++c) out[c * ldo] = lm_hsum8(acc[c]);
}
/* lm_k_tile's case for block bytes B: tiles of 4 activation rows or 1 */
#define LM_K_TILE(B)                                                   \
  if (bb == B) {                                                       \
    if (C == 4) lm_k_tile_of(w, B, 4, as, bsum, aq, nsb, out, ldo);    \
    else lm_k_tile_of(w, B, 1, as, bsum, aq, nsb, out, ldo);           \
    return;                                                            \
  }
#define LM_K_INT8 1
#elif defined(LM_NEON)
/* The same product on NEON: int8 dot products per 16 values (vdotq_s32 with
   the dot-product extension, widening multiplies without), each scaled by
   its integer sub-block scale in int32; Q6_K's quants offset by -32 first
   (Q3_K's by -4; so their sums need no correction), the others' mins from
   the 16-sums. */
static inline __attribute__((always_inline)) int32x4_t lm_dot16(int8x16_t w, int8x16_t x) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(vdupq_n_s32(0), w, x);
#else
  return vpadalq_s16(vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(x))), vmull_high_s8(w, x));
#endif
}
static inline __attribute__((always_inline)) float lm_dot_k_of(const uint8_t* w, int bb, const float* as,
                                                               const int16_t* bsum, const int8_t* aq,
                                                               int64_t nsb) {
  float acc = 0.0f;
  const uint8x16_t low4 = vdupq_n_u8(0x0f), low2 = vdupq_n_u8(3);
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* blk = w + sb * bb;
    const int8_t* x = aq + sb * 256;
    int32x4_t isum = vdupq_n_s32(0);
    if (bb == 136) { /* IQ4_XS: levels by table lookup, signed like the activations */
      const int8x16_t levels = vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(LM_IQ4_LEVELS_LO),
                                                                 vcreate_u64(LM_IQ4_LEVELS_HI)));
      for (int s = 0; s < 8; ++s) {
        const uint8x16_t q = vld1q_u8(blk + 8 + 16 * s);
        const int32x4_t dot = vaddq_s32(lm_dot16(vqtbl1q_s8(levels, vandq_u8(q, low4)), vld1q_s8(x + 32 * s)),
                                        lm_dot16(vqtbl1q_s8(levels, vshrq_n_u8(q, 4)), vld1q_s8(x + 32 * s + 16)));
        isum = vmlaq_n_s32(isum, dot, lm_iq4xs_scale(blk, s));
      }
      acc += lm_half(blk) * as[sb] * (float)vaddvq_s32(isum);
    } else if (bb == 84 || bb == 110) { /* 2-bit runs; Q3_K's third bit from hmask, Q2_K's mins */
      const uint8_t* qs = blk + (bb == 84 ? 16 : 32);
      int8_t sc[16];
      if (bb == 110) {
        uint32_t p[4];
        lm_q3k_unpack(blk, p);
        memcpy(sc, p, 16);
        for (int g = 0; g < 16; ++g) sc[g] = (int8_t)(sc[g] - 32);
      } else {
        for (int g = 0; g < 16; ++g) sc[g] = (int8_t)(blk[g] & 15);
      }
      int msum = 0;
      for (int h = 0; h < 2; ++h)
        for (int g = 0; g < 2; ++g) { /* 16-byte columns g of the half's 32 bytes (and of hmask) */
          const uint8x16_t q = vld1q_u8(qs + 32 * h + 16 * g);
          const uint8x16_t hm = vld1q_u8(blk + 16 * g); /* Q3_K's; unused for Q2_K */
          for (int r = 0; r < 4; ++r) { /* values 128h + 32r + 16g..: scale 8h + 2r + g */
            const int grp = 8 * h + 2 * r + g;
            const uint8x16_t v = vandq_u8(vshlq_u8(q, vdupq_n_s8((int8_t)(-2 * r))), low2);
            int8x16_t vs = vreinterpretq_s8_u8(v);
            if (bb == 110) {
              const uint8x16_t high = vandq_u8(vshlq_u8(hm, vdupq_n_s8((int8_t)(-(4 * h + r)))), vdupq_n_u8(1));
              vs = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(v, vshlq_n_u8(high, 2))), vdupq_n_s8(4));
            } else {
              msum += (blk[grp] >> 4) * bsum[sb * 16 + grp];
            }
            isum = vmlaq_n_s32(isum, lm_dot16(vs, vld1q_s8(x + 128 * h + 32 * r + 16 * g)), sc[grp]);
          }
        }
      if (bb == 84)
        acc += lm_half(blk + 80) * as[sb] * (float)vaddvq_s32(isum) - lm_half(blk + 82) * as[sb] * (float)msum;
      else
        acc += lm_half(blk + 108) * as[sb] * (float)vaddvq_s32(isum);
    } else if (bb != 210) { /* Q4_K, Q5_K */
      const uint8_t* nibbles = blk + (bb == 176 ? 48 : 16);
      uint32_t p[4];
      uint8_t sm[16]; /* 8 scales, then 8 mins */
      lm_q4k_unpack(blk, p);
      memcpy(sm, p, 16);
      int msum = 0;
      for (int c = 0; c < 4; ++c) {
        for (int half = 0; half < 2; ++half) { /* 16 bytes: values 16*half.. of sub-blocks 2c, 2c + 1 */
          const uint8x16_t q = vld1q_u8(nibbles + 32 * c + 16 * half);
          uint8x16_t lo4 = vandq_u8(q, low4), hi4 = vshrq_n_u8(q, 4);
          if (bb == 176) { /* fifth bits 2c and 2c + 1 of bytes 16 half.. */
            const uint8x16_t fifth = vld1q_u8(blk + 16 + 16 * half), one = vdupq_n_u8(1);
            lo4 = vorrq_u8(lo4, vshlq_n_u8(vandq_u8(vshlq_u8(fifth, vdupq_n_s8((int8_t)(-2 * c))), one), 4));
            hi4 = vorrq_u8(hi4, vshlq_n_u8(vandq_u8(vshlq_u8(fifth, vdupq_n_s8((int8_t)(-2 * c - 1))), one), 4));
          }
          const int8x16_t lo = vreinterpretq_s8_u8(lo4), hi = vreinterpretq_s8_u8(hi4);
          isum = vmlaq_n_s32(isum, lm_dot16(lo, vld1q_s8(x + 64 * c + 16 * half)), sm[2 * c]);
          isum = vmlaq_n_s32(isum, lm_dot16(hi, vld1q_s8(x + 64 * c + 32 + 16 * half)), sm[2 * c + 1]);
        }
        msum += sm[8 + 2 * c] * (bsum[sb * 16 + 4 * c] + bsum[sb * 16 + 4 * c + 1]) +
                sm[9 + 2 * c] * (bsum[sb * 16 + 4 * c + 2] + bsum[sb * 16 + 4 * c + 3]);
      }
      acc += lm_half(blk) * as[sb] * (float)vaddvq_s32(isum) - lm_half(blk + 2) * as[sb] * (float)msum;
    } else {
      const int8_t* sc = (const int8_t*)blk + 192;
      for (int h = 0; h < 2; ++h)
        for (int g = 0; g < 2; ++g) { /* 16-byte columns g of ql's two 32-byte rows and of qh */
          const uint8x16_t l0 = vld1q_u8(blk + 64 * h + 16 * g), l1 = vld1q_u8(blk + 64 * h + 32 + 16 * g);
          const uint8x16_t hb = vld1q_u8(blk + 128 + 32 * h + 16 * g);
          const uint8x16_t q[4] = {
              vorrq_u8(vandq_u8(l0, low4), vshlq_n_u8(vandq_u8(hb, low2), 4)),
              vorrq_u8(vandq_u8(l1, low4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), low2), 4)),
              vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), low2), 4)),
              vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4))};
          for (int r = 0; r < 4; ++r) { /* values 128h + 32r + 16g: scale 8h + 2r + g */
            const int8x16_t qs = vsubq_s8(vreinterpretq_s8_u8(q[r]), vdupq_n_s8(32));
            isum = vmlaq_n_s32(isum, lm_dot16(qs, vld1q_s8(x + 128 * h + 32 * r + 16 * g)), sc[8 * h + 2 * r + g]);
          }
        }
      acc += lm_half(blk + 208) * as[sb] * (float)vaddvq_s32(isum);
    }
  }
  return acc;
}
/* lm_k_tile's case for block bytes B, one output at a time */
#define LM_K_TILE(B)                                                                                    \
  if (bb == B) {                                                                                        \
    for (int c = 0; c < C; ++c)                                                                         \
      out[c * ldo] = lm_dot_k_of(w, B, as + c * nsb, bsum + c * nsb * 16, aq + c * nsb * 256, nsb);     \
    return;                                                                                             \
  }
#define LM_K_INT8 1
#endif
#ifdef LM_K_INT8
/* One weight row against C activation rows (see lm_k_tile_of / lm_dot_k_of),
   out of line (inlined in the caller's OpenMP body, pointers spilled): C = 4
   (prefill) or 1 (decode, and the rows after the tiles). Instantiated for the k-quants the program holds
   (LM_K_<block bytes>, defined by the printer). */
static __attribute__((noinline)) void lm_k_tile(const uint8_t* w, int bb, int C, const float* as,
                                                const int16_t* bsum, const int8_t* aq, int64_t nsb,
                                                float* out, int64_t ldo) {
#ifdef LM_K_84
  LM_K_TILE(84)
#endif
#ifdef LM_K_110
  LM_K_TILE(110)
#endif
#ifdef LM_K_136
  LM_K_TILE(136)
#endif
#ifdef LM_K_144
  LM_K_TILE(144)
#endif
#ifdef LM_K_176
  LM_K_TILE(176)
#endif
#ifdef LM_K_210
  LM_K_TILE(210)
#endif
  (void)w; (void)bb; (void)C; (void)as; (void)bsum; (void)aq; (void)nsb; (void)out; (void)ldo;
}
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
/* A super-block's scales for the bf16 tiles and the int8 GEMM (fmt: its bytes, 84 Q2_K, 110 Q3_K,
   136 IQ4_XS, 144 Q4_K, 176 Q5_K, 210 Q6_K), the floats lm_load_<format>
   forms: run s's values 32 s.. (the first 16) are t[0][s] * q - t[2][s],
   the next 16 t[1][s] * q - t[3][s] (the mins; 0 where a format has
   none). Once per super-block and row: unpacked per run, in scalars, they
   were as much work as widening the values (64 x 4096 -> 14336 products,
   the same process: Q4_K 27.1 -> 18.0 ms, Q5_K 28.8 -> 19.9, Q6_K 29.6 ->
   19.3, Q2_K 25.7 -> 18.4; at 16 rows 1.2-1.55x). */
static inline void lm_kquant_scales(const uint8_t* blk, int fmt, float t[4][8]) {
  if (fmt == 84 || fmt == 110 || fmt == 210) { /* a scale per 16 values: t[0] the even ones, t[1] the odd */
    const __m512i halves = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0);
    __m512 sc, mn = _mm512_setzero_ps();
    if (fmt == 84) { /* d * (byte & 15), dmin * (byte >> 4) */
      const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)blk));
      sc = _mm512_mul_ps(_mm512_set1_ps(lm_half(blk + 80)), _mm512_cvtepi32_ps(_mm512_and_si512(b, _mm512_set1_epi32(15))));
      mn = _mm512_mul_ps(_mm512_set1_ps(lm_half(blk + 82)), _mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4)));
    } else if (fmt == 110) { /* d * (scale - 32) */
      uint32_t u[4];
      lm_q3k_unpack(blk, u);
      const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)u));
      sc = _mm512_mul_ps(_mm512_set1_ps(lm_half(blk + 108)), _mm512_cvtepi32_ps(_mm512_sub_epi32(b, _mm512_set1_epi32(32))));
    } else { /* d * int8 scale */
      const __m512i b = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(blk + 192)));
      sc = _mm512_mul_ps(_mm512_set1_ps(lm_half(blk + 208)), _mm512_cvtepi32_ps(b));
    }
    _mm512_storeu_ps(t[0], _mm512_permutexvar_ps(halves, sc));
    _mm512_storeu_ps(t[2], _mm512_permutexvar_ps(halves, mn));
    return;
  }
  /* a scale per 32 values, then a min (Q4_K, Q5_K: d * scale, dmin * min;
     IQ4_XS: d * (scale - 32), no mins): f = 8 scales, 8 mins */
  __m512 f;
  if (fmt == 136) {
    int32_t v[16] = {0};
    for (int s = 0; s < 8; ++s) v[s] = lm_iq4xs_scale(blk, s);
    f = _mm512_mul_ps(_mm512_set1_ps(lm_half(blk)), _mm512_cvtepi32_ps(_mm512_loadu_si512(v)));
  } else {
    uint32_t u[4];
    lm_q4k_unpack(blk, u);
    const __m256 d = _mm256_set1_ps(lm_half(blk)), dmin = _mm256_set1_ps(lm_half(blk + 2));
    f = _mm512_mul_ps(_mm512_insertf32x8(_mm512_castps256_ps512(d), dmin, 1),
                      _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)u))));
  }
  _mm512_storeu_ps(t[0], _mm512_permutexvar_ps(_mm512_set_epi32(7, 6, 5, 4, 3, 2, 1, 0, 7, 6, 5, 4, 3, 2, 1, 0), f));
  _mm512_storeu_ps(t[2], _mm512_permutexvar_ps(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 15, 14, 13, 12, 11, 10, 9, 8), f));
}
/* Run s of a super-block (values 32 s..) as indices into its table (see
   lm_amx_pack_kquant; the int8 GEMM masks the + 16 off): the stored quant (Q3_K's with its high bit, 0..7;
   IQ4_XS's nibble), + 16 in the second 16 values of Q2_K and Q3_K, whose
   16s have scales of their own. Q6_K: the int8 quants (q - 32). */
static inline __attribute__((always_inline)) __m256i lm_kquant_indices(const uint8_t* blk, int s, const int fmt) {
  if (fmt == 136) { /* low nibbles of 16 bytes, then their high nibbles */
    const __m128i v = _mm_loadu_si128((const __m128i*)(blk + 8 + 16 * s));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0f));
  }
  if (fmt == 84 || fmt == 110) { /* run s % 4 (bits 2 (s % 4)) of half s / 4 */
    const __m256i v = _mm256_loadu_si256((const __m256i*)(blk + (fmt == 84 ? 16 : 32) + 32 * (s / 4)));
    __m256i q = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(2 * (s % 4))), _mm256_set1_epi8(0x03));
    if (fmt == 110) { /* Q3_K: + 4 where bit s of hmask[l] is set */
      const __m256i hm = _mm256_srl_epi16(_mm256_loadu_si256((const __m256i*)blk), _mm_cvtsi32_si128(s));
      q = _mm256_or_si256(q, _mm256_and_si256(_mm256_slli_epi16(hm, 2), _mm256_set1_epi8(0x04)));
    }
    return _mm256_or_si256(q, _mm256_set_epi64x(0x1010101010101010ll, 0x1010101010101010ll, 0, 0));
  }
  if (fmt == 210) return _mm256_sub_epi8(lm_q6k_run(blk, s / 4, s % 4), _mm256_set1_epi8(32));
  /* Q4_K, Q5_K: q in 0..15 (Q5_K: 0..31) */
  const __m256i v = _mm256_loadu_si256((const __m256i*)(blk + (fmt == 176 ? 48 : 16) + 32 * (s / 2)));
  __m256i q = _mm256_and_si256(s % 2 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0f));
  if (fmt == 176) { /* bit s of byte l: value 32 s + l's fifth bit */
    const __m256i hb = _mm256_srl_epi16(_mm256_loadu_si256((const __m256i*)(blk + 16)), _mm_cvtsi32_si128(s));
    q = _mm256_or_si256(q, _mm256_and_si256(_mm256_slli_epi16(hb, 4), _mm256_set1_epi8(0x10)));
  }
  return q;
}
#endif
)";

}  // namespace luminal
