// Scalar reference RMSNorm and causal GQA attention (f32 throughout, sequential reductions).
#include <cmath>
#include <vector>

#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels::ref {

void RmsNormRows(const RmsNormArgs& a, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const float* x = a.x + r * a.n;
    float* y = a.y + r * a.n;
    float ss = 0.0f;
    for (int64_t i = 0; i < a.n; ++i) ss += x[i] * x[i];
    // As HF's Qwen3RMSNorm/LlamaRMSNorm in f32: x * rsqrt(mean + eps), then times the weight.
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(a.n) + a.eps);
    for (int64_t i = 0; i < a.n; ++i) y[i] = (x[i] * inv) * LoadAsF32(a.w, a.w_dtype, i);
  }
}

void AttentionRows(const AttentionArgs& a, int64_t begin, int64_t end) {
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t hd = a.head_dim;
  const int64_t kv_row = a.n_head_kv * hd;
  std::vector<float> scores;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t t = item / a.n_head;
    const int64_t h = item % a.n_head;
    const int64_t kvh = h / group;
    const int64_t n_seen = static_cast<int64_t>(a.positions[t]) + 1;
    const float* q = a.q + item * hd;
    scores.resize(n_seen);
    float max_score = -INFINITY;
    for (int64_t j = 0; j < n_seen; ++j) {
      const float* k = a.k + j * kv_row + kvh * hd;
      float dot = 0.0f;
      for (int64_t d = 0; d < hd; ++d) dot += q[d] * k[d];
      scores[j] = dot * a.scale;
      if (scores[j] > max_score) max_score = scores[j];
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < n_seen; ++j) {
      scores[j] = std::exp(scores[j] - max_score);
      sum += scores[j];
    }
    for (int64_t j = 0; j < n_seen; ++j) scores[j] /= sum;
    float* out = a.out + item * hd;
    for (int64_t d = 0; d < hd; ++d) out[d] = 0.0f;
    for (int64_t j = 0; j < n_seen; ++j) {
      const float* v = a.v + j * kv_row + kvh * hd;
      const float p = scores[j];
      for (int64_t d = 0; d < hd; ++d) out[d] += p * v[d];
    }
  }
}

}  // namespace arle::kernels::ref
