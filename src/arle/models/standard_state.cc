// StandardState allocation and copies; StateSpec's sums.
#include "arle/models/standard_state.h"

#include <string>

#include "arle/core/check.h"
#include "arle/kernels/elementwise.h"

namespace arle::models {

bool StateSpec::has_attention() const {
  for (const LayerStateSpec& l : layers) {
    if (l.kind == LayerStateKind::kAttention) return true;
  }
  return false;
}

bool StateSpec::has_recurrent() const {
  for (const LayerStateSpec& l : layers) {
    if (l.kind == LayerStateKind::kRecurrent) return true;
  }
  return false;
}

int64_t StateSpec::KvBytesPerBlock(int64_t block_size, core::DType kv_dtype) const {
  int64_t bytes = 0;
  for (const LayerStateSpec& l : layers) {
    if (l.kind == LayerStateKind::kAttention) {
      bytes += 2 * block_size * l.n_head_kv * l.head_dim * core::ElementSize(kv_dtype);
    }
  }
  return bytes;
}

int64_t StateSpec::RecurrentBytesPerSlot() const {
  int64_t bytes = 0;
  for (const LayerStateSpec& l : layers) {
    if (l.kind == LayerStateKind::kRecurrent) bytes += l.state_floats * 4;
  }
  return bytes;
}

core::StatusOr<std::unique_ptr<StandardState>> StandardState::Create(
    const StateSpec& spec, const StateSizes& sizes, const kernels::Context& ctx) {
  const core::DType dtype = sizes.kv_dtype;
  if (dtype != core::DType::kF32 && dtype != core::DType::kBF16 && dtype != core::DType::kF16) {
    return core::InvalidArgumentError("KV cache dtype must be f32, bf16 or f16, got " +
                                      std::string(core::DTypeName(dtype)));
  }
  if (spec.has_attention() && (sizes.n_blocks <= 0 || sizes.block_size <= 0)) {
    return core::InvalidArgumentError("paged KV cache sizes must be positive");
  }
  if (spec.has_recurrent() && sizes.n_slots <= 0) {
    return core::InvalidArgumentError("a model with recurrent layers needs state slots");
  }
  std::unique_ptr<StandardState> state(new StandardState(spec, sizes, ctx));
  const auto no_memory = [&](int64_t bytes) {
    return core::ResourceExhaustedError(
        "cannot allocate the model state (" + std::to_string(sizes.n_blocks) + " KV blocks, " +
            std::to_string(sizes.n_slots) + " recurrent slots; " + std::to_string(bytes >> 20) +
            " MiB more)",
        "lower --kv-cache-mb");
  };
  for (const LayerStateSpec& l : spec.layers) {
    kernels::PagedKvLayer kv;
    core::Tensor slots;
    if (l.kind == LayerStateKind::kAttention) {
      if (l.n_head_kv <= 0 || l.head_dim <= 0) {
        return core::InvalidArgumentError("attention layer state needs n_head_kv and head_dim");
      }
      const int64_t side =
          sizes.n_blocks * sizes.block_size * l.n_head_kv * l.head_dim * core::ElementSize(dtype);
      for (void** p : {&kv.k, &kv.v}) {
        auto buffer = core::Buffer::TryAllocate(static_cast<size_t>(side));
        if (!buffer.ok()) return no_memory(side);
        *p = buffer->data();
        state->buffers_.push_back(std::move(*buffer));
      }
      kv.dtype = dtype;
      kv.n_blocks = sizes.n_blocks;
      kv.block_size = sizes.block_size;
      kv.n_head_kv = l.n_head_kv;
      kv.head_dim = l.head_dim;
    } else {
      if (l.state_floats <= 0) return core::InvalidArgumentError("recurrent layer state is empty");
      const int64_t bytes = int64_t{sizes.n_slots} * l.state_floats * 4;
      auto buffer = core::Buffer::TryAllocate(static_cast<size_t>(bytes));
      if (!buffer.ok()) return no_memory(bytes);
      slots = buffer->AsTensor(core::DType::kF32, {sizes.n_slots, l.state_floats});
      state->buffers_.push_back(std::move(*buffer));
    }
    state->kv_.push_back(kv);
    state->slots_.push_back(slots);
  }
  return state;
}

const kernels::PagedKvLayer& StandardState::kv_layer(int64_t l) const {
  ARLE_CHECK(spec_.layers[l].kind == LayerStateKind::kAttention) << "layer " << l;
  return kv_[l];
}

core::Tensor StandardState::slots(int64_t l) const {
  ARLE_CHECK(spec_.layers[l].kind == LayerStateKind::kRecurrent) << "layer " << l;
  return slots_[l];
}

void StandardState::CopyBlockRows(int32_t src, int32_t dst, int64_t n_rows) {
  for (size_t l = 0; l < spec_.layers.size(); ++l) {
    if (spec_.layers[l].kind != LayerStateKind::kAttention) continue;
    kernels::CopyPagedKvRows(ctx_, {.layer = &kv_[l], .src = src, .dst = dst, .n_rows = n_rows});
  }
}

void StandardState::CopySlot(int32_t src, int32_t dst) {
  ARLE_CHECK(src >= 0 && src < sizes_.n_slots && dst >= 0 && dst < sizes_.n_slots)
      << "CopySlot " << src << " -> " << dst << " of " << sizes_.n_slots;
  if (src == dst) return;
  for (size_t l = 0; l < spec_.layers.size(); ++l) {
    if (spec_.layers[l].kind != LayerStateKind::kRecurrent) continue;
    const core::Tensor from = slots_[l].Slice(src, src + 1);
    core::Tensor to = slots_[l].Slice(dst, dst + 1);
    kernels::Copy(ctx_, {.src = &from, .dst = &to});
  }
}

}  // namespace arle::models
