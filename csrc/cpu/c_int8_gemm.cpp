#include "cpu/c_products.h"

namespace luminal {

// Prompts of GGML-block weights (Q8_0, Q4_0, the k-quants, IQ4_XS) on
// AVX512-VNNI without AMX (AMD Zen 4 and 5, Intel Ice Lake and later):
// activations quantized to int8 per 32 values as Q8_0/Q4_0 decode and
// llama.cpp quantize them, products in int8 with vpdpbusd, which does twice
// the multiply-adds of AVX512-BF16's vdpbf16ps per instruction at the same
// rate (both 2 a cycle on a Zen 5 core). A block's scales cost a multiply
// and an FMA per 32 values (two of each for the formats with a scale per
// 16, and an FMA per scale for the mins), on the same pipes, so a
// 16-column x 32-deep block is 10-14 operations where the bf16 tiles take
// 16: a 512 x 4096 -> 14336 Q8_0 product ran 63 -> 45 ms on a Zen 5 core
// pair. With AMX, the bf16 tiles are faster.
const char* const kInt8Gemm = R"(#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && !defined(LM_AMX)
#define LM_INT8_GEMM 1
/* The fewest rows of a product the GEMM takes: below, decode's kernels read
   the weights once without packing them (4096 -> 14336 on a Zen 5 core
   pair: Q8_0 3 rows 1.85 ms against the GEMM's 2.09, 4 rows 1.88 against
   3.44 on the bf16 tiles; Q4_0's repacked kernel 6 rows 2.07 against 2.34,
   8 rows 2.70 against 2.22; the k-quants' int8 tiles 8 rows 2.6-3.5 ms
   against 2.6-4.2, 12 rows 3.8-5.2 against 3.2-4.4). */
#define LM_INT8_GEMM_ROWS(bb) ((bb) == 34 ? 4 : (bb) == 18 ? 8 : 12)
/* A format's (block bytes bb) scales per 32 values: 2 where it has one per
   16 (Q2_K, Q3_K, Q6_K), else 1; and whether it has mins (Q2_K, Q4_K, Q5_K:
   value = scale x level - min). */
#define LM_I8_HALVES(bb) ((bb) == 84 || (bb) == 110 || (bb) == 210 ? 2 : 1)
#define LM_I8_MINS(bb) ((bb) == 84 || (bb) == 144 || (bb) == 176)
/* A packed weight block: 16 columns x 32 values of k. Line p (64 bytes)
   holds values 4p..4p+3 of each column as unsigned bytes (the value's
   signed level + 128), column q at bytes 4q.., the operand one vpdpbusd
   multiplies with 4 activations broadcast; then the 16 columns' float
   scales (per half where the format has 2), then their mins, if any. */
#define LM_I8_LINES 512
#define LM_I8_BLOCK(bb) (LM_I8_LINES + 64 * LM_I8_HALVES(bb) * (1 + LM_I8_MINS(bb)))
/* A weight row's block b (values 32 b..) as 32 signed levels, the value
   being scale x level (- min): Q8_0's quants, Q4_0's nibbles - 8, the
   k-quants' stored quants less their offset (Q3_K 4, Q6_K 32), IQ4_XS's
   table levels. */
static inline __attribute__((always_inline)) __m256i lm_i8_levels(const uint8_t* row, int64_t b, const int bb) {
  if (bb == 34 || bb == 18) return lm_unpack_block(row + b * bb, bb);
  const uint8_t* blk = row + b / 8 * bb;
  const int s = (int)(b % 8);
  if (bb == 136) return lm_iq4xs_run(blk, s);
  const __m256i q = lm_kquant_indices(blk, s, bb);
  if (bb == 84) return _mm256_and_si256(q, _mm256_set1_epi8(0x0f));
  if (bb == 110) return _mm256_sub_epi8(_mm256_and_si256(q, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(4));
  return q;
}
/* Weight rows j.. (16 of them; zero past n) of nb blocks of 32 values in
   format bb (rows ld bytes apart) packed into nb blocks at dst. */
static inline __attribute__((always_inline)) void lm_i8_pack16_of(const uint8_t* w, int64_t ld, int64_t j, int64_t n,
                                                                  int64_t nb, uint8_t* dst, const int bb) {
  const int64_t block = LM_I8_BLOCK(bb);
  const int halves = LM_I8_HALVES(bb), mins = LM_I8_MINS(bb), kquant = bb >= 84;
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  const uint8_t* w0 = w + j * ld;
  /* k-quants: a super-block's scales and mins, each a vector over the 16
     rows: sv[c] their lm_kquant_scales t[c / 8][c % 8] (run c % 8's scale
     of its first or second 16 values), mv[c] t[2 + c / 8][c % 8] (mins) */
  __m512 sv[16], mv[16];
  for (int64_t b = 0; b < nb; b += 2) {
    uint8_t* d = dst + b * block;
    const int two = b + 1 < nb; /* two blocks at once: row q's 64 levels as one register, transposed */
    __m512i r[16];
    if (kquant && b % 8 == 0) {
      float t[16][4][8] __attribute__((aligned(64)));
      for (int q = 0; q < 16; ++q) {
        if (j + q < n) lm_kquant_scales(w0 + q * ld + b / 8 * bb, bb, t[q]);
        else memset(t[q], 0, sizeof t[q]);
      }
      for (int h = 0; h < 2; ++h) {
        for (int q = 0; q < 16; ++q) r[q] = _mm512_load_si512(t[q][2 * h]);
        lm_transpose16(r);
        for (int c = 0; c < 16; ++c) (h ? mv : sv)[c] = _mm512_castsi512_ps(r[c]);
      }
    }
    for (int q = 0; q < 16; ++q) {
      r[q] = _mm512_setzero_si512();
      if (j + q >= n) continue;
      const uint8_t* row = w0 + q * ld;
      if (kquant && b % 8 == 0) { /* 16 rows stream at once, more than the prefetchers follow */
        lm_prefetch(row + (b / 8 + 1) * bb);
        lm_prefetch(row + (b / 8 + 2) * bb - 1);
      } else if (!kquant) {
        lm_prefetch(row + (b + 8) * bb);
      }
      const __m256i lo = lm_i8_levels(row, b, bb);
      r[q] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), two ? lm_i8_levels(row, b + 1, bb) : lo, 1);
    }
    lm_transpose16(r);
    for (int h = 0; h < 1 + two; ++h) {
      uint8_t* dh = d + h * block;
      for (int p = 0; p < 8; ++p) _mm512_storeu_si512(dh + 64 * p, _mm512_xor_si512(r[p + 8 * h], flip));
      float* f = (float*)(dh + LM_I8_LINES); /* scales (per half), then mins */
      const int s = (int)((b + h) % 8);
      if (!kquant) {
        for (int q = 0; q < 16; ++q) f[q] = j + q < n ? lm_half(w0 + q * ld + (b + h) * bb) : 0.0f;
        continue;
      }
      for (int i = 0; i < halves; ++i) {
        _mm512_storeu_ps(f + 16 * i, sv[8 * i + s]);
        if (mins) _mm512_storeu_ps(f + 16 * (halves + i), mv[8 * i + s]);
      }
    }
  }
}
/* R (a constant: 16, 8, 4, 2 or 1) activation rows against 16 packed
   columns: out's R x 16 sums (rows n apart). The activations x hold a block
   of 16 rows x 32 int8 values at a time (the rows' blocks b at x + 512 b);
   per row and block, as its scale, corr -128 x the sum of its values (of
   each half with 2 scales: the + 128 of the unsigned weights taken back,
   so the int32 sums are exact) and ms -as x that sum (for the mins). The R
   float sums and the block's weight lines stay in registers. */
static inline __attribute__((always_inline)) void lm_i8_rows(const uint8_t* wt, const int8_t* x, const int32_t* corr,
                                                             const float* ms, const float* as, int64_t nb, float* out,
                                                             int64_t n, const int R, const int halves, const int mins) {
  const int64_t block = LM_I8_LINES + 64 * halves * (1 + mins);
  __m512 acc[16];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = wt + b * block;
    __m512i w[8];
    #pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) w[p] = _mm512_loadu_si512(blk + 64 * p);
    const float* f = (const float*)(blk + LM_I8_LINES);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const int8_t* xr = x + b * 512 + r * 32;
      const int64_t at = b * 16 + r;
      #pragma GCC unroll 2
      for (int h = 0; h < halves; ++h) {
        __m512i s = _mm512_set1_epi32(corr[2 * at + h]);
        #pragma GCC unroll 8
        for (int p = 8 / halves * h; p < 8 / halves * (h + 1); ++p) {
          int32_t four;
          memcpy(&four, xr + 4 * p, 4);
          s = _mm512_dpbusd_epi32(s, w[p], _mm512_set1_epi32(four));
        }
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(_mm512_loadu_ps(f + 16 * h), _mm512_set1_ps(as[at])),
                                 acc[r]);
        if (mins) acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(f + 16 * (halves + h)), _mm512_set1_ps(ms[2 * at + h]), acc[r]);
      }
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(out + r * n, acc[r]);
}
/* `count` (1..16) rows of a 16-row group: lm_i8_rows with constant R, so
   its sums stay in registers. */
static inline __attribute__((always_inline)) void lm_i8_group_of(const uint8_t* wt, const int8_t* x,
                                                                 const int32_t* corr, const float* ms, const float* as,
                                                                 int64_t nb, float* out, int64_t n, int count,
                                                                 const int halves, const int mins) {
  int r = 0;
  if (count == 16) {
    lm_i8_rows(wt, x, corr, ms, as, nb, out, n, 16, halves, mins);
    return;
  }
#define LM_I8_ROWS(R) lm_i8_rows(wt, x + r * 32, corr + 2 * r, ms + 2 * r, as + r, nb, out + r * n, n, R, halves, mins)
  for (; r + 8 <= count; r += 8) LM_I8_ROWS(8);
  for (; r + 4 <= count; r += 4) LM_I8_ROWS(4);
  for (; r + 2 <= count; r += 2) LM_I8_ROWS(2);
  for (; r < count; ++r) LM_I8_ROWS(1);
#undef LM_I8_ROWS
}
/* Each format's packer and rows, specialised (the k-quants' only where the
   program holds them, LM_K_<bytes>: each costs C compile time) */
typedef void (*lm_i8_packer)(const uint8_t* w, int64_t ld, int64_t j, int64_t n, int64_t nb, uint8_t* dst);
typedef void (*lm_i8_grouper)(const uint8_t* wt, const int8_t* x, const int32_t* corr, const float* ms,
                              const float* as, int64_t nb, float* out, int64_t n, int count);
#define LM_I8_PACKER(bb)                                                                                      \
  static void lm_i8_pack16_##bb(const uint8_t* w, int64_t ld, int64_t j, int64_t n, int64_t nb, uint8_t* dst) { \
    lm_i8_pack16_of(w, ld, j, n, nb, dst, bb);                                                                \
  }
#define LM_I8_GROUP(halves, mins)                                                                            \
  static __attribute__((noinline)) void lm_i8_group_##halves##mins(                                          \
      const uint8_t* wt, const int8_t* x, const int32_t* corr, const float* ms, const float* as, int64_t nb,  \
      float* out, int64_t n, int count) {                                                                    \
    lm_i8_group_of(wt, x, corr, ms, as, nb, out, n, count, halves, mins);                                    \
  }
LM_I8_PACKER(34)
LM_I8_PACKER(18)
LM_I8_GROUP(1, 0)
#ifdef LM_K_84
LM_I8_PACKER(84)
LM_I8_GROUP(2, 1)
#endif
#ifdef LM_K_110
LM_I8_PACKER(110)
#endif
#ifdef LM_K_136
LM_I8_PACKER(136)
#endif
#ifdef LM_K_144
LM_I8_PACKER(144)
#endif
#ifdef LM_K_176
LM_I8_PACKER(176)
#endif
#ifdef LM_K_210
LM_I8_PACKER(210)
#endif
#if defined(LM_K_110) || defined(LM_K_210)
LM_I8_GROUP(2, 0)
#endif
#if defined(LM_K_144) || defined(LM_K_176)
LM_I8_GROUP(1, 1)
#endif
#undef LM_I8_PACKER
#undef LM_I8_GROUP
/* Columns a thread packs and runs together: 4 x 16 (packed, 72 KB each for
   Q8_0 and k = 4096), so each 16-row group's activations are read from L3
   once for 64 columns, then from L2 (32, 64 and 128 measured within 3%). */
#define LM_I8_COLS 64
/* out[m, n] = a[m, k] (row stride lda) @ w^T for w of n rows in a GGML
   block format (block bytes bb: 34 Q8_0, 18 Q4_0, 84..210 the k-quants and
   IQ4_XS, with k a multiple of 256), k a multiple of 32. Activations
   quantized by lm_quantize_row (decode's) block by block, straight into
   their layout: 16 rows a group, block by block. Returns 0 (nothing written) for a format the program does not
   hold, or where memory is short. */
static int lm_int8_gemm(float* out, const float* a, const float* wf, int64_t m, int64_t n, int64_t k, int64_t lda,
                        int bb) {
  /* the format's packer and rows for its LM_I8_HALVES and LM_I8_MINS (the
     k-quants' where the program holds them; every format's are tested) */
  lm_i8_packer pack = bb == 34 ? lm_i8_pack16_34 : bb == 18 ? lm_i8_pack16_18 : NULL;
  lm_i8_grouper group = bb == 34 || bb == 18 ? lm_i8_group_10 : NULL;
#define LM_I8_PICK(B, halves, mins)   \
  if (bb == B) {                      \
    pack = lm_i8_pack16_##B;          \
    group = lm_i8_group_##halves##mins; \
  }
#ifdef LM_K_84
  LM_I8_PICK(84, 2, 1)
#endif
#ifdef LM_K_110
  LM_I8_PICK(110, 2, 0)
#endif
#ifdef LM_K_136
  LM_I8_PICK(136, 1, 0)
#endif
#ifdef LM_K_144
  LM_I8_PICK(144, 1, 1)
#endif
#ifdef LM_K_176
  LM_I8_PICK(176, 1, 1)
#endif
#ifdef LM_K_210
  LM_I8_PICK(210, 2, 0)
#endif
#undef LM_I8_PICK
  const int halves = LM_I8_HALVES(bb);
  if (!pack || !group || k % (bb >= 84 ? 256 : 32)) return 0;
  const uint8_t* w = (const uint8_t*)wf;
  const int64_t nb = k / 32, groups = (m + 15) / 16, block = LM_I8_BLOCK(bb);
  const int64_t ld = bb >= 84 ? k / 256 * bb : nb * bb;
  int8_t* x = (int8_t*)malloc((size_t)(groups * 16 * k) + 64);
  int32_t* corr = (int32_t*)malloc(sizeof(int32_t) * (size_t)(groups * 16 * nb * 2));
  float* ms = (float*)malloc(sizeof(float) * (size_t)(groups * 16 * nb * 2));
  float* as = (float*)malloc(sizeof(float) * (size_t)(groups * 16 * nb));
  int failed = !x || !corr || !ms || !as;
  /* each block quantized straight into its place (rows past m: zero) */
  #pragma omp parallel for if (!failed && m * k > 65536)
  for (int64_t r = 0; r < groups * 16; ++r) {
    for (int64_t b = 0; !failed && b < nb; ++b) {
      const int64_t at = ((r / 16) * nb + b) * 16 + r % 16;
      int16_t sums[2] = {0, 0}; /* of the block's two 16s */
      as[at] = 0.0f;
      if (r < m) lm_quantize_row(a + r * lda + b * 32, 32, 32, x + at * 32, as + at, sums);
      else memset(x + at * 32, 0, 32);
      const int first = halves == 2 ? sums[0] : sums[0] + sums[1]; /* the sum the first scale covers */
      corr[2 * at] = -128 * first;
      corr[2 * at + 1] = -128 * sums[1];
      ms[2 * at] = -as[at] * (float)first;
      ms[2 * at + 1] = -as[at] * (float)sums[1];
    }
  }
  #pragma omp parallel if (!failed && m * n * k > 65536)
  {
    uint8_t* wt = failed ? NULL : (uint8_t*)malloc((size_t)(LM_I8_COLS / 16 * nb * block));
    if (!failed && !wt) {
      #pragma omp atomic write
      failed = 1;
    }
    #pragma omp barrier
    #pragma omp for schedule(dynamic, 1)
    for (int64_t j0 = 0; j0 < n; j0 += LM_I8_COLS) {
      if (failed) continue;
      const int64_t tiles = (n - j0 + 15) / 16 < LM_I8_COLS / 16 ? (n - j0 + 15) / 16 : LM_I8_COLS / 16;
      for (int64_t t = 0; t < tiles; ++t) pack(w, ld, j0 + 16 * t, n, nb, wt + t * nb * block);
      for (int64_t g = 0; g < groups; ++g) {
        const int count = m - g * 16 < 16 ? (int)(m - g * 16) : 16;
        const int8_t* xg = x + g * nb * 512;
        const int64_t at = g * nb * 16;
        for (int64_t t = 0; t < tiles; ++t) {
          float* o = out + g * 16 * n + j0 + 16 * t;
          if (j0 + 16 * t + 16 <= n) {
            group(wt + t * nb * block, xg, corr + 2 * at, ms + 2 * at, as + at, nb, o, n, count);
          } else { /* the last columns: their 16 sums through a buffer */
            float sums[16 * 16];
            group(wt + t * nb * block, xg, corr + 2 * at, ms + 2 * at, as + at, nb, sums, 16, count);
            for (int r = 0; r < count; ++r) memcpy(o + r * n, sums + r * 16, sizeof(float) * (size_t)(n - j0 - 16 * t));
          }
        }
      }
    }
    free(wt);
  }
  free(x);
  free(corr);
  free(ms);
  free(as);
  return !failed;
}
#endif
)";

}  // namespace luminal
