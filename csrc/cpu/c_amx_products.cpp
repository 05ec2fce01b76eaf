#include "cpu/c_products.h"

namespace luminal {

// Products on bf16 tiles: AMX units (Intel Sapphire Rapids and later), or,
// on CPUs with AVX512-BF16 and no AMX (AMD Zen 4 and 5, Intel Cooper
// Lake), the same packed tiles multiplied by AVX512-BF16 dot products
// (lm_bf16_dots; LM_BF16_TILES either way, LM_AMX with the units; on a Zen 5
// core pair a 512 x 4096 -> 14336 Q8_0 product went 244 -> 63 ms off the
// float32 GEMM, PyTorch's bf16 Linear 66 ms). kAmxTiles: the
// tile loop (lm_amx_run) over weights packed by a format's own packer.
// kAmxProducts: prefill with compact weights, by default for Q8_0, Q4_0,
// k-quant (Q2_K..Q6_K) and IQ4_XS weights (on AMX; without it, where the
// CPU has AVX512-VNNI, the int8 GEMM takes those: kInt8Gemm, unless
// LUMINAL_AMX=1), and for f16 and bf16 packed
// weights where the program is compiled for float32_matmul_precision
// "medium" (LUMINAL_AMX=1: for them always; LUMINAL_AMX=0 turns it off).
// The weights are widened, rounded to bf16 and packed in the tiles' pair
// layout; the activations are rounded to bf16 once; the sums stay float32.
// bf16 keeps 8 bits of each value, so results differ from the exact float32
// product by ~2^-9 relative per term, as PyTorch's bf16 GEMM does.
// Decode's int8 activations round more (Q8_K's for the k-quants too), and
// llama.cpp's Q8_0 prefill more again: on a 4-layer Mistral-shaped Q8_0
// model the last logits moved by 1.3-1.4% of the largest, llama.cpp's by
// 2.3-2.5% (same argmax and top 5). Packed halves keep the exact path at
// "highest" (the compiler's default; the Generator asks for "medium"): f16
// weights lose 3 bits to bf16, and neither format's decode rounds its
// activations.
// kAmxFloat: float32 products of 16+ rows (CPUProgram's, in place of BLAS)
// where a graph is compiled with float32_matmul_precision "medium", as
// torch.set_float32_matmul_precision("medium") lets PyTorch do. A tile dot
// product peaked at ~2,150 GFLOP/s a core on the development Xeon, against
// 67-71 for AVX-512 FMA.
const char* const kAmxTiles = R"(#if defined(__AVX512BW__) && (defined(__AVX512BF16__) || defined(__AVX512VNNI__))
#include <immintrin.h>
/* Transpose 16 x 16 32-bit words in place: r[j] becomes column j (the
   tiles' packers, and kInt8Gemm's). */
static inline void lm_transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
  }
}
#endif
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#define LM_BF16_TILES 1
#if defined(__AMX_BF16__) && defined(__AMX_TILE__) && defined(__linux__)
#define LM_AMX 1
#endif
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef LM_AMX
#include <sys/syscall.h>
#include <unistd.h>
long syscall(long number, ...); /* glibc's; C99's unistd.h leaves it undeclared */
typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} lm_tile_config;
/* Whether this process may use AMX: Linux hands out tile state on request. */
static int lm_amx_allowed(void) {
  static int allowed = -1;
  if (allowed < 0) allowed = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
                                     18 /* XFEATURE_XTILEDATA */) == 0;
  return allowed;
}
#else
static int lm_amx_allowed(void) { return 1; } /* the tiles' products on AVX512-BF16 */
#endif
/* src[0, len) to bf16 at dst[0, padded), rounded to nearest even, zero past
   len (a float product's k need not be a multiple of 32); padded is a
   multiple of 32. */
static inline void lm_to_bf16(uint16_t* dst, const float* src, int64_t len, int64_t padded) {
  int64_t t = 0;
  for (; t + 16 <= len; t += 16)
    _mm256_storeu_si256((__m256i*)(dst + t), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + t)));
  if (t < len) {
    const __m512 tail = _mm512_maskz_loadu_ps((__mmask16)((1u << (len - t)) - 1), src + t);
    _mm256_storeu_si256((__m256i*)(dst + t), (__m256i)_mm512_cvtneps_pbh(tail));
    t += 16;
  }
  for (; t < padded; t += 16) _mm256_storeu_si256((__m256i*)(dst + t), _mm256_setzero_si256());
}
/* The columns jb + q (q < 16) inside [0, n), as a lane mask. */
static inline __mmask16 lm_tile_cols(int64_t jb, int64_t n) {
  __mmask16 cols = 0;
  for (int q = 0; q < 16; ++q) cols |= (__mmask16)((jb + q >= 0 && jb + q < n) << q);
  return cols;
}
#ifdef LM_AMX
/* out's 16 x 16 sums at rows rb.., columns jb.. to c (zero outside m x n),
   or back: for the tiles that reach past m or n. */
static void lm_amx_edge(float* c, float* out, int64_t m, int64_t n, int64_t rb, int64_t jb, int back) {
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t j = 0; j < 16; ++j) {
      const int inside = rb + i < m && jb + j >= 0 && jb + j < n;
      if (back) { if (inside) out[(rb + i) * n + jb + j] = c[i * 16 + j]; }
      else c[i * 16 + j] = inside ? out[(rb + i) * n + jb + j] : 0.0f;
    }
}
/* Tile t from or to out's sums at (rb, jb); tile numbers are immediates. */
#define LM_AMX_FULL(rb, jb) ((rb) + 16 <= m && (jb) >= 0 && (jb) + 16 <= n)
#define LM_AMX_LOAD_C(t, rb, jb)                                         \
  if (LM_AMX_FULL(rb, jb)) _tile_loadd(t, out + (rb) * n + (jb), n * 4); \
  else { lm_amx_edge(c, out, m, n, rb, jb, 0); _tile_loadd(t, c, 64); }
#define LM_AMX_STORE_C(t, rb, jb)                                         \
  if (LM_AMX_FULL(rb, jb)) _tile_stored(t, out + (rb) * n + (jb), n * 4); \
  else { _tile_stored(t, c, 64); lm_amx_edge(c, out, m, n, rb, jb, 1); }
/* LM_AMX_STORE_C past the caches (non-temporal stores; full tiles are
   line-aligned, see lm_amx_run): an output larger than the caches is
   otherwise read in line by line before it is written (32 products
   512 x 512 x 128: 6.4-8.0 -> 3.2-3.6 ms). */
#define LM_AMX_STREAM_C(t, rb, jb)                                                        \
  _tile_stored(t, c, 64);                                                                 \
  if (LM_AMX_FULL(rb, jb))                                                                \
    for (int i_ = 0; i_ < 16; ++i_)                                                       \
      _mm512_stream_ps(out + ((rb) + i_) * n + (jb), _mm512_load_ps(c + 16 * i_));        \
  else lm_amx_edge(c, out, m, n, rb, jb, 1);
#else
/* Without AMX units (AMD Zen 4 and 5, Intel Cooper Lake): the tiles'
   product by AVX512-BF16 dot products, each a pair of k for 16 weight
   rows. Activation rows [r0, r0 + 8) of a chunk (a0: the chunk's row r0,
   rows len apart; rows past m are zero) against the 32 weight rows at j0
   packed in wb: out's sums at rows below m and columns inside [0, n) set
   (first) or added to. 16 sums of 8 rows x 32 columns stay in registers;
   each weight pair is loaded once for the 8 rows, each activation pair
   broadcast once for the 32 columns. */
static void lm_bf16_dots(float* out, const uint16_t* a0, int64_t len, const uint16_t* wb, int64_t steps,
                         int64_t m, int64_t n, int64_t r0, int64_t j0, int first) {
  const __mmask16 cols[2] = {lm_tile_cols(j0, n), lm_tile_cols(j0 + 16, n)};
  __m512 acc[8][2];
  #pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)
    for (int h = 0; h < 2; ++h)
      acc[i][h] = first || r0 + i >= m ? _mm512_setzero_ps()
                                       : _mm512_maskz_loadu_ps(cols[h], out + (r0 + i) * n + j0 + 16 * h);
  for (int64_t s = 0; s < steps; ++s) {
    const uint16_t *w0 = wb + (s * 2) * 512, *as = a0 + s * 32;
    for (int p = 0; p < 16; ++p) {
      const __m512bh b0 = (__m512bh)_mm512_loadu_si512(w0 + p * 32);
      const __m512bh b1 = (__m512bh)_mm512_loadu_si512(w0 + 512 + p * 32);
      #pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) {
        int32_t pair;
        memcpy(&pair, as + i * len + 2 * p, 4);
        const __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], x, b0);
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], x, b1);
      }
    }
  }
  for (int i = 0; i < 8 && r0 + i < m; ++i)
    for (int h = 0; h < 2; ++h) _mm512_mask_storeu_ps(out + (r0 + i) * n + j0 + 16 * h, cols[h], acc[i][h]);
}
#endif
/* Float products whose outputs (all batches) reach this many floats (16 MB)
   are streamed: attention's scores, which the softmax reads once (32 heads x
   512 x 512 and x 2,048: scores, softmax and values 25.5 -> 21.3 and
   84 -> 65 ms). */
#define LM_AMX_STREAM_FLOATS ((int64_t)1 << 22)
/* malloc'd bytes, 64-byte aligned within *mem (which the caller frees): the
   library is C99, which has no aligned_alloc. NULL when memory is short. */
static uint16_t* lm_amx_alloc(size_t bytes, char** mem) {
  *mem = (char*)malloc(bytes + 64);
  return *mem ? (uint16_t*)(((uintptr_t)*mem + 63) & ~(uintptr_t)63) : NULL;
}
/* Writes the weight tiles of rows j0.. (32 of them; zero past n) for the
   steps s < steps of the k chunk at k0: tile 2 s + h holds, for rows
   j0 + 16 h + [0, 16), their pairs of k (k0 + 32 s + 2 p, + 1) in row p,
   one 32-bit word a row. src: the packer's own description of the weight. */
typedef void (*lm_amx_packer)(const void* src, uint16_t* tiles, int64_t j0, int64_t k0, int64_t steps);
/* Tuned per unit. LM_TILES_CHUNK_BYTES: a chunk of k holds at most this
   many bytes of bf16 activations (all m rows): on AMX, L2's 1 MB; with AVX512-BF16 half an L3 (the dot products
   read each activation pair once per 32 weight rows, where a tile load
   reads 16 rows of 64 bytes: L3 keeps up), since every chunk past the first
   reads and writes all the sums again (4096 -> 14336 products on a Zen 5
   core pair: 512 rows 73.7 -> 67.1 ms, 2,048 rows 468 -> 269 ms).
   LM_TILES_Q8_0_ROWS, LM_TILES_HALF_ROWS: the fewest rows of a Q8_0
   product, and (where asked) of a packed-half one, that take the tiles; the other formats take them from 16 rows. AMX,
   4096 -> 14336: Q8_0 8 and 12 rows 6.7 and 11.9 ms against its int8
   kernel's 9.2 and 17.0 (4 rows: 7.2 against 5.9); Q4_0's repacked int8
   kernel and the k-quants' int8 tiles even or ahead below 16 (8 rows:
   4.8-5.0 ms against 6.4-7.2). AVX512-BF16 (Zen 5), the same product: Q8_0
   4 and 8 rows 3.3 and 3.4 ms against 4.0 and 5.6 (2 rows: 3.4 against
   1.3); f16 4 and 8 rows 4.6 and 4.7 against 5.1 and 10.7; the k-quants'
   int8 tiles ahead below 8-16 (Q4_K 8 rows 2.5 against 2.8, Q6_K 12 rows
   5.3 against 4.5). */
#ifdef LM_AMX
#define LM_TILES_CHUNK_BYTES ((int64_t)1 << 20)
#define LM_TILES_Q8_0_ROWS 8
#define LM_TILES_HALF_ROWS 16
#else
#define LM_TILES_CHUNK_BYTES ((int64_t)16 << 20)
#define LM_TILES_Q8_0_ROWS 4
#define LM_TILES_HALF_ROWS 4
#endif
/* out[m, n] = a[m, k] (row stride lda) @ w^T, w packed by `pack`. k runs in
   chunks (LM_TILES_CHUNK_BYTES); each chunk's sums are added to out's. A
   thread takes 32 weight rows of a chunk, packs them into tiles, then runs
   every 32 activation rows over them (8 at a time without AMX, see
   lm_bf16_dots). AMX tiles: 0-3 the sums of 32 activation rows x 32 weight
   rows, 4-5 activations (16 rows x 32 k), 6-7 weights (16 pairs of k x 16
   rows). k past a multiple of 32 is zero-padded. stream: the last chunk's
   sums go out with non-temporal stores (AMX; see LM_AMX_STREAM_C; where out
   is aligned for them). Returns 0 (nothing written) when AMX is not allowed
   or memory is short. */
static int lm_amx_run(float* out, const float* a, int64_t m, int64_t n, int64_t k, int64_t lda,
                      lm_amx_packer pack, const void* src, int stream) {
  if (k <= 0 || !lm_amx_allowed()) return 0;
  const int64_t m32 = (m + 31) / 32 * 32, kp = (k + 31) / 32 * 32;
  int64_t kc = LM_TILES_CHUNK_BYTES / (m32 * 2) / 32 * 32;
  if (kc < 32) kc = 32;
  if (kc > kp) kc = kp;
  char* ab_mem;
  uint16_t* ab = lm_amx_alloc((size_t)(m32 * kp) * 2, &ab_mem);
  if (!ab) return 0;
  /* Column blocks start where out's rows reach a cache line (n a multiple
     of 16: every row alike), at -shift: full tiles are then stored a line a
     row. A graph's buffers are 16-byte aligned, and lines split by every
     tile row made 32 products 512 x 512 x 128 3-4x slower. Columns below
     0 are zero weights, not stored. */
#ifdef LM_AMX
  const int64_t shift = n % 16 == 0 ? (int64_t)((uintptr_t)out / 4 % 16) : 0;
  const int streamed = stream && (uintptr_t)out % 4 == 0 && n % 16 == 0; /* lines then align */
#else
  const int64_t shift = 0;
  (void)stream;
#endif
  int failed = 0;
  #pragma omp parallel
  {
    /* The activations in bf16, a chunk (m32 x its length, row-major) after
       another: one contiguous block each, since rows k apart would crowd
       into the same L2 sets. */
    #pragma omp for
    for (int64_t r = 0; r < m32; ++r)
      for (int64_t k0 = 0; k0 < kp; k0 += kc) {
        const int64_t len = kp - k0 < kc ? kp - k0 : kc, real = k - k0 < len ? k - k0 : len;
        uint16_t* dst = ab + k0 * m32 + r * len;
        if (r < m) lm_to_bf16(dst, a + r * lda + k0, real, len);
        else memset(dst, 0, (size_t)len * 2);
      }
#ifdef LM_AMX
    lm_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; ++t) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    /* gcc 12's _tile_loadconfig tells the compiler it reads 8 bytes, so the
       row and column stores above may be dropped as dead (then ldtilecfg
       faults on the garbage): say that all 64 are read. */
    __asm__ volatile("" : : "m"(cfg));
    _tile_loadconfig(&cfg);
    float c[16 * 16] __attribute__((aligned(64)));
#endif
    char* wb_mem;
    uint16_t* wb = lm_amx_alloc((size_t)(32 * kc) * 2, &wb_mem); /* 32 weight rows of a chunk, in tiles */
    if (!wb) {
      #pragma omp atomic write
      failed = 1;
    }
    #pragma omp barrier
    for (int64_t k0 = 0; k0 < kp && !failed; k0 += kc) {
      const int64_t len = kp - k0 < kc ? kp - k0 : kc, steps = len / 32;
      #pragma omp for schedule(dynamic, 1)
      for (int64_t j0 = -shift; j0 < n; j0 += 32) {
        pack(src, wb, j0, k0, steps);
#ifndef LM_AMX
        for (int64_t r0 = 0; r0 < m; r0 += 8)
          lm_bf16_dots(out, ab + k0 * m32 + r0 * len, len, wb, steps, m, n, r0, j0, k0 == 0);
#else
        for (int64_t r0 = 0; r0 < m32; r0 += 32) {
          if (k0 == 0) {
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
          } else {
            LM_AMX_LOAD_C(0, r0, j0) LM_AMX_LOAD_C(1, r0, j0 + 16)
            LM_AMX_LOAD_C(2, r0 + 16, j0) LM_AMX_LOAD_C(3, r0 + 16, j0 + 16)
          }
          const uint16_t* a0 = ab + k0 * m32 + r0 * len;
          for (int64_t s = 0; s < steps; ++s) {
            _tile_loadd(4, a0 + s * 32, len * 2);
            _tile_loadd(5, a0 + 16 * len + s * 32, len * 2);
            _tile_loadd(6, wb + (s * 2) * 512, 64);
            _tile_loadd(7, wb + (s * 2 + 1) * 512, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
          }
          if (streamed && k0 + len == kp) {
            LM_AMX_STREAM_C(0, r0, j0) LM_AMX_STREAM_C(1, r0, j0 + 16)
            LM_AMX_STREAM_C(2, r0 + 16, j0) LM_AMX_STREAM_C(3, r0 + 16, j0 + 16)
          } else {
            LM_AMX_STORE_C(0, r0, j0) LM_AMX_STORE_C(1, r0, j0 + 16)
            LM_AMX_STORE_C(2, r0 + 16, j0) LM_AMX_STORE_C(3, r0 + 16, j0 + 16)
          }
        }
#endif
      }
    }
#ifdef LM_AMX
    if (streamed) _mm_sfence(); /* the streamed sums visible before the barrier ends the region */
    _tile_release();
#endif
    free(wb_mem);
  }
  free(ab_mem);
  return !failed;
}
/* The 16 rows' words (r[q]: row q's 16 pairs of k) as a tile: transposed,
   so that tile row p holds pair p of every row. */
static inline void lm_amx_store_tile(uint16_t* tile, __m512i r[16]) {
  lm_transpose16(r);
  for (int p = 0; p < 16; ++p) _mm512_storeu_si512(tile + p * 32, r[p]);
}
#endif
)";

const char* const kAmxProducts = R"(#ifdef LM_BF16_TILES
/* a compact weight of n rows, k columns, for a packer */
typedef struct {
  const float* w;
  int64_t n, k;
  int fmt;
} lm_amx_compact;
/* lm_amx_packer's work for a super-block format fmt (a constant in each
   lm_amx_pack_kquant_<fmt>): each of the 32 rows' super-block scales are
   decoded where a super-block starts, its next one prefetched then (the
   packing streams 32 rows at once, more than the prefetchers follow). */
static inline __attribute__((always_inline)) void lm_amx_pack_kquant(const void* src, uint16_t* wb, int64_t j0,
                                                                     int64_t k0, int64_t steps, const int fmt) {
  const lm_amx_compact* p = (const lm_amx_compact*)src;
  const int64_t n = p->n, nsb = p->k / 256, k_end = k0 + 32 * steps;
  float t[32][4][8] __attribute__((aligned(64)));
  const uint8_t* blk[32] = {0};
  /* the levels an index stands for in each half of a table: the quant
     itself, Q3_K's minus 4, IQ4_XS's nonlinear ones; Q5_K's 32 run on */
  const __m512 iota = _mm512_set_ps(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512 level_lo =
      fmt == 110 ? _mm512_sub_ps(iota, _mm512_set1_ps(4.0f))
      : fmt == 136 ? _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_set_epi64x((long long)LM_IQ4_LEVELS_HI, (long long)LM_IQ4_LEVELS_LO)))
                   : iota;
  const __m512 level_hi = fmt == 176 ? _mm512_add_ps(iota, _mm512_set1_ps(16.0f)) : level_lo;
  const int mins = fmt == 84 || fmt == 144 || fmt == 176;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t kk = k0 + 32 * s;
    const int run = (int)(kk % 256 / 32);
    if (s == 0 || run == 0)
      for (int r = 0; r < 32; ++r) {
        if (j0 + r < 0 || j0 + r >= n) continue;
        blk[r] = (const uint8_t*)p->w + ((j0 + r) * nsb + kk / 256) * fmt;
        lm_kquant_scales(blk[r], fmt, t[r]);
        if ((kk / 256 + 1) * 256 < k_end) {
          for (int b = 0; b < fmt; b += 64) lm_prefetch(blk[r] + fmt + b);
          lm_prefetch(blk[r] + 2 * fmt - 1);
        }
      }
    for (int h = 0; h < 2; ++h) {
      __m512i v[16];
      for (int q = 0; q < 16; ++q) {
        const int r = 16 * h + q;
        if (!blk[r]) { v[q] = _mm512_setzero_si512(); continue; }
        const __m256i iq = lm_kquant_indices(blk[r], run, fmt);
        if (fmt == 210) { /* 64 levels: widened one by one */
          const __m512 lo = _mm512_mul_ps(_mm512_set1_ps(t[r][0][run]),
                                          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(iq))));
          const __m512 hi = _mm512_mul_ps(_mm512_set1_ps(t[r][1][run]),
                                          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(iq, 1))));
          v[q] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
          continue;
        }
        /* the run's values as a 32-entry bf16 table (entry i: scale * level i - min,
           the same float operations as widening each value), picked by one word
           permute: 64 x 4096 -> 14336 products 8-17% faster than widening 32
           values (Q2_K..Q5_K, IQ4_XS; Q6_K's 64 levels would take two tables) */
        __m512 lo = _mm512_mul_ps(_mm512_set1_ps(t[r][0][run]), level_lo);
        if (mins) lo = _mm512_sub_ps(lo, _mm512_set1_ps(t[r][2][run]));
        __m512 hi = lo;
        if (fmt == 84 || fmt == 110 || fmt == 176) {
          hi = _mm512_mul_ps(_mm512_set1_ps(t[r][1][run]), level_hi);
          if (mins) hi = _mm512_sub_ps(hi, _mm512_set1_ps(t[r][3][run]));
        }
        v[q] = _mm512_permutexvar_epi16(_mm512_cvtepu8_epi16(iq), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
      }
      lm_amx_store_tile(wb + (s * 2 + h) * 512, v);
    }
  }
}
/* Row j's 32 weights at k [k0, k0 + 32) in bf16, as 16 words of k pairs;
   zero past n. Widened as lm_widen does, exactly, then rounded. */
static inline __m512i lm_amx_row32(const float* w, int64_t j, int64_t n, int64_t k, int64_t k0, int fmt) {
  if (j < 0 || j >= n) return _mm512_setzero_si512();
  __m512 lo, hi;
  const uint8_t* blk = lm_weight_at(w, j, k, k0, fmt);
  if (fmt >= 18) {
    const __m512 d = _mm512_set1_ps(lm_half(blk));
    const __m256i q = fmt == 34 ? lm_unpack_block(blk, 34) : lm_unpack_block(blk, 18);
    lo = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))));
    hi = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))));
  } else if (fmt) {
    return _mm512_loadu_si512(blk); /* bf16 already */
  } else {
    lo = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)blk));
    hi = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(blk + 32)));
  }
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}
/* lm_amx_packer for a weight in a block format (see lm_amx_row32) */
static void lm_amx_pack_compact(const void* src, uint16_t* wb, int64_t j0, int64_t k0, int64_t steps) {
  const lm_amx_compact* p = (const lm_amx_compact*)src;
  const float* w = p->w;
  const int64_t n = p->n, k = p->k;
  const int fmt = p->fmt;
  for (int64_t s = 0; s < steps; ++s)
    for (int h = 0; h < 2; ++h) {
      __m512i r[16];
      /* the rows' weights 8 steps ahead: packing streams 32 rows at once, more than
         the prefetchers follow (measured 5-16% off 4096 -> 14336 products of 32-512
         rows, Q8_0, Q4_K, Q6_K) */
      if (s + 8 < steps)
        for (int q = j0 + h * 16 < 0 ? -(j0 + h * 16) : 0; q < 16 && j0 + h * 16 + q < n; ++q)
          lm_prefetch(lm_weight_at(w, j0 + h * 16 + q, k, k0 + (s + 8) * 32, fmt));
      for (int q = 0; q < 16; ++q) r[q] = lm_amx_row32(w, j0 + h * 16 + q, n, k, k0 + s * 32, fmt);
      lm_amx_store_tile(wb + (s * 2 + h) * 512, r);
    }
}
#define LM_AMX_KQUANT_PACKER(fmt)                                                                   \
  static void lm_amx_pack_kquant_##fmt(const void* src, uint16_t* wb, int64_t j0, int64_t k0, int64_t steps) { \
    lm_amx_pack_kquant(src, wb, j0, k0, steps, fmt);                                                 \
  }
LM_AMX_KQUANT_PACKER(84)
LM_AMX_KQUANT_PACKER(110)
LM_AMX_KQUANT_PACKER(136)
LM_AMX_KQUANT_PACKER(144)
LM_AMX_KQUANT_PACKER(176)
LM_AMX_KQUANT_PACKER(210)
#undef LM_AMX_KQUANT_PACKER
/* out[m, n] = a[m, k] (row stride lda) @ w^T, w of n rows in format fmt
   (lm_widen's, or a k-quant's block bytes, 84 and up, with k a multiple of
   256), k a multiple of 32 (see lm_amx_run). Returns 0 (nothing written)
   when AMX is off or not allowed, or memory is short. */
static int lm_amx_gemm(float* out, const float* a, const float* w, int64_t m, int64_t n, int64_t k,
                       int64_t lda, int fmt) {
  /* LUMINAL_AMX=1: every format; 0: none; unset: Q8_0, Q4_0 and the
     k-quants, whose decode already rounds activations to int8 (more than bf16
     does), and f16/bf16 halves in a program compiled for
     float32_matmul_precision "medium" (LM_AMX_HALVES) */
#ifdef LM_AMX_HALVES
  const int halves = 1;
#else
  const int halves = 0;
#endif
  const char* on = getenv("LUMINAL_AMX");
  const int wanted = on && on[0] ? on[0] == '1' : fmt >= 18 || halves;
  if (!wanted || k % 32) return 0;
  const lm_amx_compact src = {w, n, k, fmt};
  /* each super-block format's packer specialised for it */
  const lm_amx_packer pack = fmt == 84    ? lm_amx_pack_kquant_84
                             : fmt == 110 ? lm_amx_pack_kquant_110
                             : fmt == 136 ? lm_amx_pack_kquant_136
                             : fmt == 144 ? lm_amx_pack_kquant_144
                             : fmt == 176 ? lm_amx_pack_kquant_176
                             : fmt == 210 ? lm_amx_pack_kquant_210
                                          : lm_amx_pack_compact;
  /* not streamed: the next kernel reads a projection's output from L3 (a
     streamed 512 x 14336 Q8_0 product was no faster, 6 pairs of runs) */
  return lm_amx_run(out, a, m, n, k, lda, pack, &src, 0);
}
#endif
)";

const char* const kAmxFloat = R"(#ifdef LM_BF16_TILES
typedef struct {
  const float* b;
  int64_t ldb, n, k;
  int trans;
} lm_amx_float;
/* lm_amx_packer for float32 B(k, n): b[j * ldb + kk] when trans (a key
   matrix, or a Linear's weight read as W^T: each row j's 32 values of k,
   then transposed), else b[kk * ldb + j] (the values: rows kk and kk + 1
   interleaved column by column). Zero past k and n. */
static void lm_amx_pack_float(const void* src, uint16_t* wb, int64_t j0, int64_t k0, int64_t steps) {
  const lm_amx_float* p = (const lm_amx_float*)src;
  const int64_t n = p->n, k = p->k, ldb = p->ldb;
  const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  /* each 16-row half's rows (B's columns) inside [0, n) */
  const __mmask16 cols[2] = {lm_tile_cols(j0, n), lm_tile_cols(j0 + 16, n)};
  for (int64_t s = 0; s < steps; ++s)
    for (int h = 0; h < 2; ++h) {
      const int64_t kk = k0 + 32 * s, jb = j0 + 16 * h;
      uint16_t* tile = wb + (s * 2 + h) * 512;
      if (p->trans) {
        const int64_t live = k - kk < 32 ? (k - kk > 0 ? k - kk : 0) : 32;
        const __mmask16 lo_mask = (__mmask16)(live >= 16 ? 0xffff : (1u << live) - 1);
        const __mmask16 hi_mask = (__mmask16)(live >= 32 ? 0xffff : live > 16 ? (1u << (live - 16)) - 1 : 0);
        __m512i r[16];
        for (int q = 0; q < 16; ++q) {
          r[q] = _mm512_setzero_si512();
          if (cols[h] >> q & 1) {
            const float* row = p->b + (jb + q) * ldb + kk;
            r[q] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi_mask, row + 16),
                                                _mm512_maskz_loadu_ps(lo_mask, row));
          }
        }
        lm_amx_store_tile(tile, r);
      } else {
        for (int q = 0; q < 16; ++q) {
          const int64_t k_even = kk + 2 * q;
          const __m512 even = k_even < k ? _mm512_maskz_loadu_ps(cols[h], p->b + k_even * ldb + jb)
                                         : _mm512_setzero_ps();
          const __m512 odd = k_even + 1 < k ? _mm512_maskz_loadu_ps(cols[h], p->b + (k_even + 1) * ldb + jb)
                                            : _mm512_setzero_ps();
          _mm512_storeu_si512(tile + q * 32,
                              _mm512_permutexvar_epi16(pairs, (__m512i)_mm512_cvtne2ps_pbh(odd, even)));
        }
      }
    }
}
/* C_t[m, n] = A_t[m, k] @ B_t(k, n) for t < batches, on bf16 tiles with
   float32 sums: CPUProgram's float products when compiled for
   float32_matmul_precision "medium". A_t's row r starts at a + a_off[t] +
   r * lda; B_t is b + b_off[t] (see lm_amx_pack_float); C_t is m x n
   row-major, the batches one after another. Several batches (attention's
   heads) go one to a thread, each product on that thread alone (nested
   OpenMP regions are serial); one is split over the cores. 0: not done (AMX
   unusable or off, LUMINAL_AMX=0, or memory short). */
int lm_amx_sgemm(float* c, const float* a, int64_t lda, const int64_t* a_off, const float* b, int64_t ldb,
                 const int64_t* b_off, int b_trans, int64_t batches, int64_t m, int64_t n, int64_t k) {
  const char* on = getenv("LUMINAL_AMX");
  if ((on && on[0] == '0') || !lm_amx_allowed()) return 0;
  int done = 1;
  #pragma omp parallel for schedule(dynamic, 1) if (batches > 1)
  for (int64_t t = 0; t < batches; ++t) {
    const lm_amx_float src = {b + b_off[t], ldb, n, k, b_trans};
    if (!lm_amx_run(c + t * m * n, a + a_off[t], m, n, k, lda, lm_amx_pack_float, &src,
                    batches * m * n >= LM_AMX_STREAM_FLOATS)) {
      #pragma omp atomic write
      done = 0;
    }
  }
  return done;
}
#endif
)";

}  // namespace luminal
