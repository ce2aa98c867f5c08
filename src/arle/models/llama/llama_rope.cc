// Port of transformers' modeling_rope_utils for the rope types arle supports.
#include "arle/models/llama/llama_rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace arle::models::llama {
namespace {

using Type = RopeScaling::Type;

// transformers' find_correction_dim.
double CorrectionDim(double n_rotations, double dim, double base, double max_pos) {
  return (dim * std::log(max_pos / (n_rotations * 2 * std::numbers::pi))) / (2 * std::log(base));
}

double YarnMscale(double scale) { return scale <= 1 ? 1.0 : 0.1 * std::log(scale) + 1.0; }

}  // namespace

core::StatusOr<RopeFrequencies> ComputeRopeFrequencies(const LlamaConfig& c) {
  const int64_t dim = c.head_dim;
  if (dim <= 0 || dim % 2 != 0) {
    return core::InvalidArgumentError("head_dim " + std::to_string(dim) +
                                      " must be positive and even for RoPE");
  }
  if (!(c.rope_theta > 0)) {
    return core::InvalidArgumentError("rope_theta must be positive, got " +
                                      std::to_string(c.rope_theta));
  }
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type != Type::kNone && !(rs.factor > 0)) {
    return core::InvalidArgumentError("rope_scaling.factor must be positive");
  }
  RopeFrequencies out;
  const int64_t half = dim / 2;
  out.inv_freq.resize(half);
  // As transformers in f32: base ** (arange(0, dim, 2).float() / dim), then 1.0 / that.
  const float base = static_cast<float>(c.rope_theta);
  std::vector<float> pos_freqs(half);
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    pos_freqs[i] = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
    out.inv_freq[i] = 1.0f / pos_freqs[i];
  }
  switch (rs.type) {
    case Type::kNone:
      break;
    case Type::kLinear:
      for (float& f : out.inv_freq) f = f / static_cast<float>(rs.factor);
      break;
    case Type::kLlama3: {
      if (!rs.freq_factors.empty()) {
        // GGUF's rope_freqs.weight: llama.cpp divides each pair's frequency by its factor.
        if (static_cast<int64_t>(rs.freq_factors.size()) != half) {
          return core::InvalidArgumentError(
              "rope_freqs has " + std::to_string(rs.freq_factors.size()) +
              " factors, expected head_dim / 2 = " + std::to_string(half));
        }
        for (int64_t i = 0; i < half; ++i) {
          if (!(rs.freq_factors[i] > 0)) {
            return core::InvalidArgumentError("rope_freqs factors must be positive");
          }
          out.inv_freq[i] = out.inv_freq[i] / rs.freq_factors[i];
        }
        break;
      }
      const double factor = rs.factor;
      const double low = rs.low_freq_factor, high = rs.high_freq_factor;
      const double old_ctx = static_cast<double>(
          rs.original_max_position_embeddings > 0 ? rs.original_max_position_embeddings : c.n_ctx_train);
      if (!(old_ctx > 0) || !(high > low)) {
        return core::InvalidArgumentError(
            "llama3 rope_scaling needs original_max_position_embeddings > 0 and "
            "high_freq_factor > low_freq_factor");
      }
      const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
      for (float& f : out.inv_freq) {
        const double wavelen = 2 * std::numbers::pi / f;
        const float scaled = wavelen > low_wavelen ? static_cast<float>(f / factor) : f;
        const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        if (medium) {
          const double smooth = (old_ctx / wavelen - low) / (high - low);
          f = static_cast<float>((1 - smooth) * scaled / factor + smooth * scaled);
        } else {
          f = scaled;
        }
      }
      break;
    }
    case Type::kYarn: {
      const double factor = rs.factor;
      const double orig = static_cast<double>(
          rs.original_max_position_embeddings > 0 ? rs.original_max_position_embeddings : c.n_ctx_train);
      if (!(orig > 0)) {
        return core::InvalidArgumentError("yarn rope_scaling needs original_max_position_embeddings");
      }
      const double beta_fast = rs.beta_fast > 0 ? rs.beta_fast : 32.0;
      const double beta_slow = rs.beta_slow > 0 ? rs.beta_slow : 1.0;
      double low = std::floor(CorrectionDim(beta_fast, dim, c.rope_theta, orig));
      double high = std::ceil(CorrectionDim(beta_slow, dim, c.rope_theta, orig));
      low = std::max(low, 0.0);
      high = std::min(high, static_cast<double>(dim - 1));
      if (low == high) high += 0.001;  // avoid a division by zero, as transformers does
      for (int64_t i = 0; i < half; ++i) {
        const float ramp = std::clamp(static_cast<float>((static_cast<float>(i) - low) / (high - low)), 0.0f, 1.0f);
        const float extrapolation_factor = 1.0f - ramp;
        const float inv_extra = 1.0f / pos_freqs[i];
        const float inv_inter = 1.0f / (static_cast<float>(factor) * pos_freqs[i]);
        out.inv_freq[i] =
            inv_inter * (1 - extrapolation_factor) + inv_extra * extrapolation_factor;
      }
      out.attention_scaling = static_cast<float>(rs.attention_factor > 0 ? rs.attention_factor
                                                                         : YarnMscale(factor));
      break;
    }
  }
  return out;
}

}  // namespace arle::models::llama
