// Elementwise kernels of the transformer block: SwiGLU, residual add, row gather; and argmax over
// host logits.
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/tensor.h"
#include "arle/kernels/context.h"

namespace arle::kernels {

// out = silu(gate) * up with silu(g) = g / (1 + exp(-g)); all f32 with equal element counts.
struct SwiGluArgs {
  const core::Tensor* gate = nullptr;
  const core::Tensor* up = nullptr;
  core::Tensor* out = nullptr;  // may alias gate or up
};
void SwiGlu(const Context& ctx, const SwiGluArgs& args);

// Backward of swiglu = silu(gate) * up: with s = sigmoid(gate) (computed from exp(-|gate|), so
// finite for every input),
//   dup = dswiglu * gate * s,   dgate = dswiglu * up * s * (1 + gate * (1 - s)).
// All f32 contiguous with equal element counts. Each element is computed alone from the inputs at
// its index, so either output may alias any input (dgate = gate or dswiglu, dup = up, ...), but
// dgate and dup must not alias each other. Bits do not depend on the thread count. CPU backends
// only.
struct SwiGluBackwardArgs {
  const core::Tensor* gate = nullptr;
  const core::Tensor* up = nullptr;
  const core::Tensor* dswiglu = nullptr;
  core::Tensor* dgate = nullptr;
  core::Tensor* dup = nullptr;
};
void SwiGluBackward(const Context& ctx, const SwiGluBackwardArgs& args);

// out = a + b elementwise (the residual connection); f32, equal element counts.
struct AddArgs {
  const core::Tensor* a = nullptr;
  const core::Tensor* b = nullptr;
  core::Tensor* out = nullptr;  // may alias a or b
};
void Add(const Context& ctx, const AddArgs& args);

// out[r, :] = x[rows[r], :]: gathers rows of a f32 [n, width] matrix (the last token of each
// sequence before the LM head). REQUIRES (checked): 0 <= rows[r] < n; out f32 [rows.size(),
// width] contiguous, not overlapping x.
struct GatherRowsArgs {
  const core::Tensor* x = nullptr;
  std::span<const int64_t> rows;
  core::Tensor* out = nullptr;
};
void GatherRows(const Context& ctx, const GatherRowsArgs& args);

// dst = src (any dtype; equal byte sizes, both contiguous, not overlapping): state copies between
// recurrent slots and other whole-tensor moves inside one backend's memory.
struct CopyArgs {
  const core::Tensor* src = nullptr;
  core::Tensor* dst = nullptr;
};
void Copy(const Context& ctx, const CopyArgs& args);

// Index of the largest value (the first one on ties; NaN is never chosen unless all are NaN).
// REQUIRES: values non-empty.
int64_t ArgMax(std::span<const float> values);

}  // namespace arle::kernels
