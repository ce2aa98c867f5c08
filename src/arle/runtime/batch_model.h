// BatchModel: what the engine needs from a model — one forward over a flat batch of tokens from many
// sequences, reading and writing KV through per-sequence block tables. The real implementation wraps
// models::Model with its paged KV storage (ModelBatchAdapter); tests use fakes to check the scheduler
// without a transformer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "arle/core/dtype.h"
#include "arle/core/status.h"
#include "arle/models/model.h"
#include "arle/models/paged_kv.h"


namespace arle::runtime {

// One sequence's slice of a step (tokens, positions, block table, whether its logits are needed).
using BatchSequence = models::PagedSequence;

class BatchModel {
 public:
  virtual ~BatchModel() = default;
  virtual int32_t n_vocab() const = 0;
  // Context length the model was trained for (0 = unknown).
  virtual int64_t n_ctx_train() const = 0;
  // Bytes of KV storage per block (all layers, K and V) in the given dtype.
  virtual int64_t kv_bytes_per_block(core::DType kv_dtype) const = 0;
  // Allocates storage for n_blocks blocks (called once, before any Forward).
  virtual core::Status AllocateKv(int32_t n_blocks, core::DType kv_dtype) = 0;
  // Runs the step: writes each token's K/V into its slot, attends, and writes the logits of every
  // sequence with want_logits, in order, into logits ([n_want, n_vocab], resized).
  // Determinism: the logits of a sequence depend only on its own tokens and cached rows.
  virtual core::Status Forward(std::span<const int32_t> tokens,
                               std::span<const BatchSequence> sequences,
                               std::vector<float>* logits) = 0;
  // Copies the first n_rows rows of block src to block dst (every layer).
  virtual void CopyBlockRows(int32_t src, int32_t dst, int64_t n_rows) = 0;
};

// Wraps a loaded model (which must outlive the adapter).
std::unique_ptr<BatchModel> MakeModelBatchAdapter(models::Model& model);

}  // namespace arle::runtime
