// Decode (one activation row) product kernels for compact weights on a GPU,
// hand-written variants side by side: which design should the CUDA printer's
// compact product (csrc/cuda/cuda_printer.cpp, print_compact_product) take?
// NOT YET RUN ON A GPU: written in a session whose device loan was paused.
// The printer's kernel reads 29% of an H200's copy bandwidth for Q8_0 and
// 6-10% for the k-quants (README, "Speed on a GPU").
//
//   nvcc -O3 -arch=sm_90 -o cuda_decode_variants benchmarks/cuda_decode_variants.cu
//   ./cuda_decode_variants     # ~10 s on an H100/H200
//
// Each variant runs 8 chained products over distinct weights (so L2 holds
// none), best of 10; it prints us a product, weight GB/s and the largest
// relative error against a double-precision host sum, next to a plain
// 16-byte streaming read of the same bytes (the bound) and G0/K0, the
// printer's current design (a block per weight row, 4 values a thread).
//   Q8_0: G0 (+ exact byte-to-float by byte_perm, scale factored out),
//   G2 (a warp per row), G3 (dp4a against activations quantized per 32,
//   as the CPU decode does), S1/S2 (quants and scales split into two
//   arrays at upload: 16-byte loads; float or dp4a);
//   Q4_K: K0 (current), K1 (a warp per row, a super-block a warp step).
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <vector>
#include <random>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e = (x); if (e) { printf("err %s line %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)

__device__ __forceinline__ float h2f(const uint8_t* p) { return __half2float(*(const __half*)p); }
__device__ __forceinline__ uint32_t u16x2(const uint8_t* p) {
  const unsigned short* h = (const unsigned short*)p; return h[0] | ((uint32_t)h[1] << 16);
}
// signed byte i of q (already xor 0x80) as an exact float
__device__ __forceinline__ float sb(uint32_t qx, int i) {
  return __uint_as_float(__byte_perm(qx, 0x4B000000u, 0x7540 + i)) - 8388736.0f;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The printer's current design: a block per weight row, thread t taking
// values 4t..4t+3 of every 4T (Dot4: their products with x, summed), the
// warps' sums added through shared memory.
template <int T, class Dot4>
__global__ void __launch_bounds__(T) block_per_row(const uint8_t* __restrict__ W, const float* __restrict__ x,
                                                  float* __restrict__ y, int n, int k, int64_t row_bytes) {
  __shared__ float part[T / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int j = blockIdx.x; j < n; j += gridDim.x) {
    const uint8_t* w = W + j * row_bytes;
    float acc = 0.0f;
#pragma unroll 4
    for (int c = threadIdx.x * 4; c < k; c += 4 * T) acc += Dot4::run(w, c, x + c);
    float v = warp_sum(acc);
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (threadIdx.x == 0) { float s = 0; for (int q = 0; q < T / 32; ++q) s += part[q]; y[j] = s; }
    __syncthreads();
  }
}
// G0: Q8_0 as the printer widens it (I2F); TRICK: exact byte-to-float by byte_perm, the scale factored out
template <bool TRICK>
struct Q8Dot4 {
  __device__ __forceinline__ static float run(const uint8_t* w, int c, const float* x) {
    const uint8_t* b = w + (c >> 5) * 34;
    const float d = h2f(b);
    const uint32_t q = u16x2(b + 2 + (c & 31));
    float s = 0.0f;
    if (TRICK) {
      const uint32_t qx = q ^ 0x80808080u;
#pragma unroll
      for (int i = 0; i < 4; ++i) s = fmaf(sb(qx, i), x[i], s);
      return d * s;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) s = fmaf(d * (float)(int8_t)(q >> (8 * i)), x[i], s);
    return s;
  }
};

// G2 / G3: a warp per row (8 rows a block), V values a lane, U-unrolled.
// MODE 0: widened as the printer does (I2F); 1: exact byte-to-float by
// byte_perm, the scale factored out; 2 (G3): dp4a against x quantized per 32
// (xq int8, xd float scales), V 4 or 8.
template <int V, int U, int MODE>
__global__ void __launch_bounds__(256) warp_rows(const uint8_t* __restrict__ W, const float* __restrict__ x,
                                                 const int8_t* __restrict__ xq, const float* __restrict__ xd,
                                                 float* __restrict__ y, int n, int k) {
  const int lane = threadIdx.x & 31;
  const int j = blockIdx.x * 8 + (threadIdx.x >> 5);
  if (j >= n) return;
  const uint8_t* w = W + (int64_t)j * (k / 32 * 34);
  float acc = 0.0f;
#pragma unroll U
  for (int c = lane * V; c < k; c += 32 * V) {
    const uint8_t* b = w + (c >> 5) * 34;
    if (MODE == 2) {
      int s = 0;
#pragma unroll
      for (int v = 0; v < V; v += 4) s = __dp4a((int)u16x2(b + 2 + (c & 31) + v), *(const int*)(xq + c + v), s);
      acc = fmaf(h2f(b) * xd[c >> 5], (float)s, acc);
      continue;
    }
    const float d = h2f(b);
    const uint32_t q = u16x2(b + 2 + (c & 31));
    const float4 xv = *(const float4*)(x + c);
    if (MODE == 1) {
      const uint32_t qx = q ^ 0x80808080u;
      float s = sb(qx, 0) * xv.x;
      s = fmaf(sb(qx, 1), xv.y, s); s = fmaf(sb(qx, 2), xv.z, s); s = fmaf(sb(qx, 3), xv.w, s);
      acc = fmaf(d, s, acc);
    } else {
      acc = fmaf(d * (float)(int8_t)q, xv.x, acc);
      acc = fmaf(d * (float)(int8_t)(q >> 8), xv.y, acc);
      acc = fmaf(d * (float)(int8_t)(q >> 16), xv.z, acc);
      acc = fmaf(d * (float)(int8_t)(q >> 24), xv.w, acc);
    }
  }
  acc = warp_sum(acc);
  if (lane == 0) y[j] = acc;
}

// S1 / S2 (DP4A): split layout (Q [n][k] int8, D [n][k/32] half), a warp per
// row, 16 values a lane (one int4); S1 in float (x as floats), S2 by dp4a
// against x quantized per 32 (xq int8, xd float scales)
template <int U, bool DP4A>
__global__ void __launch_bounds__(256) split_rows(const int8_t* __restrict__ Q, const __half* __restrict__ D,
                                                  const float* __restrict__ x, const int8_t* __restrict__ xq,
                                                  const float* __restrict__ xd, float* __restrict__ y, int n, int k) {
  const int lane = threadIdx.x & 31;
  const int j = blockIdx.x * 8 + (threadIdx.x >> 5);
  if (j >= n) return;
  const int8_t* q = Q + (int64_t)j * k;
  const __half* dd = D + (int64_t)j * (k / 32);
  float acc = 0.0f;
#pragma unroll U
  for (int c = lane * 16; c < k; c += 512) {
    const int4 qv = *(const int4*)(q + c);
    const float d = __half2float(dd[c >> 5]);
    if (DP4A) {
      const int4 xv = *(const int4*)(xq + c);
      int s = __dp4a(qv.x, xv.x, 0); s = __dp4a(qv.y, xv.y, s); s = __dp4a(qv.z, xv.z, s); s = __dp4a(qv.w, xv.w, s);
      acc = fmaf(d * xd[c >> 5], (float)s, acc);
      continue;
    }
    const float4* xp = (const float4*)(x + c);
    float s = 0.0f;
    const uint32_t words[4] = {(uint32_t)qv.x, (uint32_t)qv.y, (uint32_t)qv.z, (uint32_t)qv.w};
#pragma unroll
    for (int wi = 0; wi < 4; ++wi) {
      const float4 xv = xp[wi];
      const uint32_t qx = words[wi] ^ 0x80808080u;
      s = fmaf(sb(qx, 0), xv.x, s); s = fmaf(sb(qx, 1), xv.y, s); s = fmaf(sb(qx, 2), xv.z, s); s = fmaf(sb(qx, 3), xv.w, s);
    }
    acc = fmaf(d, s, acc);
  }
  acc = warp_sum(acc);
  if (lane == 0) y[j] = acc;
}

__device__ __forceinline__ int q4k_scale(const uint8_t* s, int j, int m) {
  return j < 4 ? s[j + m] & 63 : (m ? s[j + 4] >> 4 : s[j + 4] & 0x0f) | ((s[j - 4 + m] >> 6) << 4);
}
__device__ __forceinline__ float nib(uint32_t v, int i) {
  return __uint_as_float(__byte_perm(v, 0x4B000000u, 0x7540 + i)) - 8388608.0f;
}
// K0: Q4_K as the printer widens it
struct Q4KDot4 {
  __device__ __forceinline__ static float run(const uint8_t* w, int c, const float* x) {
    const uint8_t* b = w + (c >> 8) * 144;
    const int j = c & 255, sub = j >> 5, shift = sub & 1 ? 4 : 0;
    const float d = h2f(b) * (float)q4k_scale(b + 4, sub, 0);
    const float m = h2f(b + 2) * (float)q4k_scale(b + 4, sub, 4);
    const uint32_t q = *(const uint32_t*)(b + 16 + 32 * (sub >> 1) + (j & 31));
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) s = fmaf(d * (float)((q >> (8 * i + shift)) & 15) - m, x[i], s);
    return s;
  }
};
// K1: a warp per row, a super-block a warp step: lane l takes qs word l (8 values: sub 2p low, 2p+1 high nibbles)
template <int U>
__global__ void __launch_bounds__(256) k1(const uint8_t* __restrict__ W, const float* __restrict__ x, float* __restrict__ y, int n, int k) {
  const int lane = threadIdx.x & 31;
  const int jr = blockIdx.x * 8 + (threadIdx.x >> 5);
  if (jr >= n) return;
  const uint8_t* w = W + (int64_t)jr * (k / 256 * 144);
  const int p = lane >> 3, o = (lane & 7) * 4;
  float acc = 0.0f;
#pragma unroll U
  for (int sb = 0; sb < k / 256; ++sb) {
    const uint8_t* b = w + sb * 144;
    const uint32_t q = *(const uint32_t*)(b + 16 + 4 * lane);
    const float d = h2f(b), dm = h2f(b + 2);
    const float s0 = (float)q4k_scale(b + 4, 2 * p, 0), m0 = (float)q4k_scale(b + 4, 2 * p, 4);
    const float s1 = (float)q4k_scale(b + 4, 2 * p + 1, 0), m1 = (float)q4k_scale(b + 4, 2 * p + 1, 4);
    const float4 xa = *(const float4*)(x + sb * 256 + 64 * p + o), xb = *(const float4*)(x + sb * 256 + 64 * p + 32 + o);
    const uint32_t lo = q & 0x0f0f0f0fu, hi = (q >> 4) & 0x0f0f0f0fu;
    float sl = nib(lo, 0) * xa.x; sl = fmaf(nib(lo, 1), xa.y, sl); sl = fmaf(nib(lo, 2), xa.z, sl); sl = fmaf(nib(lo, 3), xa.w, sl);
    float sh = nib(hi, 0) * xb.x; sh = fmaf(nib(hi, 1), xb.y, sh); sh = fmaf(nib(hi, 2), xb.z, sh); sh = fmaf(nib(hi, 3), xb.w, sh);
    const float xl = (xa.x + xa.y) + (xa.z + xa.w), xh = (xb.x + xb.y) + (xb.z + xb.w);
    acc = fmaf(d, fmaf(s0, sl, s1 * sh), acc);
    acc = fmaf(-dm, fmaf(m0, xl, m1 * xh), acc);
  }
  acc = warp_sum(acc);
  if (lane == 0) y[jr] = acc;
}
// read bandwidth reference: sum of int4 loads
__global__ void readsum(const int4* __restrict__ p, int64_t n16, int* out) {
  int s = 0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n16; i += (int64_t)gridDim.x * blockDim.x) {
    int4 v = p[i]; s ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (s == 0x12345678) *out = s;
}

const int NB = 8;  // chained products over distinct weights, so L2 holds none

// Best of 10 runs of NB launches: us a product, weight GB/s, and the largest
// relative error of the first 64 outputs (in y) against the host's sums.
template <class Launch>
void time_variant(const char* name, Launch launch, int64_t wbytes, const float* y, const std::vector<double>& ref) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0); cudaEventCreate(&e1);
  for (int w = 0; w < 3; ++w) for (int i = 0; i < NB; ++i) launch(i);
  CK(cudaDeviceSynchronize());
  float best = 1e9;
  for (int rep = 0; rep < 10; ++rep) {
    cudaEventRecord(e0);
    for (int i = 0; i < NB; ++i) launch(i);
    cudaEventRecord(e1); CK(cudaEventSynchronize(e1));
    float ms; cudaEventElapsedTime(&ms, e0, e1); best = fminf(best, ms);
  }
  cudaEventDestroy(e0); cudaEventDestroy(e1);
  std::vector<float> hy(64); CK(cudaMemcpy(hy.data(), y, 64 * 4, cudaMemcpyDeviceToHost));
  double err = 0; for (int j = 0; j < 64; ++j) err = fmax(err, fabs(hy[j] - ref[j]) / (fabs(ref[j]) + 1));
  printf("  %-28s %8.1f us/product  %7.0f GB/s  maxrelerr %.1e\n", name, best * 1000 / NB, wbytes * NB / (best * 1e-3) / 1e9, err);
}

int main() {
  int sms; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  printf("device %s, %d SMs\n", prop.name, sms);
  for (int shape = 0; shape < 2; ++shape) {
    const int n = shape ? 4096 : 14336, k = shape ? 14336 : 4096;
    const int64_t rb = k / 32 * 34, wbytes = n * rb;
    std::mt19937 rng(1);
    std::vector<uint8_t> hw(wbytes);
    for (int64_t b = 0; b < (int64_t)n * k / 32; ++b) {
      __half d = __float2half(0.001f * (1 + (rng() % 100)));
      memcpy(&hw[b * 34], &d, 2);
      for (int i = 0; i < 32; ++i) hw[b * 34 + 2 + i] = (uint8_t)(rng() & 255);
    }
    std::vector<int8_t> hq((int64_t)n * k); std::vector<__half> hd((int64_t)n * k / 32);
    for (int64_t b = 0; b < (int64_t)n * k / 32; ++b) { memcpy(&hd[b], &hw[b * 34], 2); memcpy(&hq[b * 32], &hw[b * 34 + 2], 32); }
    std::vector<float> hx(k); for (auto& v : hx) v = (float)((int)(rng() % 2001) - 1000) / 1000.0f;
    std::vector<int8_t> hxq(k); std::vector<float> hxd(k / 32);
    for (int b = 0; b < k / 32; ++b) { float m = 0; for (int i = 0; i < 32; ++i) m = fmaxf(m, fabsf(hx[b*32+i])); float d = m / 127; hxd[b] = d; for (int i = 0; i < 32; ++i) hxq[b*32+i] = (int8_t)lrintf(d ? hx[b*32+i] / d : 0); }
    uint8_t* dW[NB]; int8_t* dQ[NB]; __half* dD[NB];
    for (int i = 0; i < NB; ++i) {
      CK(cudaMalloc(&dW[i], wbytes)); CK(cudaMemcpy(dW[i], hw.data(), wbytes, cudaMemcpyHostToDevice));
      CK(cudaMalloc(&dQ[i], (int64_t)n * k)); CK(cudaMemcpy(dQ[i], hq.data(), (int64_t)n * k, cudaMemcpyHostToDevice));
      CK(cudaMalloc(&dD[i], (int64_t)n * k / 16)); CK(cudaMemcpy(dD[i], hd.data(), (int64_t)n * k / 16, cudaMemcpyHostToDevice));
    }
    float *dx, *dy, *dxd; int8_t* dxq; int* dout;
    CK(cudaMalloc(&dx, k * 4)); CK(cudaMemcpy(dx, hx.data(), k * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dxq, k)); CK(cudaMemcpy(dxq, hxq.data(), k, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dxd, k / 8)); CK(cudaMemcpy(dxd, hxd.data(), k / 8, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dy, n * 4)); CK(cudaMalloc(&dout, 4));
    // reference row sums on host (double) for first 64 rows
    std::vector<double> ref(64);
    for (int j = 0; j < 64; ++j) { double s = 0; for (int b = 0; b < k / 32; ++b) { float d = __half2float(hd[(int64_t)j * (k/32) + b]); for (int i = 0; i < 32; ++i) s += (double)d * hq[(int64_t)j * k + b * 32 + i] * hx[b * 32 + i]; } ref[j] = s; }
    auto bench = [&](const char* name, auto launch) { time_variant(name, launch, wbytes, dy, ref); };
    printf("shape n=%d k=%d, %.1f MB a product\n", n, k, wbytes / 1e6);
    const int cap = sms * 32;
    bench("readsum (copy-free read)", [&](int i) { readsum<<<sms * 8, 256>>>((const int4*)dW[i], wbytes / 16, dout); });
    bench("G0 current (T=256)", [&](int i) { block_per_row<256, Q8Dot4<false>><<<std::min(n, cap), 256>>>(dW[i], dx, dy, n, k, rb); });
    bench("G0 trick", [&](int i) { block_per_row<256, Q8Dot4<true>><<<std::min(n, cap), 256>>>(dW[i], dx, dy, n, k, rb); });
    bench("G0 T=128", [&](int i) { block_per_row<128, Q8Dot4<false>><<<std::min(n, cap), 128>>>(dW[i], dx, dy, n, k, rb); });
    bench("G2 warp/row u4 i2f", [&](int i) { warp_rows<4, 4, 0><<<(n + 7) / 8, 256>>>(dW[i], dx, dxq, dxd, dy, n, k); });
    bench("G2 warp/row u4 trick", [&](int i) { warp_rows<4, 4, 1><<<(n + 7) / 8, 256>>>(dW[i], dx, dxq, dxd, dy, n, k); });
    bench("G2 warp/row u8 trick", [&](int i) { warp_rows<4, 8, 1><<<(n + 7) / 8, 256>>>(dW[i], dx, dxq, dxd, dy, n, k); });
    bench("G3 dp4a V4 u4", [&](int i) { warp_rows<4, 4, 2><<<(n + 7) / 8, 256>>>(dW[i], dx, dxq, dxd, dy, n, k); });
    bench("G3 dp4a V4 u8", [&](int i) { warp_rows<4, 8, 2><<<(n + 7) / 8, 256>>>(dW[i], dx, dxq, dxd, dy, n, k); });
    bench("G3 dp4a V8 u4", [&](int i) { warp_rows<8, 4, 2><<<(n + 7) / 8, 256>>>(dW[i], dx, dxq, dxd, dy, n, k); });
    bench("S1 split int4 trick u2", [&](int i) { split_rows<2, false><<<(n + 7) / 8, 256>>>(dQ[i], dD[i], dx, dxq, dxd, dy, n, k); });
    bench("S1 split int4 trick u4", [&](int i) { split_rows<4, false><<<(n + 7) / 8, 256>>>(dQ[i], dD[i], dx, dxq, dxd, dy, n, k); });
    bench("S2 split int4 dp4a u4", [&](int i) { split_rows<4, true><<<(n + 7) / 8, 256>>>(dQ[i], dD[i], dx, dxq, dxd, dy, n, k); });
    bench("S2 split int4 dp4a u8", [&](int i) { split_rows<8, true><<<(n + 7) / 8, 256>>>(dQ[i], dD[i], dx, dxq, dxd, dy, n, k); });
    for (int i = 0; i < NB; ++i) { cudaFree(dW[i]); cudaFree(dQ[i]); cudaFree(dD[i]); }
    cudaFree(dx); cudaFree(dy); cudaFree(dxq); cudaFree(dxd); cudaFree(dout);
  }
  for (int shape = 0; shape < 2; ++shape) {
    const int n = shape ? 4096 : 14336, k = shape ? 14336 : 4096;
    const int64_t rb = k / 256 * 144, wbytes = n * rb;
    std::mt19937 rng(2);
    std::vector<uint8_t> hw(wbytes);
    for (int64_t b = 0; b < (int64_t)n * k / 256; ++b) {
      uint8_t* B = &hw[b * 144];
      for (int i = 0; i < 144; ++i) B[i] = (uint8_t)(rng() & 255);
      __half d = __float2half(0.001f * (1 + (rng() % 100))), dm = __float2half(0.0005f * (1 + (rng() % 100)));
      memcpy(B, &d, 2); memcpy(B + 2, &dm, 2);
    }
    std::vector<float> hx(k); for (auto& v : hx) v = (float)((int)(rng() % 2001) - 1000) / 1000.0f;
    auto hscale = [](const uint8_t* s, int j, int m) { return j < 4 ? s[j + m] & 63 : (m ? s[j + 4] >> 4 : s[j + 4] & 0x0f) | ((s[j - 4 + m] >> 6) << 4); };
    auto hh = [](const uint8_t* p) { __half h; memcpy(&h, p, 2); return __half2float(h); };
    std::vector<double> ref(64);
    for (int jr = 0; jr < 64; ++jr) { double s = 0; for (int i = 0; i < k; ++i) { const uint8_t* b = &hw[jr * rb + (i / 256) * 144]; int j = i % 256, sub = j / 32; uint8_t q = b[16 + 32 * (sub / 2) + j % 32]; double v = (double)hh(b) * hscale(b + 4, sub, 0) * (sub % 2 ? q >> 4 : q & 15) - (double)hh(b + 2) * hscale(b + 4, sub, 4); s += v * hx[i]; } ref[jr] = s; }
    uint8_t* dW[NB];
    for (int i = 0; i < NB; ++i) { CK(cudaMalloc(&dW[i], wbytes)); CK(cudaMemcpy(dW[i], hw.data(), wbytes, cudaMemcpyHostToDevice)); }
    float *dx, *dy; int* dout;
    CK(cudaMalloc(&dx, k * 4)); CK(cudaMemcpy(dx, hx.data(), k * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dy, n * 4)); CK(cudaMalloc(&dout, 4));
    auto bench = [&](const char* name, auto launch) { time_variant(name, launch, wbytes, dy, ref); };
    printf("Q4_K shape n=%d k=%d, %.1f MB a product\n", n, k, wbytes / 1e6);
    const int cap = sms * 32;
    bench("readsum", [&](int i) { readsum<<<sms * 8, 256>>>((const int4*)dW[i], wbytes / 16, dout); });
    bench("K0 current (T=256)", [&](int i) { block_per_row<256, Q4KDot4><<<std::min(n, cap), 256>>>(dW[i], dx, dy, n, k, rb); });
    bench("K1 warp/row u1", [&](int i) { k1<1><<<(n + 7) / 8, 256>>>(dW[i], dx, dy, n, k); });
    bench("K1 warp/row u2", [&](int i) { k1<2><<<(n + 7) / 8, 256>>>(dW[i], dx, dy, n, k); });
    bench("K1 warp/row u4", [&](int i) { k1<4><<<(n + 7) / 8, 256>>>(dW[i], dx, dy, n, k); });
    for (int i = 0; i < NB; ++i) cudaFree(dW[i]);
    cudaFree(dx); cudaFree(dy); cudaFree(dout);
  }
  return 0;
}
