// `arle train plot`: the loss curves of a run's metrics JSONL (--metrics-jsonl) as one
// self-contained SVG file (no scripts, no external fonts or styles), so a run can be looked at
// without Python or a notebook.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::train {

struct LossPoint {
  int64_t step = 0;
  double loss = 0;
};

// The curves of one metrics file, each sorted by step with one point per step.
struct LossCurves {
  std::vector<LossPoint> train;  // "loss" of the per-step lines
  std::vector<LossPoint> eval;   // "eval_loss" of the evaluation lines
  std::vector<std::string> warnings;  // skipped values, "METRICS:LINE: why"
};

// Parses metrics JSONL text (RunTraining's lines: {step, loss, ...} per step and {step,
// eval_loss, ...} per evaluation). A resumed run appends steps it had already logged before its
// checkpoint: the last line for a step wins. A loss that is null, NaN or infinite (JSON has no
// NaN: nlohmann writes null, Python NaN) is skipped with a warning; lines with neither key are
// ignored (other metrics). `keys` names the two keys ("loss" and "eval_loss" above). Errors
// (InvalidArgument naming `source` and the 1-based line): a line that is not a JSON object, a
// missing or non-integer step, a loss that is not a number, and a file with no finite loss at all.
// Which keys the two curves read: the defaults are the losses; an RL run plots e.g.
// "reward_mean" and "eval_accuracy" (`arle train plot --metric/--eval-metric`).
struct MetricKeys {
  std::string train = "loss";
  std::string eval = "eval_loss";
};
core::StatusOr<LossCurves> ParseMetricsJsonl(std::string_view text, const std::string& source,
                                             const MetricKeys& keys = {});

struct PlotOptions {
  std::string title = "training loss";
  int width = 800;  // pixels
  int height = 480;
  std::string y_label = "loss (nats)";
  std::string train_label = "train loss";  // the legend's names of the two curves
  std::string eval_label = "eval loss";
};

// The SVG text of `curves`: train loss as a line, eval loss as a dashed line with a marker per
// evaluation, axes with "nice" ticks (1, 2 or 5 times a power of ten) and grid lines, the axis
// labels "step" and options.y_label, a legend and the title. A single point is drawn as a marker.
// REQUIRES: curves has at least one point, every loss finite.
std::string LossPlotSvg(const LossCurves& curves, const PlotOptions& options);

// Tick values covering [lo, hi] with about `target` intervals, each a multiple of a nice step
// (1, 2 or 5 times a power of ten; for `integer`, at least 1): the first <= lo, the last >= hi.
// REQUIRES: lo < hi, both finite, target >= 1.
std::vector<double> NiceTicks(double lo, double hi, int target, bool integer);

}  // namespace arle::train
