// StandardState: the ModelState of arle's own families. Every attention layer's K and V as arrays
// of fixed-size blocks (kernels::PagedKvLayer, in f32, bf16 or f16), and every recurrent layer's
// slots as one f32 array [n_slots, state_floats]. Copies go through the kernels of the model's
// context.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/status.h"
#include "arle/core/tensor.h"
#include "arle/kernels/context.h"
#include "arle/kernels/paged_attention.h"
#include "arle/models/state.h"

namespace arle::models {

class StandardState final : public ModelState {
 public:
  // Allocates the storage `spec` needs for `sizes` (memory is committed as it is written). Errors:
  // InvalidArgument for a KV dtype other than f32/bf16/f16 or non-positive sizes the spec needs;
  // ResourceExhausted when memory is short. `ctx` must outlive the state.
  static core::StatusOr<std::unique_ptr<StandardState>> Create(const StateSpec& spec,
                                                               const StateSizes& sizes,
                                                               const kernels::Context& ctx);
  StandardState(const StandardState&) = delete;
  StandardState& operator=(const StandardState&) = delete;

  const StateSpec& spec() const { return spec_; }
  const StateSizes& sizes() const { return sizes_; }
  // K/V storage of layer l. REQUIRES: l is an attention layer.
  const kernels::PagedKvLayer& kv_layer(int64_t l) const;
  // Layer l's state in every slot: f32 [n_slots, state_floats]. REQUIRES: a recurrent layer.
  core::Tensor slots(int64_t l) const;

  void CopyBlockRows(int32_t src, int32_t dst, int64_t n_rows) override;
  void CopySlot(int32_t src, int32_t dst) override;

 private:
  StandardState(const StateSpec& spec, const StateSizes& sizes, const kernels::Context& ctx)
      : spec_(spec), sizes_(sizes), ctx_(ctx) {}
  StateSpec spec_;
  StateSizes sizes_;
  const kernels::Context& ctx_;
  std::vector<core::Buffer> buffers_;            // K, V of attention layers; slots of recurrent ones
  std::vector<kernels::PagedKvLayer> kv_;        // per layer (empty for recurrent layers)
  std::vector<core::Tensor> slots_;              // per layer (empty for attention layers)
};

}  // namespace arle::models
