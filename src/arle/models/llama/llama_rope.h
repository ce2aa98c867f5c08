// RoPE inverse frequencies and attention scaling from a model config, following transformers'
// rope init functions (default, linear, llama3, yarn).
#pragma once

#include <vector>

#include "arle/core/status.h"
#include "arle/models/llama/llama_spec.h"

namespace arle::models::llama {

struct RopeFrequencies {
  std::vector<float> inv_freq;     // [head_dim / 2]
  float attention_scaling = 1.0f;  // multiplies cos and sin (yarn's attention factor)
};

// Returns inv_freq[i] = 1 / theta^(2i / head_dim) adjusted per config.rope_scaling:
// linear divides by factor; llama3 as transformers' _compute_llama3_parameters (or, when
// rope_scaling.freq_factors is set as GGUF stores it, inv_freq[i] / freq_factors[i]); yarn as
// _compute_yarn_parameters (ramp between beta_fast/beta_slow correction dims, truncated, and
// attention factor 0.1 ln(factor) + 1 unless given). InvalidArgument for nonsensical parameters.
core::StatusOr<RopeFrequencies> ComputeRopeFrequencies(const LlamaConfig& config);

}  // namespace arle::models::llama
