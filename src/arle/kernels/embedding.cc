// Embedding lookup (row gather with dtype conversion).
#include "arle/kernels/embedding.h"

#include "arle/kernels/dispatch.h"
#include "arle/kernels/quant.h"
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

}  // namespace arle::kernels
