// Paged KV kernels: validation and dispatch of PagedAttention (threaded over (token, head) pairs),
// and the plain loops that write rows into blocks (with rounding) and copy rows between blocks.
#include "arle/kernels/paged_attention.h"

#include <algorithm>
#include <cstring>

#include "arle/core/check.h"
#include "arle/core/half.h"
#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels {
namespace {

void CheckLayer(const PagedKvLayer& layer, const char* op) {
  ARLE_CHECK(layer.dtype == core::DType::kF32 || layer.dtype == core::DType::kBF16 ||
             layer.dtype == core::DType::kF16)
      << op << ": KV dtype must be f32, bf16 or f16, got " << core::DTypeName(layer.dtype);
  ARLE_CHECK(layer.k != nullptr && layer.v != nullptr) << op << ": null K or V storage";
  ARLE_CHECK(layer.n_blocks > 0 && layer.block_size > 0 && layer.n_head_kv > 0 &&
             layer.head_dim > 0)
      << op << ": layer n_blocks " << layer.n_blocks << " block_size " << layer.block_size
      << " n_head_kv " << layer.n_head_kv << " head_dim " << layer.head_dim;
}

bool IsF32Contiguous3d(const core::Tensor& t) {
  return t.rank() == 3 && t.dtype() == core::DType::kF32 && t.is_contiguous();
}

bool Overlap(const core::Tensor& a, const core::Tensor& b) {
  const char* a0 = static_cast<const char*>(a.data());
  const char* b0 = static_cast<const char*>(b.data());
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

void StoreRow(const float* src, int64_t n, core::DType dtype, void* dst) {
  switch (dtype) {
    case core::DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case core::DType::kBF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = core::F32ToBF16(src[i]);
      break;
    }
    case core::DType::kF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = core::F32ToF16(src[i]);
      break;
    }
    default:
      ARLE_CHECK(false) << "WritePagedKv: unsupported dtype " << core::DTypeName(dtype);
  }
}

}  // namespace

void WritePagedKv(const Context& ctx, const WritePagedKvArgs& a) {
  ARLE_CHECK(a.layer != nullptr) << "WritePagedKv: null layer";
  const PagedKvLayer& layer = *a.layer;
  const std::span<const int64_t> slots = a.slots;
  CheckLayer(layer, "WritePagedKv");
  if (!ctx.is_cpu()) NoKernelFor("WritePagedKv", ctx);
  const int64_t n_tok = static_cast<int64_t>(slots.size());
  if (n_tok == 0) return;  // an empty batch may come with null or empty tensors
  ARLE_CHECK(a.k_new != nullptr && a.v_new != nullptr) << "WritePagedKv: null K or V";
  const core::Tensor &k_new = *a.k_new, &v_new = *a.v_new;
  for (const core::Tensor* t : {&k_new, &v_new}) {
    CheckOnDevice(ctx, *t, "WritePagedKv");
    ARLE_CHECK(t->rank() == 3 && t->dtype() == core::DType::kF32 && t->is_contiguous() &&
               t->dim(0) == n_tok && t->dim(1) == layer.n_head_kv && t->dim(2) == layer.head_dim)
        << "WritePagedKv: " << t->ToString() << " for " << n_tok << " slots, n_head_kv "
        << layer.n_head_kv << " head_dim " << layer.head_dim;
  }
  const int64_t n_slots = layer.n_blocks * layer.block_size;
  for (const int64_t s : slots) {
    ARLE_CHECK(s >= 0 && s < n_slots)
        << "WritePagedKv: slot " << s << " outside [0, " << n_slots << ")";
  }
  const int64_t hd = layer.head_dim;
  const int64_t row = layer.n_head_kv * hd;
  const int64_t elem = core::ElementSize(layer.dtype);
  for (int64_t t = 0; t < n_tok; ++t) {
    const int64_t block = slots[t] / layer.block_size, offset = slots[t] % layer.block_size;
    for (int64_t kvh = 0; kvh < layer.n_head_kv; ++kvh) {
      const int64_t at =
          PagedKvElement(block, offset, kvh, layer.n_head_kv, layer.block_size, hd) * elem;
      StoreRow(k_new.data_as<float>() + t * row + kvh * hd, hd, layer.dtype,
               static_cast<char*>(layer.k) + at);
      StoreRow(v_new.data_as<float>() + t * row + kvh * hd, hd, layer.dtype,
               static_cast<char*>(layer.v) + at);
    }
  }
}

void PagedAttention(const Context& ctx, const PagedAttentionArgs& a) {
  ARLE_CHECK(a.q != nullptr && a.layer != nullptr && a.out != nullptr)
      << "PagedAttention: null argument";
  const core::Tensor& q = *a.q;
  const PagedKvLayer& layer = *a.layer;
  const std::span<const int32_t* const> block_tables = a.block_tables;
  const std::span<const int32_t> positions = a.positions;
  const float scale = a.scale;
  core::Tensor& out = *a.out;
  CheckLayer(layer, "PagedAttention");
  CheckOnDevice(ctx, q, "PagedAttention");
  CheckOnDevice(ctx, out, "PagedAttention");
  if (!ctx.is_cpu()) NoKernelFor("PagedAttention", ctx);
  ARLE_CHECK(IsF32Contiguous3d(q) && IsF32Contiguous3d(out))
      << "PagedAttention: q " << q.ToString() << " out " << out.ToString();
  const int64_t n_tok = q.dim(0), n_head = q.dim(1), head_dim = q.dim(2);
  ARLE_CHECK(head_dim == layer.head_dim && n_head > 0 && n_head % layer.n_head_kv == 0)
      << "PagedAttention: q " << q.ToString() << " vs n_head_kv " << layer.n_head_kv << " head_dim "
      << layer.head_dim;
  ARLE_CHECK(out.dim(0) == n_tok && out.dim(1) == n_head && out.dim(2) == head_dim)
      << "PagedAttention: out " << out.ToString() << " q " << q.ToString();
  ARLE_CHECK(!Overlap(q, out)) << "PagedAttention: out aliases q";
  ARLE_CHECK_EQ(static_cast<int64_t>(positions.size()), n_tok);
  ARLE_CHECK_EQ(static_cast<int64_t>(block_tables.size()), n_tok);
  // Every block a token reads must exist. Tokens of one sequence share a table and usually come
  // together, so each table's prefix is checked once per run of tokens, not once per token.
  const int32_t* checked_table = nullptr;
  int64_t checked_blocks = 0;
  int64_t total_seen = 0;
  for (int64_t t = 0; t < n_tok; ++t) {
    const int32_t p = positions[t];
    const int32_t* table = block_tables[t];
    ARLE_CHECK(p >= 0) << "PagedAttention: position " << p << " of token " << t;
    ARLE_CHECK(table != nullptr) << "PagedAttention: null block table for token " << t;
    const int64_t n_blocks_read = p / layer.block_size + 1;
    if (table != checked_table) {
      checked_table = table;
      checked_blocks = 0;
    }
    for (; checked_blocks < n_blocks_read; ++checked_blocks) {
      const int32_t b = table[checked_blocks];
      ARLE_CHECK(b >= 0 && b < layer.n_blocks)
          << "PagedAttention: token " << t << " block_table[" << checked_blocks << "] = " << b
          << " outside [0, " << layer.n_blocks << ")";
    }
    total_seen += static_cast<int64_t>(p) + 1;
  }
  if (n_tok == 0) return;
  PagedAttentionParams args;
  args.q = q.data_as<float>();
  args.k = layer.k;
  args.v = layer.v;
  args.kv_dtype = layer.dtype;
  args.out = out.data_as<float>();
  args.block_tables = block_tables.data();
  args.positions = positions.data();
  args.n_tok = n_tok;
  args.n_head = n_head;
  args.n_head_kv = layer.n_head_kv;
  args.head_dim = head_dim;
  args.block_size = layer.block_size;
  args.scale = scale;
  const bool use_ref = ctx.backend() == Backend::kRef;
  // The average item cost only sizes the worker count; the results never depend on it.
  const int64_t mean_seen = (total_seen + n_tok - 1) / n_tok;
  ctx.pool().ParallelFor(n_tok * n_head, /*work_per_item=*/2 * mean_seen * head_dim,
                         [&](int64_t begin, int64_t end) {
                           if (use_ref) {
                             ref::PagedAttentionRows(args, begin, end);
                           } else {
                             cpu::PagedAttentionRows(args, begin, end);
                           }
                         });
}

void CopyPagedKvRows(const Context& ctx, const CopyPagedKvRowsArgs& a) {
  ARLE_CHECK(a.layer != nullptr) << "CopyPagedKvRows: null layer";
  const PagedKvLayer& layer = *a.layer;
  const int64_t src = a.src, dst = a.dst, n_rows = a.n_rows;
  CheckLayer(layer, "CopyPagedKvRows");
  if (!ctx.is_cpu()) NoKernelFor("CopyPagedKvRows", ctx);
  ARLE_CHECK(src >= 0 && src < layer.n_blocks && dst >= 0 && dst < layer.n_blocks)
      << "CopyPagedKvRows: blocks " << src << " -> " << dst << " outside [0, " << layer.n_blocks
      << ")";
  ARLE_CHECK(n_rows >= 0 && n_rows <= layer.block_size)
      << "CopyPagedKvRows: n_rows " << n_rows << " block_size " << layer.block_size;
  if (src == dst || n_rows == 0) return;
  const int64_t elem = core::ElementSize(layer.dtype);
  const size_t n_bytes = static_cast<size_t>(n_rows * layer.head_dim * elem);
  for (void* side : {layer.k, layer.v}) {
    char* base = static_cast<char*>(side);
    for (int64_t kvh = 0; kvh < layer.n_head_kv; ++kvh) {
      const auto at = [&](int64_t block) {
        return PagedKvElement(block, 0, kvh, layer.n_head_kv, layer.block_size, layer.head_dim) *
               elem;
      };
      std::memcpy(base + at(dst), base + at(src), n_bytes);
    }
  }
}

}  // namespace arle::kernels
