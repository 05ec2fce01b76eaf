#include "cpu/c_products.h"

namespace luminal {

// Prefill products on AMX tiles (Intel Sapphire Rapids and later), opt-in:
// LUMINAL_AMX=1. The weights (Q8_0, Q4_0, f16 or bf16 packed) are widened,
// rounded to bf16 and packed in the tiles' pair layout a block of 32 rows at
// a time; the activations are rounded to bf16 once; the sums stay float32.
// bf16 keeps 8 bits of each value, so results differ from the exact float32
// product by ~2^-9 relative per term, as PyTorch's bf16 GEMM does (decode's
// int8 activations round more). A tile dot product peaked at ~2,150 GFLOP/s
// a core on the development Xeon, against 67-71 for AVX-512 FMA.
const char* const kAmxProducts = R"(#ifdef LM_AMX
#include <stdlib.h>
#include <string.h>
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
/* Float32 to bf16, rounded to nearest even; count is a multiple of 16
   (lm_amx_gemm's k is one of 32). */
static inline void lm_to_bf16(uint16_t* dst, const float* src, int64_t count) {
  for (int64_t t = 0; t < count; t += 16)
    _mm256_storeu_si256((__m256i*)(dst + t), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + t)));
}
/* Transpose 16 x 16 32-bit words in place: r[j] becomes column j. */
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
/* out[m, n] = a[m, k] (row stride lda) @ w^T, w of n rows in format fmt
   (lm_widen), k a multiple of 32. Tiles: 0-3 the sums of 32 activation rows
   x 32 weight rows, 4-5 activations (16 rows x 32 k), 6-7 weights (16 pairs
   of k x 16 rows). Returns 0 (nothing written) when AMX is off or not
   allowed, or memory is short. */
static int lm_amx_gemm(float* out, const float* a, const float* w, int64_t m, int64_t n, int64_t k,
                       int64_t lda, int fmt) {
  const char* on = getenv("LUMINAL_AMX");
  if (!on || on[0] != '1' || k % 32 || k == 0 || !lm_amx_allowed()) return 0;
  const int64_t m32 = (m + 31) / 32 * 32, steps = k / 32;
  /* malloc, aligned here: the library is C99, which has no aligned_alloc */
  char* ab_mem = (char*)malloc((size_t)(m32 * k) * 2 + 64);
  if (!ab_mem) return 0;
  uint16_t* ab = (uint16_t*)(((uintptr_t)ab_mem + 63) & ~(uintptr_t)63);
  for (int64_t r = 0; r < m32; ++r) {
    if (r < m) lm_to_bf16(ab + r * k, a + r * lda, k);
    else memset(ab + r * k, 0, (size_t)k * 2);
  }
  int failed = 0;
  #pragma omp parallel
  {
    lm_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; ++t) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    float* wide = (float*)malloc(sizeof(float) * (size_t)k);
    uint16_t* row16 = (uint16_t*)malloc((size_t)(32 * k) * 2); /* the block's rows in bf16 */
    char* wb_mem = (char*)malloc((size_t)(32 * k) * 2 + 64); /* 32 weight rows, paired */
    uint16_t* wb = wb_mem ? (uint16_t*)(((uintptr_t)wb_mem + 63) & ~(uintptr_t)63) : NULL;
    float c[16 * 16];
    if (!wide || !row16 || !wb) {
      #pragma omp atomic write
      failed = 1;
    }
    #pragma omp for schedule(dynamic, 1)
    for (int64_t j0 = 0; j0 < n; j0 += 32) {
      int stop;
      #pragma omp atomic read
      stop = failed;
      if (stop) continue;
      for (int64_t col = 0; col < 32; ++col) {
        if (j0 + col < n) {
          lm_widen(wide, w, j0 + col, k, 0, k, fmt);
          lm_to_bf16(row16 + col * k, wide, k);
        } else {
          memset(row16 + col * k, 0, (size_t)k * 2);
        }
      }
      /* The weight tile of k [32 s, 32 s + 32) and rows j0 + 16 h + [0, 16):
         row p holds, for each of those rows, its pair of k (32 s + 2 p,
         32 s + 2 p + 1), one 32-bit word: 16 rows' words, transposed. */
      for (int64_t s = 0; s < steps; ++s)
        for (int h = 0; h < 2; ++h) {
          __m512i r[16];
          for (int c = 0; c < 16; ++c) r[c] = _mm512_loadu_si512(row16 + (h * 16 + c) * k + s * 32);
          lm_transpose16(r);
          uint16_t* tile = wb + (s * 2 + h) * 512;
          for (int p = 0; p < 16; ++p) _mm512_storeu_si512(tile + p * 32, r[p]);
        }
      for (int64_t r0 = 0; r0 < m32; r0 += 32) {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
        for (int64_t s = 0; s < steps; ++s) {
          _tile_loadd(4, ab + r0 * k + s * 32, k * 2);
          _tile_loadd(5, ab + (r0 + 16) * k + s * 32, k * 2);
          _tile_loadd(6, wb + (s * 2) * 16 * 32, 64);
          _tile_loadd(7, wb + (s * 2 + 1) * 16 * 32, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
        for (int t = 0; t < 4; ++t) {
          switch (t) { /* tile numbers are immediates */
            case 0: _tile_stored(0, c, 64); break;
            case 1: _tile_stored(1, c, 64); break;
            case 2: _tile_stored(2, c, 64); break;
            default: _tile_stored(3, c, 64); break;
          }
          const int64_t rb = r0 + (t / 2) * 16, jb = j0 + (t % 2) * 16;
          for (int64_t i = 0; i < 16 && rb + i < m; ++i)
            for (int64_t jj = 0; jj < 16 && jb + jj < n; ++jj) out[(rb + i) * n + jb + jj] = c[i * 16 + jj];
        }
      }
    }
    _tile_release();
    free(wide);
    free(row16);
    free(wb_mem);
  }
  free(ab_mem);
  return !failed;
}
#endif
)";

}  // namespace luminal
