#include "cpu/c_products.h"

namespace luminal {

// The entry points the printer calls for block formats: lm_k_matmul,
// lm_quant_matmul and the exact widening fallback.
const char* const kQuantMatmul = R"(/* Element i of GGML blocks of `bb` bytes (34 Q8_0, 18 Q4_0; the
   super-blocks 84 Q2_K, 110 Q3_K, 136 IQ4_XS, 144 Q4_K, 176 Q5_K, 210 Q6_K). */
static inline float lm_load_blocks(const float* wf, int64_t i, int bb) {
  return bb == 34 ? lm_load_q8_0(wf, i) : bb == 18 ? lm_load_q4_0(wf, i) : bb == 84 ? lm_load_q2_k(wf, i)
         : bb == 110 ? lm_load_q3_k(wf, i) : bb == 136 ? lm_load_iq4_xs(wf, i) : bb == 144 ? lm_load_q4_k(wf, i)
         : bb == 176 ? lm_load_q5_k(wf, i) : lm_load_q6_k(wf, i);
}
/* out[rows, n] = a @ w^T for GGML-block w with each weight row widened once,
   exactly, then dotted with every activation row: prefill without the packed
   GEMM (no AVX2; activations unquantized, as in the GEMM, so results do not
   depend on the ISA), and the fallback when memory runs out. */
static void lm_quant_matmul_exact(float* out, const float* a, const float* wf, int64_t rows,
                                  int64_t n, int64_t k, int64_t lda, int bb) {
  #pragma omp parallel if (rows * n * k > 65536)
  {
    float* wrow = (float*)malloc(sizeof(float) * (size_t)k + 32);
    #pragma omp for schedule(static)
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t t = 0; wrow && t < k; ++t)
        wrow[t] = lm_load_blocks(wf, j * k + t, bb);
      for (int64_t r = 0; r < rows; ++r) {
        float acc = 0.0f;
        if (wrow) {
          #pragma omp simd reduction(+:acc)
          for (int64_t t = 0; t < k; ++t) acc += a[r * lda + t] * wrow[t];
        } else {  /* no memory for the row: dequantize on the fly */
          for (int64_t t = 0; t < k; ++t)
            acc += a[r * lda + t] * lm_load_blocks(wf, j * k + t, bb);
        }
        out[r * n + j] = acc;
      }
    }
    free(wrow);
  }
}
#ifdef LM_K_INT8
/* Weight row w against activation rows [r0, r1): out[r * n] for each. */
static __attribute__((noinline)) void lm_k_rows(
    const uint8_t* w, int bb, int64_t r0, int64_t r1, const float* ks, const int16_t* bsum,
    const int8_t* kq, int64_t nsb, int64_t k, float* out, int64_t n) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4)
    lm_k_tile(w, bb, 4, ks + r * nsb, bsum + r * nsb * 16, kq + r * k, nsb, out + r * n, n);
  for (; r < r1; ++r)
    lm_k_tile(w, bb, 1, ks + r * nsb, bsum + r * nsb * 16, kq + r * k, nsb, out + r * n, n);
}
#endif
/* k-quant products (bb 84 and up): activations quantized per 256
   (Q8_K, as llama.cpp does), then lm_k_tile over blocks of 64 activation
   rows (their int8 copy, 256 KB for k = 4096, stays in L2 while the weight
   rows stream), one weight row against 4 activation rows per tile; without
   an int8 kernel for the ISA, or memory, the exact widening product. */
static void lm_k_matmul(float* out, const float* a, const float* wf, int64_t rows, int64_t n,
                        int64_t k, int64_t lda, int bb) {
#ifdef LM_K_INT8
  const uint8_t* w = (const uint8_t*)wf;
  const int64_t nsb = k / 256, ldw = nsb * bb;
  int8_t* kq = (int8_t*)malloc((size_t)(rows * k) + 32);
  float* ks = (float*)malloc(sizeof(float) * (size_t)(rows * nsb) + 32);
  int16_t* bsum = (int16_t*)malloc(sizeof(int16_t) * (size_t)(rows * k / 16) + 32); /* per 16 */
  if (!kq || !ks || !bsum) {
    free(kq); free(ks); free(bsum);
    lm_quant_matmul_exact(out, a, wf, rows, n, k, lda, bb);
    return;
  }
  lm_quantize_rows(a, rows, k, lda, 256, kq, ks, bsum);
  for (int64_t r0 = 0; r0 < rows; r0 += 64) {
    const int64_t r1 = rows - r0 < 64 ? rows : r0 + 64;
    LM_FOR(n * (r1 - r0) * k > 16384, j, n,
           lm_k_rows(w + j * ldw, bb, r0, r1, ks, bsum, kq, nsb, k, out + j, n));
  }
  free(kq); free(ks); free(bsum);
#else
  lm_quant_matmul_exact(out, a, wf, rows, n, k, lda, bb);
#endif
}
/* Weight rows [4 jq, 4 jq + 4) against every activation row (int8 copies aq,
   scales as): out[r * n + j]. Counts and block sizes are constants in each
   call of lm_dot_q (see there). */
static __attribute__((noinline)) void lm_quant_rows4(
    float* out, const uint8_t* w, const float* as, const int8_t* aq, const int32_t* x8, int64_t rows,
    int64_t n, int64_t k, int bb, int64_t jq) {
  const int64_t nb = k / 32;
  for (int64_t j = 4 * jq; j < 4 * jq + 4 && j < n; ++j) {
    const uint8_t* wrow = w + j * nb * bb;
    for (int64_t r = 0; r < rows; r += LM_QROWS) {
      const int count = rows - r < LM_QROWS ? (int)(rows - r) : LM_QROWS;
      const float* s = as + r * nb;
      const int8_t* q = aq + r * k;
      const int32_t* sums = x8 ? x8 + r * nb : NULL;
      float* o = out + r * n + j;
      if (bb == 34 && count == 1) lm_dot_q(wrow, 34, s, q, sums, nb, k, 1, o, n);
      else if (bb == 34 && count == LM_QROWS) lm_dot_q(wrow, 34, s, q, sums, nb, k, LM_QROWS, o, n);
      else if (count == 1) lm_dot_q(wrow, 18, s, q, sums, nb, k, 1, o, n);
      else if (count == LM_QROWS) lm_dot_q(wrow, 18, s, q, sums, nb, k, LM_QROWS, o, n);
      else lm_dot_q(wrow, bb, s, q, sums, nb, k, count, o, n);
    }
  }
}
/* out[rows, n] = a[rows, k] (row stride lda) @ w^T for Q8_0 (bb 34), Q4_0
   (bb 18) or k-quant (bb 84 and up) w of n rows. K-quants: lm_k_matmul
   for every row count. Q8_0/Q4_0 with few rows (decode): like llama.cpp,
   activations are quantized to Q8_0 first so the dot products run in int8;
   their scales stay float32. Q4_0 decode runs on w8, w repacked by the
   runtime (lm_q4_0x8_pack), where it is not NULL. */
static void lm_quant_matmul(float* out, const float* a, const float* wf, const float* w8, int64_t rows,
                            int64_t n, int64_t k, int64_t lda, int bb) {
#ifdef LM_INT8_GEMM /* in int8 where there are VNNI and no AMX units, unless LUMINAL_AMX asks for the
                       bf16 tiles (1) or the exact product (0; the k-quants' int8 tiles) */
  if (rows >= LM_INT8_GEMM_ROWS(bb)) { /* (decode's products read no environment) */
    const char* tiles = getenv("LUMINAL_AMX");
    if (!(tiles && tiles[0]) && lm_int8_gemm(out, a, wf, rows, n, k, lda, bb)) return;
  }
#endif
#ifdef LM_BF16_TILES /* the bf16 tiles from 16 rows, Q8_0's from fewer (see LM_TILES_Q8_0_ROWS) */
  if (rows >= (bb == 34 ? LM_TILES_Q8_0_ROWS : 16) && lm_amx_gemm(out, a, wf, rows, n, k, lda, bb)) return;
#endif
  if (bb >= 84) { /* k-quants: int8 tiles for every row count the bf16 ones leave */
    lm_k_matmul(out, a, wf, rows, n, k, lda, bb);
    return;
  }
  /* 16+ rows (prefill) are compute-bound: widen weight blocks to float32 and
     run the packed GEMM (faster here than Q8_0 int8 dot products, and the
     activations stay unquantized). Decode keeps the int8 kernel. */
#ifdef LM_HALF_SIMD
  if (rows >= 16) {
    const int64_t done = lm_wide_gemm_rows(out, a, wf, rows, n, k, lda, bb);
    out += done * n; a += done * lda; rows -= done;
    if (!rows) return;
  }
#else
  if (rows >= 16) {
    lm_quant_matmul_exact(out, a, wf, rows, n, k, lda, bb);
    return;
  }
#endif
#ifdef LM_Q4_0X8
  if (w8 && bb == 18 && lm_q4_0x8_matmul(out, a, w8, rows, n, k, lda)) return;
#else
  (void)w8;
#endif
  const uint8_t* w = (const uint8_t*)wf;
  const int64_t nb = k / 32;
  int8_t* aq = (int8_t*)malloc((size_t)(rows * k) + 32);
  float* as = (float*)malloc(sizeof(float) * (size_t)(rows * nb) + 32);
  int32_t* x8 = bb == 18 ? (int32_t*)malloc(sizeof(int32_t) * (size_t)(rows * nb) + 32) : NULL;
  if (!aq || !as || (bb == 18 && !x8)) { /* no memory for the quantized copy */
    free(aq); free(as); free(x8);
    lm_quant_matmul_exact(out, a, wf, rows, n, k, lda, bb);
    return;
  }
  lm_quantize_rows(a, rows, k, lda, 32, aq, as, NULL);
  if (x8) /* Q4_0: -8 x each activation block's sum, once for every weight row */
    for (int64_t i = 0; i < rows * nb; ++i) {
      int32_t sum = 0;
      for (int j = 0; j < 32; ++j) sum += aq[i * 32 + j];
      x8[i] = -8 * sum;
    }
  LM_FOR(n * rows * k > 16384, jq, (n + 3) / 4, lm_quant_rows4(out, w, as, aq, x8, rows, n, k, bb, jq));
  free(aq);
  free(as);
  free(x8);
}
)";

}  // namespace luminal
