// Elementwise kernels of the transformer block: SwiGLU, residual add, and argmax over logits.
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/tensor.h"
#include "arle/core/thread_pool.h"

namespace arle::kernels {

// out = silu(gate) * up with silu(g) = g / (1 + exp(-g)); all f32 with equal element counts.
// out may alias gate or up.
void SwiGlu(const core::Tensor& gate, const core::Tensor& up, core::Tensor& out,
            core::ThreadPool& pool);

// out = a + b elementwise (the residual connection); f32, equal element counts; out may alias.
void Add(const core::Tensor& a, const core::Tensor& b, core::Tensor& out);

// Index of the largest value (the first one on ties; NaN is never chosen unless all are NaN).
// REQUIRES: values non-empty.
int64_t ArgMax(std::span<const float> values);

}  // namespace arle::kernels
