// Learning-rate schedules (see schedule.h for the step conventions).
#include "arle/train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace arle::train {

double LearningRate(const ScheduleOptions& options, int64_t step) {
  ARLE_CHECK(step >= 0) << "step " << step;
  if (options.kind == ScheduleKind::kConstant) return options.lr;
  if (step < options.warmup_steps) {
    // transformers: float(step) / float(max(1, warmup)), then multiplied by the base lr.
    return options.lr * (static_cast<double>(step) / static_cast<double>(options.warmup_steps));
  }
  if (options.kind == ScheduleKind::kLinearWarmup) return options.lr;
  const double progress =
      std::min(1.0, static_cast<double>(step - options.warmup_steps) /
                        static_cast<double>(std::max<int64_t>(1, options.total_steps -
                                                                     options.warmup_steps)));
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  // transformers' factor * (1 - min_lr_rate) + min_lr_rate, times lr.
  const double min_rate = options.min_lr / options.lr;
  return options.lr * (cosine * (1.0 - min_rate) + min_rate);
}

core::Status ValidateSchedule(const ScheduleOptions& o) {
  if (!std::isfinite(o.lr) || o.lr <= 0) {
    return core::InvalidArgumentError("learning rate must be a positive number, got " +
                                          std::to_string(o.lr),
                                      "pass e.g. --lr 3e-4");
  }
  if (o.warmup_steps < 0) {
    return core::InvalidArgumentError("warmup steps must be >= 0, got " +
                                      std::to_string(o.warmup_steps));
  }
  if (!std::isfinite(o.min_lr) || o.min_lr < 0 || o.min_lr > o.lr) {
    return core::InvalidArgumentError("min_lr must be in [0, lr], got " + std::to_string(o.min_lr));
  }
  if (o.kind == ScheduleKind::kCosine && o.total_steps <= o.warmup_steps) {
    return core::InvalidArgumentError(
        "the cosine schedule needs more total steps (" + std::to_string(o.total_steps) +
            ") than warmup steps (" + std::to_string(o.warmup_steps) + ")",
        "set --steps above --warmup-steps");
  }
  return core::OkStatus();
}

core::StatusOr<ScheduleKind> ParseScheduleKind(std::string_view name) {
  for (ScheduleKind k : {ScheduleKind::kConstant, ScheduleKind::kLinearWarmup,
                         ScheduleKind::kCosine}) {
    if (name == ScheduleKindName(k)) return k;
  }
  return core::InvalidArgumentError("unknown learning-rate schedule \"" + std::string(name) + "\"",
                                    "use constant, linear-warmup or cosine");
}

std::string_view ScheduleKindName(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kConstant: return "constant";
    case ScheduleKind::kLinearWarmup: return "linear-warmup";
    case ScheduleKind::kCosine: return "cosine";
  }
  return "?";
}

}  // namespace arle::train
