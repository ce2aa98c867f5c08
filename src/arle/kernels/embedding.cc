// Embedding lookup (row gather with dtype conversion) and its backward (scatter-add).
#include "arle/kernels/embedding.h"

#include <algorithm>

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
#include "arle/kernels/quant.h"
#include "arle/kernels/ref/backward_linear_ref.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels {

void Embedding(const Context& ctx, const EmbeddingArgs& a) {
  ARLE_CHECK(a.table != nullptr && a.out != nullptr) << "Embedding: null tensor";
  const core::Tensor& table = *a.table;
  core::Tensor& out = *a.out;
  const std::span<const int32_t> ids = a.ids;
  CheckOnDevice(ctx, table, "Embedding");
  CheckOnDevice(ctx, out, "Embedding");
  if (!ctx.is_cpu()) NoKernelFor("Embedding", ctx);
  ARLE_CHECK(table.rank() == 2 && table.is_contiguous() &&
             (table.dtype() == core::DType::kF32 || table.dtype() == core::DType::kF16 ||
              table.dtype() == core::DType::kBF16 || IsSupportedQuant(table.dtype())))
      << "Embedding table: " << table.ToString();
  ARLE_CHECK(out.rank() == 2 && out.dtype() == core::DType::kF32 && out.is_contiguous() &&
             out.dim(0) == static_cast<int64_t>(ids.size()) && out.dim(1) == table.dim(1))
      << "Embedding out: " << out.ToString() << " for " << ids.size() << " ids, table "
      << table.ToString();
  const int64_t n_vocab = table.dim(0), n_embd = table.dim(1);
  // Rows of a block-format table are whole blocks (core::Tensor checks it).
  const int64_t row_bytes = *core::DTypeBytes(table.dtype(), n_embd);
  const char* base = static_cast<const char*>(table.data());
  float* y = out.data_as<float>();
  for (size_t t = 0; t < ids.size(); ++t) {
    ARLE_CHECK(ids[t] >= 0 && ids[t] < n_vocab) << "token id " << ids[t] << " of " << n_vocab;
    ref::ConvertRow(base + ids[t] * row_bytes, table.dtype(), n_embd, y + t * n_embd);
  }
}

// Columns in blocks of 64 floats (whole cache lines): every worker walks all tokens in order over
// its own columns, so no two workers touch one element and each element's adds keep token order.
void EmbeddingBackward(const Context& ctx, const EmbeddingBackwardArgs& a) {
  ARLE_CHECK(a.dout != nullptr && a.dtable != nullptr) << "EmbeddingBackward: null tensor";
  const core::Tensor& dout = *a.dout;
  core::Tensor& dtable = *a.dtable;
  ARLE_CHECK(dtable.rank() == 2 && dtable.dtype() == core::DType::kF32 && dtable.is_contiguous())
      << "EmbeddingBackward dtable: " << dtable.ToString();
  ARLE_CHECK(dout.rank() == 2 && dout.dtype() == core::DType::kF32 && dout.is_contiguous() &&
             dout.dim(0) == static_cast<int64_t>(a.ids.size()) && dout.dim(1) == dtable.dim(1))
      << "EmbeddingBackward dout: " << dout.ToString() << " for " << a.ids.size()
      << " ids, dtable " << dtable.ToString();
  ARLE_CHECK(dtable.empty() || dtable.data() != dout.data())
      << "EmbeddingBackward: dtable aliases dout";
  CheckOnDevice(ctx, dout, "EmbeddingBackward");
  CheckOnDevice(ctx, dtable, "EmbeddingBackward");
  if (!ctx.is_cpu()) NoKernelFor("EmbeddingBackward", ctx);
  const int64_t n_vocab = dtable.dim(0), n_embd = dtable.dim(1);
  for (const int32_t id : a.ids) {
    ARLE_CHECK(id >= 0 && id < n_vocab) << "token id " << id << " of " << n_vocab;
  }
  EmbeddingBackwardParams<float> p;
  p.dout = dout.data_as<float>();
  p.ids = a.ids.data();
  p.dtable = dtable.data_as<float>();
  p.n_tok = static_cast<int64_t>(a.ids.size());
  p.n_embd = n_embd;
  if (p.n_tok == 0 || n_embd == 0) return;
  constexpr int64_t kBlock = 64;
  const bool use_ref = ctx.backend() == Backend::kRef;
  ctx.pool().ParallelFor((n_embd + kBlock - 1) / kBlock, kBlock * p.n_tok,
                         [&](int64_t b_begin, int64_t b_end) {
                           const int64_t c_begin = b_begin * kBlock;
                           const int64_t c_end = std::min(n_embd, b_end * kBlock);
                           if (use_ref) {
                             ref::EmbeddingBackwardColumns(p, c_begin, c_end);
                           } else {
                             cpu::EmbeddingBackwardColumns(p, c_begin, c_end);
                           }
                         });
}

}  // namespace arle::kernels
