// The reference definition of one query's attention with the online softmax of kernel_args.h
// (kAttentionKeyStep), shared by contiguous (ops_ref.cc) and paged (paged_attention_ref.cc)
// attention so the two stay bit-identical over the same f32 rows. Scalar f32, sequential sums.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "arle/kernels/kernel_args.h"

namespace arle::kernels::ref {

// out[0, hd) = softmax-weighted sum of the V rows of keys j in [0, n_seen), with scores
// scale * dot(q, K row j). key_row(j) and value_row(j) return key j's K and V rows as f32; the
// pointer need only stay valid until the next call of the same function.
template <typename KeyRow, typename ValueRow>
void AttendOneQuery(const float* q, int64_t n_seen, int64_t hd, float scale, const KeyRow& key_row,
                    const ValueRow& value_row, float* out) {
  float p[kAttentionKeyStep];
  float running_max = -INFINITY;
  float running_sum = 0.0f;
  for (int64_t d = 0; d < hd; ++d) out[d] = 0.0f;
  for (int64_t j0 = 0; j0 < n_seen; j0 += kAttentionKeyStep) {
    const int64_t n = std::min(kAttentionKeyStep, n_seen - j0);
    float step_max = running_max;
    for (int64_t j = 0; j < n; ++j) {
      const float* k = key_row(j0 + j);
      float dot = 0.0f;
      for (int64_t d = 0; d < hd; ++d) dot += q[d] * k[d];
      p[j] = dot * scale;
      if (p[j] > step_max) step_max = p[j];
    }
    // A maximum that did not grow needs no rescale (the factor would be exactly 1).
    if (j0 > 0 && step_max != running_max) {
      const float c = std::exp(running_max - step_max);
      running_sum *= c;
      for (int64_t d = 0; d < hd; ++d) out[d] *= c;
    }
    running_max = step_max;
    for (int64_t j = 0; j < n; ++j) {
      p[j] = std::exp(p[j] - step_max);
      running_sum += p[j];
    }
    for (int64_t j = 0; j < n; ++j) {
      const float* v = value_row(j0 + j);
      for (int64_t d = 0; d < hd; ++d) out[d] += p[j] * v[d];
    }
  }
  for (int64_t d = 0; d < hd; ++d) out[d] /= running_sum;
}

}  // namespace arle::kernels::ref
