// Rotary position embedding, rotate-half style as in Hugging Face transformers: dimension i is
// paired with i + head_dim/2 (not the interleaved pairs of the original llama code).
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/tensor.h"
#include "arle/kernels/context.h"

namespace arle::kernels {

// cos[t, i] = cos(f32(inv_freq[i] * positions[t])) * attention_scaling and the same for sin,
// as transformers computes them (the angle is rounded to f32, the cosine is taken in double and
// rounded, which is within one ulp of torch's f32 cos).
struct RopeTableArgs {
  std::span<const int32_t> positions;  // [n_tok]
  std::span<const float> inv_freq;     // [head_dim / 2]
  float attention_scaling = 1;
  core::Tensor* cos = nullptr;  // f32 [n_tok, head_dim / 2] contiguous
  core::Tensor* sin = nullptr;
};
void RopeTable(const Context& ctx, const RopeTableArgs& args);

// In x f32 [n_tok, n_head, head_dim]: for i < head_dim/2 with c = cos[t, i], s = sin[t, i]:
//   x'[i] = x[i] * c - x[i + head_dim/2] * s,   x'[i + head_dim/2] = x[i + head_dim/2] * c + x[i] *
//   s.
struct ApplyRopeArgs {
  const core::Tensor* x = nullptr;
  const core::Tensor* cos = nullptr;  // RopeTable's
  const core::Tensor* sin = nullptr;
  core::Tensor* out = nullptr;  // x's shape; may be x itself (in place)
};
void ApplyRope(const Context& ctx, const ApplyRopeArgs& args);

// Backward of ApplyRope: the transpose of its rotation, per (token, head) and i < head_dim/2:
//   dx[i] = dy[i] * c + dy[i + head_dim/2] * s,   dx[i + head_dim/2] = dy[i + head_dim/2] * c -
//   dy[i] * s.
// Same layouts as ApplyRopeArgs (dy and dx f32 [n_tok, n_head, head_dim]). Every element is
// computed alone, so the result does not depend on the thread count. CPU backends only.
struct ApplyRopeBackwardArgs {
  const core::Tensor* dy = nullptr;
  const core::Tensor* cos = nullptr;  // RopeTable's
  const core::Tensor* sin = nullptr;
  core::Tensor* dx = nullptr;  // dy's shape; may be dy itself (in place)
};
void ApplyRopeBackward(const Context& ctx, const ApplyRopeBackwardArgs& args);

}  // namespace arle::kernels
