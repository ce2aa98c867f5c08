// Paged KV storage allocation.
#include "arle/models/paged_kv.h"

#include <string>

namespace arle::models {

int64_t PagedKvStorage::BytesPerBlock(int64_t n_layer, int64_t block_size, int64_t n_head_kv,
                                      int64_t head_dim, core::DType dtype) {
  return 2 * n_layer * block_size * n_head_kv * head_dim *
         core::ElementSize(dtype);
}

core::StatusOr<std::unique_ptr<PagedKvStorage>> PagedKvStorage::Create(
    int64_t n_layer, int64_t n_blocks, int64_t block_size, int64_t n_head_kv, int64_t head_dim,
    core::DType dtype) {
  if (dtype != core::DType::kF32 && dtype != core::DType::kBF16 && dtype != core::DType::kF16) {
    return core::InvalidArgumentError(
        "KV cache dtype must be f32, bf16 or f16, got " + std::string(core::DTypeName(dtype)));
  }
  if (n_layer <= 0 || n_blocks <= 0 || block_size <= 0 || n_head_kv <= 0 || head_dim <= 0) {
    return core::InvalidArgumentError("paged KV cache sizes must be positive");
  }
  std::unique_ptr<PagedKvStorage> kv(new PagedKvStorage());
  const size_t side_bytes =
      static_cast<size_t>(n_blocks * block_size * n_head_kv * head_dim * core::ElementSize(dtype));
  for (int64_t l = 0; l < n_layer; ++l) {
    kernels::PagedKvLayer layer;
    for (void** side : {&layer.k, &layer.v}) {
      auto buffer = core::Buffer::TryAllocate(side_bytes);
      if (!buffer.ok()) {
        return core::ResourceExhaustedError(
            "cannot allocate the KV cache (" + std::to_string(n_blocks) + " blocks, " +
                std::to_string(BytesPerBlock(n_layer, block_size, n_head_kv, head_dim, dtype) *
                               n_blocks >> 20) +
                " MiB)",
            "lower --kv-cache-mb");
      }
      *side = buffer->data();
      kv->buffers_.push_back(std::move(*buffer));
    }
    layer.dtype = dtype;
    layer.n_blocks = n_blocks;
    layer.block_size = block_size;
    layer.n_head_kv = n_head_kv;
    layer.head_dim = head_dim;
    kv->layers_.push_back(layer);
  }
  return kv;
}

void PagedKvStorage::CopyBlockRows(const kernels::Context& ctx, int64_t src, int64_t dst,
                                   int64_t n_rows) {
  for (const kernels::PagedKvLayer& layer : layers_) {
    kernels::CopyPagedKvRows(ctx, {.layer = &layer, .src = src, .dst = dst, .n_rows = n_rows});
  }
}

}  // namespace arle::models
