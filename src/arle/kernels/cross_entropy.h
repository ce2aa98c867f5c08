// CrossEntropy over the vocabulary: per-row losses of f32 logits against target ids, with the
// logits' gradient written over them in place (the LM head's loss and its backward in one pass).
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/tensor.h"
#include "arle/kernels/context.h"

namespace arle::kernels {

inline constexpr int32_t kIgnoreIndex = -100;  // PyTorch's ignore_index

struct CrossEntropyArgs {
  core::Tensor* logits = nullptr;    // f32 [n_rows, n_vocab] contiguous; replaced by dlogits
  std::span<const int32_t> targets;  // [n_rows]; kIgnoreIndex rows: loss 0, gradient 0
  float grad_scale = 1;              // dlogits = (softmax - onehot(target)) * grad_scale
  std::span<float> losses;           // [n_rows] out: logsumexp(row) - row[target] (0 if ignored)
  // Policy-gradient losses (GRPO): row r's gradient is further multiplied by row_scales[r]
  // (empty: 1), and with temperature T != 1 the loss is that of the rows divided by T
  // (log_softmax(z / T), the distribution sampled at temperature T), its gradient taken w.r.t. z.
  std::span<const float> row_scales = {};  // [n_rows] or empty
  float temperature = 1;                   // > 0
};

// For each row r with target c: u = row / T, m = max_j u[j], s = sum_j exp(u[j] - m) (stable in
// f32), losses[r] = m + log(s) - u[c], and with g = grad_scale * row_scales[r] / T, row[j] becomes
// exp(u[j] - m) / s * g, minus g at j = c. The training loop calls it on row chunks of the LM
// head's output, so [tokens x vocab] logits are never all held. Rows are independent and each is
// computed by one worker in a fixed order: bit-identical for every pool size and whatever the other
// rows. REQUIRES (checked): targets.size() == losses.size() == n_rows; each target is kIgnoreIndex
// or in [0, n_vocab) (callers validate user data first). CPU backends only.
void CrossEntropy(const Context& ctx, const CrossEntropyArgs& args);

}  // namespace arle::kernels
