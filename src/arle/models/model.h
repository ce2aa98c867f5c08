// Model: a decoder-only transformer (Qwen3 and Llama, one forward with switches from
// io::ModelConfig) running on the CPU kernels, with weights used in place from the mapped files.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/status.h"
#include "arle/core/tensor.h"
#include "arle/core/thread_pool.h"
#include "arle/io/hf_config.h"
#include "arle/kernels/context.h"
#include "arle/models/kv_cache.h"
#include "arle/models/paged_kv.h"
#include "arle/models/rope_freqs.h"
#include "arle/models/tensor_dump.h"
#include "arle/models/weights.h"

namespace arle::models {

struct LoadOptions {
  int n_threads = 0;  // 0 = one per physical core
  // The kernel backend; unset: what ARLE_KERNELS names (cpu when unset). kRef runs the scalar
  // reference kernels (slow; for debugging). kCuda is refused: the forward has no CUDA path yet.
  std::optional<kernels::Backend> backend;
  // When non-empty (or when the environment variable ARLE_DUMP_DIR is set), every Forward writes
  // its named activations there (see tensor_dump.h); each Forward overwrites the previous one's.
  std::string dump_dir;
};

class Model {
 public:
  // `path`: a Hugging Face directory (config.json + model.safetensors or a sharded index) or a
  // .gguf file. Errors name the file and the problem (missing tensor, wrong shape, dtype).
  static core::StatusOr<std::unique_ptr<Model>> Load(const std::string& path,
                                                     const LoadOptions& options = {});
  // Builds a model from a config and named tensors (Hugging Face names) kept alive by `owner`
  // (used by tests and the built-in model). Tensors are used in place, never copied.
  static core::StatusOr<std::unique_ptr<Model>> FromTensors(
      const io::ModelConfig& config,
      std::function<core::StatusOr<core::Tensor>(const std::string& hf_name)> get,
      std::shared_ptr<void> owner, const LoadOptions& options = {});

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model();

  const io::ModelConfig& config() const { return config_; }
  // The bound weights (views into the loaded file or buffers).
  const ModelWeights& weights() const { return weights_; }
  core::ThreadPool& pool() { return *pool_; }
  // Where the forward's kernels run (the backend and this model's pool).
  const kernels::Context& context() const { return *ctx_; }
  kernels::Backend backend() const { return ctx_->backend(); }

  // Creates an empty single-sequence contiguous KV cache with room for max_tokens (memory is
  // allocated as tokens arrive). REQUIRES: max_tokens > 0.
  std::unique_ptr<KvCache> NewKvCache(int64_t max_tokens) const;

  // Runs `tokens` at positions cache.n_tokens() .. +n as one batch, appends their K/V to the
  // cache, and writes f32 logits [n_tokens, n_vocab] for every token when all_logits, else only
  // for the last token into logits[1, n_vocab] (`logits` is resized).
  // Errors (nothing is appended then): InvalidArgument for an empty batch or a token id outside
  // [0, n_vocab); OutOfRange when the cache would overflow; ResourceExhausted without memory.
  // Determinism: the logits of a token are bit-identical whether it runs alone or in a batch, and
  // whatever the pool size. Thread safety: one Forward at a time per Model.
  core::Status Forward(std::span<const int32_t> tokens, KvCache& cache, std::vector<float>* logits,
                       bool all_logits = false);

  // Creates paged KV storage for this model (see paged_kv.h for the errors).
  core::StatusOr<std::unique_ptr<PagedKvStorage>> NewPagedKv(int64_t n_blocks, int64_t block_size,
                                                             core::DType dtype) const;

  // One step of continuous batching: a flat batch of tokens from several sequences, each with its
  // own positions and block table (no padding). Writes every token's K/V into its sequence's
  // blocks, then attends over the sequence's rows through the block table. Logits of the last
  // token of every sequence with want_logits are written in order into logits [n_want, n_vocab].
  // Errors (nothing is written then): InvalidArgument for an empty batch, a token id outside the
  // vocabulary, sequences that do not tile `tokens` in order, or a block table too short.
  // Determinism: a sequence's logits are bit-identical whatever the other sequences of the step,
  // the chunking of its prompt, the blocks it was given or the pool size; with f32 KV they are
  // also bit-identical to Forward's.
  core::Status ForwardPaged(std::span<const int32_t> tokens, std::span<const PagedSequence> sequences,
                            PagedKvStorage& kv, std::vector<float>* logits);

 private:
  Model() = default;
  core::Status EnsureWorkspace(int64_t n_tokens);
  core::Status CheckTokens(std::span<const int32_t> tokens) const;
  // Called once per layer with the roped q [n, n_head, hd], k and v [n, n_head_kv, hd]; stores
  // k/v in the cache and writes the attention output att [n, n_head, hd].
  using AttendFn = std::function<void(int64_t layer, const core::Tensor& q3, const core::Tensor& k3,
                                      const core::Tensor& v3, core::Tensor& att3)>;
  // Embeds `tokens` at positions_[0..n), runs every layer and leaves the final hidden states in
  // the workspace; then writes the logits of the rows `logit_rows` (ascending) to `logits`.
  core::Status RunForward(std::span<const int32_t> tokens, int64_t dump_n_past, const AttendFn& attend,
                          std::span<const int64_t> logit_rows, std::vector<float>* logits);

  io::ModelConfig config_;
  ModelWeights weights_;
  std::shared_ptr<void> owner_;          // keeps the mapped files / tensor storage alive
  std::unique_ptr<core::ThreadPool> pool_;
  std::unique_ptr<kernels::Context> ctx_;  // on pool_
  RopeFrequencies rope_;
  float attn_scale_ = 1.0f;
  TensorDump dump_{""};
  int64_t n_forward_ = 0;

  // Workspace for up to ws_tokens_ tokens (grown, never shrunk).
  int64_t ws_tokens_ = 0;
  core::Buffer ws_;
  std::vector<int32_t> positions_;
  std::vector<int64_t> logit_rows_;
  std::vector<int64_t> slots_;                 // paged: per token, block * block_size + offset
  std::vector<const int32_t*> block_tables_;   // paged: per token, its sequence's block table
};

}  // namespace arle::models
