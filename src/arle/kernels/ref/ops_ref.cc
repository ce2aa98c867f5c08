// Scalar reference RMSNorm and causal GQA attention (f32 throughout, sequential reductions;
// attention's online softmax is online_attention_ref.h).
#include <cmath>

#include "arle/kernels/ref/online_attention_ref.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels::ref {

void RmsNormRows(const RmsNormParams& a, int64_t begin, int64_t end) {
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

void AttentionRows(const AttentionParams& a, int64_t begin, int64_t end) {
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t hd = a.head_dim;
  const int64_t kv_row = a.n_head_kv * hd;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t t = item / a.n_head;
    const int64_t kvh = (item % a.n_head) / group;
    const float* k = a.k + kvh * hd;
    const float* v = a.v + kvh * hd;
    AttendOneQuery(
        a.q + item * hd, static_cast<int64_t>(a.positions[t]) + 1, hd, a.scale,
        [&](int64_t j) { return k + j * kv_row; }, [&](int64_t j) { return v + j * kv_row; },
        a.out + item * hd);
  }
}

}  // namespace arle::kernels::ref
