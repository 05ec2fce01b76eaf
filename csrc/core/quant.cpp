#include "core/quant.h"

#include <cstring>

#include "core/errors.h"

namespace luminal {

namespace {

constexpr QuantFormat kQ8_0{"q8_0", 32, 34};
constexpr QuantFormat kQ4_0{"q4_0", 32, 18};
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

}  // namespace

const QuantFormat* quant_format(const std::string& dtype) {
  if (dtype == kQ8_0.name) return &kQ8_0;
  if (dtype == kQ4_0.name) return &kQ4_0;
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
    uint16_t h;
    std::memcpy(&h, block, 2);
    float d = half_to_float(h);
    float* dst = out.data() + b * f.block_values;
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
