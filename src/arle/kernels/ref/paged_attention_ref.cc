// Scalar reference paged attention: ops_ref.cc's AttentionRows, operation for operation, with each
// K/V row found through the sequence's block table and widened to f32 before use.
#include <cmath>
#include <vector>

#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels::ref {

void PagedAttentionRows(const PagedAttentionArgs& a, int64_t begin, int64_t end) {
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t hd = a.head_dim;
  const bool widen = a.kv_dtype != core::DType::kF32;
  const int64_t elem = core::ElementSize(a.kv_dtype);
  const char* k_base = static_cast<const char*>(a.k);
  const char* v_base = static_cast<const char*>(a.v);
  std::vector<float> scores;
  std::vector<float> row(widen ? hd : 0);  // one widened K or V head row
  // Returns head kvh of row j of token t's sequence as f32 (in `row` when the cache is 16-bit).
  const auto load_row = [&](const char* base, int64_t t, int64_t j, int64_t kvh) -> const float* {
    const int64_t block = a.block_tables[t][j / a.block_size];
    const char* p =
        base + PagedKvElement(block, j % a.block_size, kvh, a.n_head_kv, a.block_size, hd) * elem;
    if (!widen) return reinterpret_cast<const float*>(p);
    ConvertRow(p, a.kv_dtype, hd, row.data());
    return row.data();
  };
  for (int64_t item = begin; item < end; ++item) {
    const int64_t t = item / a.n_head;
    const int64_t h = item % a.n_head;
    const int64_t kvh = h / group;
    const int64_t n_seen = static_cast<int64_t>(a.positions[t]) + 1;
    const float* q = a.q + item * hd;
    scores.resize(n_seen);
    float max_score = -INFINITY;
    for (int64_t j = 0; j < n_seen; ++j) {
      const float* k = load_row(k_base, t, j, kvh);
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
      const float* v = load_row(v_base, t, j, kvh);
      const float p = scores[j];
      for (int64_t d = 0; d < hd; ++d) out[d] += p * v[d];
    }
  }
}

}  // namespace arle::kernels::ref
