// Rotary position embedding, rotate-half style as in Hugging Face transformers: dimension i is
// paired with i + head_dim/2 (not the interleaved pairs of the original llama code).
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/tensor.h"
#include "arle/core/thread_pool.h"

namespace arle::kernels {

// cos[t, i] = cos(f32(inv_freq[i] * positions[t])) * attention_scaling and the same for sin,
// as transformers computes them (the angle is rounded to f32, the cosine is taken in double and
// rounded, which is within one ulp of torch's f32 cos).
// cos, sin: f32 [n_tok, head_dim / 2] contiguous with n_tok = positions.size() and
// head_dim / 2 = inv_freq.size().
void RopeTable(std::span<const int32_t> positions, std::span<const float> inv_freq,
               float attention_scaling, core::Tensor& cos, core::Tensor& sin);

// In place on x f32 [n_tok, n_head, head_dim]: for i < head_dim/2 with c = cos[t, i], s = sin[t, i]:
//   x'[i] = x[i] * c - x[i + head_dim/2] * s,   x'[i + head_dim/2] = x[i + head_dim/2] * c + x[i] * s.
void ApplyRope(core::Tensor& x, const core::Tensor& cos, const core::Tensor& sin,
               core::ThreadPool& pool);

}  // namespace arle::kernels
