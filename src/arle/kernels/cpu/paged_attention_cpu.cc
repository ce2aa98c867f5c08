// Highway paged attention: the same per-row math as ops_cpu.cc's AttentionRows
// (attention_group-inl.h), with each K/V row found through the sequence's block table. 16-bit rows
// are widened as they are loaded (exact).
#include <algorithm>
#include <vector>

#include "arle/core/check.h"
#include "arle/kernels/cpu/cpu_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "arle/kernels/cpu/paged_attention_cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// After highway.h, per target:
#include "arle/kernels/cpu/attention_group-inl.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {
template <typename T>
void PagedAttentionRowsT(const PagedAttentionParams& a, int64_t begin, int64_t end) {
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t hd = a.head_dim;
  const T* k_base = static_cast<const T*>(a.k);
  const T* v_base = static_cast<const T*>(a.v);
  // Grows to the longest context seen by this thread, then stays (no allocation per call).
  // Element offsets of head 0 of rows [0, rows_len) of the sequence whose block table is
  // rows_table.
  thread_local std::vector<int64_t> rows;
  const int32_t* rows_table = nullptr;
  int64_t rows_len = 0;
  auto row_offset = [&](int64_t j) { return rows[j]; };
  GroupQuery queries[kMaxGroupQueries];
  int64_t item = begin;
  while (item < end) {
    // The run of items that share this KV head and this sequence's rows (ItemAt's order puts
    // them next to each other), up to kMaxGroupQueries.
    const AttentionItem first = ItemAt(item, a.n_tok, a.n_head, group);
    const int32_t* table = a.block_tables[first.t];
    int64_t m = 0, max_seen = 0;
    for (; item < end && m < kMaxGroupQueries; ++item, ++m) {
      const AttentionItem it = ItemAt(item, a.n_tok, a.n_head, group);
      if (it.kvh != first.kvh || a.block_tables[it.t] != table) break;
      const int64_t qh = it.t * a.n_head + it.h;
      queries[m] = {a.q + qh * hd, static_cast<int64_t>(a.positions[it.t]) + 1, a.out + qh * hd};
      max_seen = std::max(max_seen, queries[m].n_seen);
    }
    if (static_cast<int64_t>(rows.size()) < max_seen) rows.resize(max_seen);
    if (table != rows_table) {
      rows_table = table;
      rows_len = 0;
    }
    // Tokens of one sequence share its table: extend the offsets instead of recomputing them.
    // One block at a time: a decode batch visits each sequence once per KV head, so this runs
    // often; rows of a block are head_dim elements apart.
    for (int64_t j = rows_len; j < max_seen;) {
      const int64_t b = j / a.block_size;
      const int64_t base = PagedKvElement(table[b], 0, 0, a.n_head_kv, a.block_size, hd);
      const int64_t end = std::min(max_seen, (b + 1) * a.block_size);
      for (; j < end; ++j) rows[j] = base + (j - b * a.block_size) * hd;
    }
    rows_len = std::max(rows_len, max_seen);
    // Head kvh's rows sit kvh * block_size rows after head 0's in every block.
    const int64_t head_offset = first.kvh * a.block_size * hd;
    AttendGroup(queries, m, k_base + head_offset, v_base + head_offset, hd, a.scale, row_offset);
  }
}

void PagedAttentionRows(const PagedAttentionParams& a, int64_t begin, int64_t end) {
  switch (a.kv_dtype) {
    case core::DType::kF32:
      PagedAttentionRowsT<float>(a, begin, end);
      break;
    case core::DType::kF16:
      PagedAttentionRowsT<hwy::float16_t>(a, begin, end);
      break;
    case core::DType::kBF16:
      PagedAttentionRowsT<hwy::bfloat16_t>(a, begin, end);
      break;
    default:
      ARLE_CHECK(false) << "PagedAttention: unsupported KV dtype " << core::DTypeName(a.kv_dtype);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(PagedAttentionRows);

void PagedAttentionRows(const PagedAttentionParams& args, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(PagedAttentionRows)(args, begin, end);
}

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
