// Scalar reference paged attention: the same AttendOneQuery as ops_ref.cc's AttentionRows, with
// each K/V row found through the sequence's block table and widened to f32 before use.
#include <vector>

#include "arle/kernels/ref/online_attention_ref.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels::ref {

void PagedAttentionRows(const PagedAttentionParams& a, int64_t begin, int64_t end) {
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t hd = a.head_dim;
  const bool widen = a.kv_dtype != core::DType::kF32;
  const int64_t elem = core::ElementSize(a.kv_dtype);
  const char* k_base = static_cast<const char*>(a.k);
  const char* v_base = static_cast<const char*>(a.v);
  std::vector<float> k_row(widen ? hd : 0), v_row(widen ? hd : 0);  // widened 16-bit rows
  for (int64_t item = begin; item < end; ++item) {
    const int64_t t = item / a.n_head;
    const int64_t kvh = (item % a.n_head) / group;
    // Head kvh of row j of token t's sequence as f32 (in `row` when the cache is 16-bit).
    const auto load_row = [&](const char* base, int64_t j, std::vector<float>& row) {
      const int64_t block = a.block_tables[t][j / a.block_size];
      const char* p =
          base + PagedKvElement(block, j % a.block_size, kvh, a.n_head_kv, a.block_size, hd) * elem;
      if (!widen) return reinterpret_cast<const float*>(p);
      ConvertRow(p, a.kv_dtype, hd, row.data());
      return static_cast<const float*>(row.data());
    };
    AttendOneQuery(
        a.q + item * hd, static_cast<int64_t>(a.positions[t]) + 1, hd, a.scale,
        [&](int64_t j) { return load_row(k_base, j, k_row); },
        [&](int64_t j) { return load_row(v_base, j, v_row); }, a.out + item * hd);
  }
}

}  // namespace arle::kernels::ref
