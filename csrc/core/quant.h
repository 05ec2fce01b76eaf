// Quantized storage formats (GGML's Q8_0, Q4_0, k-quants Q2_K..Q6_K, IQ4_XS) for weight inputs. A
// quantized input's buffer holds its blocks byte for byte (the float vector
// is only storage); readers dequantize, and backends may run quantized
// kernels on the blocks directly (cpu: lm_quant_matmul, int8 dot products).
//   Q8_0: 32 values per 34-byte block: fp16 scale d, then 32 int8 q; x = d*q.
//   Q4_0: 32 values per 18-byte block: fp16 scale d, then 16 bytes whose low
//         nibbles are values 0..15 and high nibbles 16..31; x = d*(nibble-8).
//   Q2_K: 256 values per 84-byte super-block: 16 bytes of 4-bit scales (low
//         nibble) and mins (high) for 16 sub-blocks of 16, 64 bytes of 2-bit
//         quants (value 128h + 32j + l: bits 2j of byte 32h + l), fp16 d and
//         dmin; x = d*scale*q - dmin*min.
//   Q3_K: 256 values per 110-byte super-block: 32 bytes of high bits (value
//         32k + l: bit k of byte l), Q2_K's 64 bytes of 2-bit quants, 12
//         bytes of 6-bit scales (one per 16 values, stored + 32), fp16 d;
//         x = d*(scale-32)*(q - (high bit ? 0 : 4)).
//   Q4_K: 256 values per 144-byte super-block: fp16 d and dmin, 12 bytes of
//         6-bit scales and mins for 8 sub-blocks of 32, 128 bytes of nibbles;
//         x = d*scale*q - dmin*min.
//   Q5_K: 256 values per 176-byte super-block: Q4_K's first 16 bytes, then 32
//         bytes of fifth bits (value 32s + l: bit s of byte l), then Q4_K's
//         128 bytes of nibbles; q in 0..31, x = d*scale*q - dmin*min.
//   Q6_K: 256 values per 210-byte super-block: 128 bytes of low nibbles, 64
//         of top 2 bits, 16 int8 scales (one per 16 values), fp16 d;
//         x = d*scale*(q-32).
//   IQ4_XS: 256 values per 136-byte super-block: fp16 d, 16 bits of scale
//         tops (2 per sub-block of 32), 4 bytes of scale low nibbles, 128
//         bytes of nibbles (16 per sub-block: low nibbles its first 16
//         values); x = d*(scale-32)*level[nibble], llama.cpp's 16 levels.
//   f16_packed / bf16_packed: one IEEE half / bfloat16 per 2 bytes, the
//         weights of an F16 / BF16 checkpoint at their stored size (the
//         dtypes "f16" and "bf16" instead mean float32 storage, rounded).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace luminal {

struct QuantFormat {
  const char* name;
  int64_t block_values, block_bytes;
};

// The format of a storage dtype, or nullptr for plain float storage.
const QuantFormat* quant_format(const std::string& dtype);
// Floats of storage that `numel` values take in `format` (bytes rounded up).
int64_t quant_storage_floats(const QuantFormat& format, int64_t numel);
// All `numel` values as floats; throws ExecutionError when the storage is short.
std::vector<float> dequantize(const QuantFormat& format, const std::vector<float>& storage,
                              int64_t numel);

}  // namespace luminal
