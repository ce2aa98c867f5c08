// Contiguous single-sequence KV cache with geometric growth.
#include "arle/models/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace arle::models {

KvCache::KvCache(int64_t n_layer, int64_t max_tokens, int64_t n_head_kv, int64_t head_dim)
    : n_layer_(n_layer), max_tokens_(max_tokens), n_head_kv_(n_head_kv), head_dim_(head_dim),
      k_(n_layer), v_(n_layer) {
  ARLE_CHECK(n_layer > 0 && max_tokens > 0 && n_head_kv > 0 && head_dim > 0)
      << n_layer << " " << max_tokens << " " << n_head_kv << " " << head_dim;
}

void KvCache::Truncate(int64_t n) {
  ARLE_CHECK(n >= 0 && n <= n_tokens_) << "Truncate(" << n << ") with " << n_tokens_ << " tokens";
  n_tokens_ = n;
}

core::Tensor KvCache::k(int64_t layer) {
  ARLE_CHECK(layer >= 0 && layer < n_layer_ && capacity_ > 0);
  return k_[layer].AsTensor(core::DType::kF32, {capacity_, n_head_kv_, head_dim_});
}

core::Tensor KvCache::v(int64_t layer) {
  ARLE_CHECK(layer >= 0 && layer < n_layer_ && capacity_ > 0);
  return v_[layer].AsTensor(core::DType::kF32, {capacity_, n_head_kv_, head_dim_});
}

core::Status KvCache::Reserve(int64_t n) {
  const int64_t need = n_tokens_ + n;
  if (n < 0 || need > max_tokens_) {
    return core::OutOfRangeError(
        "KV cache overflow: " + std::to_string(n_tokens_) + " cached + " + std::to_string(n) +
            " new tokens exceed its " + std::to_string(max_tokens_) + "-token capacity",
        "create the cache with a larger max_tokens (NewKvCache) or shorten the input");
  }
  if (need <= capacity_) return core::OkStatus();
  const int64_t new_capacity = std::min(max_tokens_, std::max({need, capacity_ * 2, int64_t{64}}));
  const size_t row_bytes = static_cast<size_t>(n_head_kv_ * head_dim_) * sizeof(float);
  for (int64_t l = 0; l < n_layer_; ++l) {
    for (std::vector<core::Buffer>* side : {&k_, &v_}) {
      auto grown = core::Buffer::TryAllocate(new_capacity * row_bytes);
      if (!grown.ok()) return grown.status().WithContext("KV cache");
      if (n_tokens_ > 0) std::memcpy(grown->data(), (*side)[l].data(), n_tokens_ * row_bytes);
      (*side)[l] = std::move(grown).value();
    }
  }
  capacity_ = new_capacity;
  return core::OkStatus();
}

void KvCache::Advance(int64_t n) {
  ARLE_CHECK(n >= 0 && n_tokens_ + n <= capacity_);
  n_tokens_ += n;
}

}  // namespace arle::models
