// KvCache: one sequence's keys and values for every layer, contiguous and in f32 (paged KV comes
// with the server). Storage grows on demand up to max_tokens, so a cache sized for the model's
// whole context costs memory only for the tokens actually cached.
#pragma once

#include <cstdint>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/status.h"
#include "arle/core/tensor.h"

namespace arle::models {

class KvCache {
 public:
  // REQUIRES: all sizes > 0.
  KvCache(int64_t n_layer, int64_t max_tokens, int64_t n_head_kv, int64_t head_dim);
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // Tokens cached so far (the position of the next token).
  int64_t n_tokens() const { return n_tokens_; }
  int64_t max_tokens() const { return max_tokens_; }
  int64_t n_layer() const { return n_layer_; }
  int64_t n_head_kv() const { return n_head_kv_; }
  int64_t head_dim() const { return head_dim_; }
  // Rows currently allocated per layer (n_tokens <= capacity <= max_tokens).
  int64_t capacity() const { return capacity_; }
  // Forgets every token (keeps the memory).
  void Clear() { n_tokens_ = 0; }
  // Keeps the first n tokens, e.g. to rewind after a rejected draft. REQUIRES: 0 <= n <= n_tokens.
  void Truncate(int64_t n);

  // Keys / values of `layer`: f32 [capacity, n_head_kv, head_dim]; rows >= n_tokens are scratch.
  core::Tensor k(int64_t layer);
  core::Tensor v(int64_t layer);

  // Used by Model::Forward: makes room for `n` more tokens (ResourceExhausted when memory is
  // short; OutOfRange past max_tokens), then marks them cached once written.
  core::Status Reserve(int64_t n);
  void Advance(int64_t n);

 private:
  int64_t n_layer_, max_tokens_, n_head_kv_, head_dim_;
  int64_t n_tokens_ = 0;
  int64_t capacity_ = 0;
  std::vector<core::Buffer> k_, v_;  // per layer, [capacity, n_head_kv, head_dim]
};

}  // namespace arle::models
