// Learning-rate schedules as pure functions of the update index, with the conventions of
// torch.optim.lr_scheduler.LambdaLR driven by Hugging Face transformers' schedule lambdas.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "arle/core/status.h"

namespace arle::train {

enum class ScheduleKind {
  kConstant,      // lr at every step
  kLinearWarmup,  // transformers' get_constant_schedule_with_warmup
  kCosine,        // transformers' get_cosine_with_min_lr_schedule_with_warmup (num_cycles 0.5)
};

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::kConstant;
  double lr = 3e-4;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // number of updates; used by kCosine
  double min_lr = 0.0;      // kCosine's floor (transformers' min_lr_rate = min_lr / lr)
};

// Step indices: `step` is the 0-based index of the optimizer update (step 0 = the first update),
// i.e. LambdaLR's last_epoch when optimizer.step() runs with scheduler.step() called after it.
//   warmup (step < warmup_steps, linear-warmup and cosine): lr * step / warmup_steps, so the
//     first update gets lr 0 and step warmup_steps - 1 gets lr * (warmup_steps - 1) / warmup_steps
//     (transformers' convention; warmup_steps 0 means no warmup);
//   constant / after warmup of linear-warmup: lr;
//   cosine after warmup: progress = (step - warmup) / max(1, total - warmup),
//     lr_t = min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi * progress)), clamped to progress <= 1:
//     step warmup gets lr, and min_lr is reached at step == total_steps, one past the last update
//     (so the last update, step total_steps - 1, is slightly above min_lr, exactly as
//     transformers). Computed in double.
// REQUIRES: options validated by ValidateSchedule; step >= 0.
double LearningRate(const ScheduleOptions& options, int64_t step);

// InvalidArgument for lr <= 0 or non-finite, negative warmup, min_lr outside [0, lr], cosine
// without total_steps > warmup_steps.
core::Status ValidateSchedule(const ScheduleOptions& options);

// "constant", "linear-warmup", "cosine" (the --lr-schedule flag values).
core::StatusOr<ScheduleKind> ParseScheduleKind(std::string_view name);
std::string_view ScheduleKindName(ScheduleKind kind);

}  // namespace arle::train
