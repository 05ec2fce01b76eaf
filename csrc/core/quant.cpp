#include "core/quant.h"

#include <cstring>

#include "core/errors.h"

namespace luminal {

namespace {

constexpr QuantFormat kQ8_0{"q8_0", 32, 34};
constexpr QuantFormat kQ4_0{"q4_0", 32, 18};
constexpr QuantFormat kQ2_K{"q2_k", 256, 84};
constexpr QuantFormat kQ3_K{"q3_k", 256, 110};
constexpr QuantFormat kQ4_K{"q4_k", 256, 144};
constexpr QuantFormat kQ5_K{"q5_k", 256, 176};
constexpr QuantFormat kQ6_K{"q6_k", 256, 210};
constexpr QuantFormat kIQ4_XS{"iq4_xs", 256, 136};
constexpr QuantFormat kF16Packed{"f16_packed", 1, 2};
constexpr QuantFormat kBF16Packed{"bf16_packed", 1, 2};

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000 | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalize
    int shift = 0;
    while (!(mant & 0x400)) mant <<= 1, ++shift;
    bits = sign | (uint32_t(113 - shift) << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// IQ4_NL's (and IQ4_XS's) 16 levels.
constexpr int8_t kIQ4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// Value j (0..255) of a super-block of `block_bytes` (84 Q2_K, 110 Q3_K, 136
// IQ4_XS, 144 Q4_K, 176 Q5_K, 210 Q6_K), in ggml's float order: (d * scale)
// * q - dmin * min.
float k_quant_value(int64_t block_bytes, const uint8_t* b, int j) {
  const int sub = j / 32, l = j % 32;
  if (block_bytes == 136) {  // scale tops in bits 2 sub of the u16 at 2, low nibbles at 4 + sub / 2
    const int sc = (((b[4 + sub / 2] >> (4 * (sub % 2))) & 15) | (((b[2 + sub / 4] >> (2 * (sub % 4))) & 3) << 4)) - 32;
    const uint8_t q = b[8 + 16 * sub + l % 16];
    return half_to_float(half_at(b)) * float(sc) * float(kIQ4Levels[l < 16 ? q & 15 : q >> 4]);
  }
  if (block_bytes == 84 || block_bytes == 110) {  // 2-bit runs: value 128h + 32r + l at bits 2r of byte 32h + l
    const int h = j / 128, r = (j % 128) / 32, g = j / 16;
    const int low = (b[(block_bytes == 84 ? 16 : 32) + 32 * h + l] >> (2 * r)) & 3;
    if (block_bytes == 84)  // scale and min per 16 values: one byte each
      return half_to_float(half_at(b + 80)) * float(b[g] & 15) * float(low) -
             half_to_float(half_at(b + 82)) * float(b[g] >> 4);
    // Q3_K: 6-bit scales, low 4 bits in nibble g / 8 of byte 96 + g % 8, top 2
    // at bit 2 (g / 4) of byte 104 + g % 4; bit sub of hmask[l] clear: q - 4
    const int sc = (((b[96 + g % 8] >> (4 * (g / 8))) & 15) | (((b[104 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32;
    const int q = low - ((b[l] >> sub) & 1 ? 0 : 4);
    return half_to_float(half_at(b + 108)) * float(sc) * float(q);
  }
  if (block_bytes != 210) {  // d, dmin, 12 bytes of 6-bit scales/mins, [Q5_K: 32 bytes of fifth bits,] nibbles
    const uint8_t* s = b + 4;
    int sc, mn;
    if (sub < 4) {
      sc = s[sub] & 63, mn = s[sub + 4] & 63;
    } else {
      sc = (s[sub + 4] & 0x0f) | ((s[sub - 4] >> 6) << 4);
      mn = (s[sub + 4] >> 4) | ((s[sub] >> 6) << 4);
    }
    const int high = block_bytes == 176 ? 32 : 0;  // Q5_K's fifth bits come before the nibbles
    const uint8_t q = b[16 + high + 32 * (sub / 2) + l];
    const int fifth = high ? ((b[16 + l] >> sub) & 1) << 4 : 0;
    return half_to_float(half_at(b)) * float(sc) * float((sub % 2 ? q >> 4 : q & 0x0f) | fifth) -
           half_to_float(half_at(b + 2)) * float(mn);
  }
  // Q6_K: ql[128], qh[64], int8 scales[16], d. Halves of 128 values: value p
  // of a half takes its low 4 bits from ql[p % 64] (high nibble from p = 64)
  // and its top 2 from qh[p % 32] >> 2 * (p / 32); one scale per 16 values.
  const int half = j / 128, p = j % 128;
  const uint8_t lo = b[64 * half + p % 64], hi = b[128 + 32 * half + p % 32];
  const int q = ((p < 64 ? lo & 0x0f : lo >> 4) | (((hi >> (2 * (p / 32))) & 3) << 4)) - 32;
  return half_to_float(half_at(b + 208)) * float(int8_t(b[192 + j / 16])) * float(q);
}

}  // namespace

const QuantFormat* quant_format(const std::string& dtype) {
  if (dtype == kQ8_0.name) return &kQ8_0;
  if (dtype == kQ4_0.name) return &kQ4_0;
  if (dtype == kQ2_K.name) return &kQ2_K;
  if (dtype == kQ3_K.name) return &kQ3_K;
  if (dtype == kQ4_K.name) return &kQ4_K;
  if (dtype == kQ5_K.name) return &kQ5_K;
  if (dtype == kQ6_K.name) return &kQ6_K;
  if (dtype == kIQ4_XS.name) return &kIQ4_XS;
  if (dtype == kF16Packed.name) return &kF16Packed;
  if (dtype == kBF16Packed.name) return &kBF16Packed;
  return nullptr;
}

int64_t quant_storage_floats(const QuantFormat& f, int64_t numel) {
  int64_t blocks = (numel + f.block_values - 1) / f.block_values;
  return (blocks * f.block_bytes + 3) / 4;
}

std::vector<float> dequantize(const QuantFormat& f, const std::vector<float>& storage,
                              int64_t numel) {
  if (numel % f.block_values != 0 ||
      int64_t(storage.size()) < quant_storage_floats(f, numel))
    throw ExecutionError(std::string("[") + f.name + "] storage does not hold " +
                         std::to_string(numel) + " values");
  const auto* bytes = reinterpret_cast<const uint8_t*>(storage.data());
  std::vector<float> out(static_cast<size_t>(numel));
  if (&f == &kF16Packed || &f == &kBF16Packed) {
    for (int64_t i = 0; i < numel; ++i) {
      uint16_t h;
      std::memcpy(&h, bytes + 2 * i, 2);
      if (&f == &kF16Packed) {
        out[size_t(i)] = half_to_float(h);
      } else {  // bfloat16: the high half of a float32
        uint32_t bits = uint32_t(h) << 16;
        std::memcpy(&out[size_t(i)], &bits, 4);
      }
    }
    return out;
  }
  for (int64_t b = 0; b < numel / f.block_values; ++b) {
    const uint8_t* block = bytes + b * f.block_bytes;
    float* dst = out.data() + b * f.block_values;
    if (f.block_values == 256) {  // the k-quants
      for (int j = 0; j < 256; ++j) dst[j] = k_quant_value(f.block_bytes, block, j);
      continue;
    }
    uint16_t h;
    std::memcpy(&h, block, 2);
    float d = half_to_float(h);
    if (&f == &kQ8_0) {
      for (int j = 0; j < 32; ++j) dst[j] = d * float(int8_t(block[2 + j]));
    } else {
      for (int j = 0; j < 16; ++j) {
        dst[j] = d * float(int(block[2 + j] & 0x0f) - 8);
        dst[j + 16] = d * float(int(block[2 + j] >> 4) - 8);
      }
    }
  }
  return out;
}

}  // namespace luminal
