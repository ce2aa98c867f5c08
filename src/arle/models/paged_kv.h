// PagedKvStorage: the memory half of the paged KV cache — every layer's K and V as arrays of
// fixed-size blocks in f32, bf16 or f16. Which block belongs to which sequence is decided outside
// (kv::BlockPool and the engine's block tables); the model reads and writes rows through them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/dtype.h"
#include "arle/core/status.h"
#include "arle/kernels/paged_attention.h"

namespace arle::models {

// One sequence's part of a paged forward step: tokens[token_begin, token_begin + n_tokens) at
// positions n_past .. n_past + n_tokens - 1. block_table must cover rows 0 .. n_past + n_tokens - 1.
struct PagedSequence {
  int64_t token_begin = 0;
  int64_t n_tokens = 0;
  int64_t n_past = 0;
  std::span<const int32_t> block_table;
  bool want_logits = false;  // logits of this sequence's last token of the step
};

class PagedKvStorage {
 public:
  // Bytes one block takes over all layers (K and V).
  static int64_t BytesPerBlock(int64_t n_layer, int64_t block_size, int64_t n_head_kv,
                               int64_t head_dim, core::DType dtype);
  // Allocates n_blocks blocks per layer. Errors: InvalidArgument for a dtype other than
  // f32/bf16/f16 or non-positive sizes; ResourceExhausted when memory is short.
  static core::StatusOr<std::unique_ptr<PagedKvStorage>> Create(int64_t n_layer, int64_t n_blocks,
                                                                 int64_t block_size,
                                                                 int64_t n_head_kv,
                                                                 int64_t head_dim,
                                                                 core::DType dtype);
  PagedKvStorage(const PagedKvStorage&) = delete;
  PagedKvStorage& operator=(const PagedKvStorage&) = delete;

  int64_t n_layer() const { return static_cast<int64_t>(layers_.size()); }
  int64_t n_blocks() const { return layers_.empty() ? 0 : layers_[0].n_blocks; }
  int64_t block_size() const { return layers_.empty() ? 0 : layers_[0].block_size; }
  int64_t n_head_kv() const { return layers_.empty() ? 0 : layers_[0].n_head_kv; }
  int64_t head_dim() const { return layers_.empty() ? 0 : layers_[0].head_dim; }
  core::DType dtype() const { return layers_.empty() ? core::DType::kF32 : layers_[0].dtype; }
  const kernels::PagedKvLayer& layer(int64_t l) const { return layers_[l]; }

  // Copies the first n_rows rows of block src into block dst in every layer.
  void CopyBlockRows(const kernels::Context& ctx, int64_t src, int64_t dst, int64_t n_rows);

 private:
  PagedKvStorage() = default;
  std::vector<core::Buffer> buffers_;  // per layer: K then V
  std::vector<kernels::PagedKvLayer> layers_;
};

}  // namespace arle::models
