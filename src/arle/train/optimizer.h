// Optimizers over f32 master parameters: AdamW and SGD with momentum, each update the same f32
// arithmetic as torch.optim (1.13, single-tensor path), with state exportable by name for
// checkpoints.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "arle/core/status.h"
#include "arle/core/tensor.h"
#include "arle/core/thread_pool.h"

namespace arle::train {

// One trainable parameter: views of its f32 values and f32 gradient (same shape, contiguous, on
// the CPU). The optimizer writes through `value`; the memory belongs to the caller.
struct ParamRef {
  std::string name;    // e.g. "model.layers.0.mlp.up_proj.weight"; unique in one optimizer
  core::Tensor value;  // f32, updated in place
  core::Tensor grad;   // f32, read by Step (and scaled in place by ClipGradNorm)
};

// Weight decay applies to parameters of rank >= 2 only (matrices, embeddings); biases, norm
// weights and other 1-D parameters are never decayed (the usual two torch param groups).
inline bool DecaysWeight(const ParamRef& p) { return p.value.rank() >= 2; }

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  // Splits each parameter's elements over this pool (null: the calling thread). Elements are
  // independent, so the bits do not depend on it. Must outlive the optimizer.
  core::ThreadPool* pool = nullptr;
};

struct SgdOptions {
  double momentum = 0.0;
  double weight_decay = 0.0;  // coupled (added to the gradient), torch.optim.SGD semantics
};

// Thread safety: none; one training loop owns an optimizer.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Applies one update with learning rate `lr` to every parameter from its current grad, then
  // increments step(). Elementwise (split over AdamWOptions::pool where given), so bit-identical
  // for any thread count.
  virtual void Step(double lr) = 0;

  // Calls fn(name, tensor) for every state tensor in a fixed order (parameter order, then the
  // kind order below). Names: "<param>.exp_avg", "<param>.exp_avg_sq" (AdamW),
  // "<param>.momentum_buffer" (SGD with momentum != 0). Tensors are f32 views of the optimizer's
  // own memory with the parameter's shape: a checkpoint reader restores state by writing into
  // them (and calling set_step). Plain SGD has no state tensors.
  virtual void ForEachState(const std::function<void(const std::string&, core::Tensor)>& fn) = 0;

  // Updates applied so far (torch's per-parameter `step`, the same for all parameters here).
  int64_t step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }
  const std::vector<ParamRef>& params() const { return params_; }

 protected:
  explicit Optimizer(std::vector<ParamRef> params);
  std::vector<ParamRef> params_;
  int64_t step_ = 0;
};

// Returns an optimizer over `params`. InvalidArgument for out-of-range hyperparameters (betas
// outside [0, 1), negative eps or weight decay, momentum outside [0, 1)) and for duplicate names.
// REQUIRES (bugs): every value/grad is f32, contiguous, CPU, and the two have the same shape.
//
// AdamW, per parameter p with gradient g, at update t = step() + 1 (torch.optim.AdamW, f32
// tensors, Python-float scalars rounded to f32 where torch rounds them):
//   p = p * f32(1 - lr * wd)                         (only when DecaysWeight(p))
//   m = m * f32(b1) + f32(1 - b1) * g
//   v = v * f32(b2) + f32(1 - b2) * (g * g)
//   p = p + f32(-lr / (1 - b1^t)) * (m / (sqrt(v) / f32(sqrt(1 - b2^t)) + f32(eps)))
core::StatusOr<std::unique_ptr<Optimizer>> MakeAdamW(std::vector<ParamRef> params,
                                                     const AdamWOptions& options);

// SGD (torch.optim.SGD, dampening 0, no Nesterov):
//   d = g + f32(wd) * p                              (only when DecaysWeight(p) and wd != 0)
//   buf = d at the first update, else buf * f32(momentum) + d;   d = buf   (momentum != 0)
//   p = p + f32(-lr) * d
core::StatusOr<std::unique_ptr<Optimizer>> MakeSgd(std::vector<ParamRef> params,
                                                   const SgdOptions& options);

// Sets every gradient to zero.
void ZeroGrads(const std::vector<ParamRef>& params);

// Global L2-norm clipping (torch.nn.utils.clip_grad_norm_): total = sqrt(sum of g^2 over all
// grads), accumulated in double in parameter order then element order (deterministic); when
// max_norm > 0 and coef = max_norm / (total + 1e-6) is < 1, every grad is multiplied by f32(coef).
// max_norm 0 turns clipping off (the norm is still returned). A non-finite total is returned
// and the grads are left alone (the caller decides to skip the step). Returns the pre-clip total.
double ClipGradNorm(const std::vector<ParamRef>& params, double max_norm);

}  // namespace arle::train
