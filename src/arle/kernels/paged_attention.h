// Paged KV cache kernels: writing new keys/values into fixed-size blocks (converting to the cache
// dtype) and causal grouped-query attention that reads each sequence's rows through its block table
// (varlen batches, no padding).
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/dtype.h"
#include "arle/core/tensor.h"
#include "arle/kernels/context.h"

namespace arle::kernels {

// Element index of head `kvh` of row `offset` (< block_size) of block `block` in a paged K or V
// side laid out [n_blocks, n_head_kv, block_size, head_dim].
inline int64_t PagedKvElement(int64_t block, int64_t offset, int64_t kvh, int64_t n_head_kv,
                              int64_t block_size, int64_t head_dim) {
  return ((block * n_head_kv + kvh) * block_size + offset) * head_dim;
}

// One layer's K and V storage: each [n_blocks, n_head_kv, block_size, head_dim] contiguous, in
// dtype f32, bf16 or f16 (element index: PagedKvElement below). Row j of a sequence
// lives in block block_table[j / block_size] at offset j % block_size. Head-major inside a block
// keeps one KV head's rows of a block contiguous, so attention streams them; token-major rows
// would sit n_head_kv * head_dim elements apart (4 KiB for Qwen3-0.6B in f32), all in the same
// few L1 sets.
struct PagedKvLayer {
  void* k = nullptr;
  void* v = nullptr;
  core::DType dtype = core::DType::kF32;
  int64_t n_blocks = 0;
  int64_t block_size = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
};

// For each token t: stores k_new[t] and v_new[t] (f32 [n_tok, n_head_kv, head_dim]) into the slot
// slots[t] = block * block_size + offset, rounding to the layer's dtype (round to nearest even,
// as core/half.h). REQUIRES (checked): 0 <= slots[t] < n_blocks * block_size, shapes match.
struct WritePagedKvArgs {
  const core::Tensor* k_new = nullptr;  // may be null (or empty) when slots is empty
  const core::Tensor* v_new = nullptr;
  std::span<const int64_t> slots;
  const PagedKvLayer* layer = nullptr;
};
void WritePagedKv(const Context& ctx, const WritePagedKvArgs& args);

// out[t, h, :] = sum_j softmax_j(scale * q[t, h, :] . K[j, h / group, :]) * V[j, h / group, :]
// over rows j = 0 .. positions[t] (inclusive) of token t's sequence, found through
// block_tables[t] (a pointer to that sequence's block table, which must cover row positions[t]).
// K and V rows are widened to f32 before use; softmax and accumulation in f32.
struct PagedAttentionArgs {
  const core::Tensor* q = nullptr;  // f32 [n_tok, n_head, head_dim]
  const PagedKvLayer* layer = nullptr;
  std::span<const int32_t* const> block_tables;  // [n_tok]
  std::span<const int32_t> positions;            // [n_tok]
  float scale = 0;
  core::Tensor* out = nullptr;  // f32 [n_tok, n_head, head_dim], must not alias q
};

// Determinism: each (t, h) is computed alone, in the same order of operations as
// kernels::Attention, so with f32 storage the result is bit-identical to Attention over the same
// rows stored contiguously, and it never depends on the batch, the block placement or the pool
// size. REQUIRES (checked): positions[t] >= 0; block_tables[t][0 .. positions[t] / block_size] in
// [0, n_blocks) (the table's length itself cannot be checked); n_head a multiple of n_head_kv.
// CPU backends only.
void PagedAttention(const Context& ctx, const PagedAttentionArgs& args);

// Copies the first n_rows rows of block src into block dst (both of the layer's K and V), e.g. when
// a sequence forks (n > 1) and the siblings need their own copy of a partly filled block.
// REQUIRES (checked): src, dst in [0, n_blocks), 0 <= n_rows <= block_size.
struct CopyPagedKvRowsArgs {
  const PagedKvLayer* layer = nullptr;
  int64_t src = 0;
  int64_t dst = 0;
  int64_t n_rows = 0;
};
void CopyPagedKvRows(const Context& ctx, const CopyPagedKvRowsArgs& args);

}  // namespace arle::kernels
