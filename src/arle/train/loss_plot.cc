// Metrics JSONL parsing and the loss-curve SVG (see loss_plot.h). The SVG is plain text built
// here: a handful of elements, no dependency on a plotting library.
#include "arle/train/loss_plot.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>

#include "arle/core/check.h"
#include "arle/train/jsonl.h"

namespace arle::train {
namespace {

using Json = nlohmann::json;

// Python's json.dumps writes NaN and Infinity, which JSON (and nlohmann) reject: read them as
// null, which is what a non-finite loss becomes anyway.
std::string NullNonFinite(const std::string& line) {
  static const std::regex kNonFinite(R"(:\s*-?(NaN|Infinity)\s*([,}]))");
  return std::regex_replace(line, kNonFinite, ":null$2");
}

// Reads `key` of a metrics line into `out` (last line wins); a non-finite value is a warning.
core::Status ReadLoss(const Json& j, const std::string& key, int64_t step, const std::string& where,
                      std::map<int64_t, double>* out, std::vector<std::string>* warnings) {
  if (!j.contains(key)) return core::OkStatus();
  const Json& v = j[key];
  if (v.is_null() || (v.is_number() && !std::isfinite(v.get<double>()))) {
    warnings->push_back(where + ": " + key + " is not finite; skipped");
    out->erase(step);  // a resumed run's later value replaces an earlier one, even a bad one
    return core::OkStatus();
  }
  if (!v.is_number()) {
    return core::InvalidArgumentError(where + ": \"" + key + "\" must be a number, got " +
                                      v.dump());
  }
  (*out)[step] = v.get<double>();
  return core::OkStatus();
}

std::vector<LossPoint> Points(const std::map<int64_t, double>& m) {
  std::vector<LossPoint> out;
  for (const auto& [step, loss] : m) out.push_back({step, loss});
  return out;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A tick label with as many decimals as the tick spacing needs ("0.25", "3", "1500").
std::string TickLabel(double v, double spacing) {
  const int decimals = std::clamp(-static_cast<int>(std::floor(std::log10(spacing) + 1e-9)), 0, 9);
  if (std::fabs(v) < spacing * 1e-6) v = 0;  // no "-0.0"
  return fmt::format("{:.{}f}", v, decimals);
}

// [lo, hi] widened when empty (one point, or a flat curve) so ticks have room.
void Widen(double* lo, double* hi, double pad_fraction, double min_pad) {
  const double pad = std::max((*hi - *lo) * pad_fraction, *hi == *lo ? min_pad : 0.0);
  *lo -= pad;
  *hi += pad;
}

}  // namespace

core::StatusOr<LossCurves> ParseMetricsJsonl(std::string_view text, const std::string& source,
                                             const MetricKeys& keys) {
  std::map<int64_t, double> train, eval;
  LossCurves curves;
  for (const JsonlLine& line : SplitJsonlLines(text)) {
    const std::string where = source + ":" + std::to_string(line.number);
    Json j = Json::parse(line.text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) j = Json::parse(NullNonFinite(line.text), nullptr, false);
    if (!j.is_object()) {
      return core::InvalidArgumentError(where + ": not a JSON object",
                                        "give the file --metrics-jsonl wrote");
    }
    if (!j.contains(keys.train) && !j.contains(keys.eval)) continue;
    if (!j.contains("step") || !j["step"].is_number_integer() || j["step"].get<int64_t>() < 0) {
      return core::InvalidArgumentError(where + ": \"step\" must be an integer >= 0");
    }
    const int64_t step = j["step"].get<int64_t>();
    ARLE_RETURN_IF_ERROR(ReadLoss(j, keys.train, step, where, &train, &curves.warnings));
    ARLE_RETURN_IF_ERROR(ReadLoss(j, keys.eval, step, where, &eval, &curves.warnings));
  }
  if (train.empty() && eval.empty()) {
    return core::InvalidArgumentError(
        source + ": no finite " + keys.train + " or " + keys.eval + " values",
        "train with --metrics-jsonl FILE and plot that file");
  }
  curves.train = Points(train);
  curves.eval = Points(eval);
  return curves;
}

std::vector<double> NiceTicks(double lo, double hi, int target, bool integer) {
  ARLE_CHECK(lo < hi && std::isfinite(lo) && std::isfinite(hi) && target >= 1);
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * magnitude;
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  if (integer) step = std::max(step, 1.0);
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double k = first; k <= last; k += 1) ticks.push_back(k * step);
  return ticks;
}

std::string LossPlotSvg(const LossCurves& curves, const PlotOptions& options) {
  ARLE_CHECK(!curves.train.empty() || !curves.eval.empty());
  const double width = options.width, height = options.height;
  const double left = 72, right = 24, top = 44, bottom = 56;  // room for labels and the title
  const double plot_w = width - left - right, plot_h = height - top - bottom;

  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto* points : {&curves.train, &curves.eval}) {
    for (const LossPoint& p : *points) {
      ARLE_CHECK(std::isfinite(p.loss));
      x_lo = std::min(x_lo, static_cast<double>(p.step));
      x_hi = std::max(x_hi, static_cast<double>(p.step));
      y_lo = std::min(y_lo, p.loss);
      y_hi = std::max(y_hi, p.loss);
    }
  }
  Widen(&x_lo, &x_hi, 0.0, 1.0);
  Widen(&y_lo, &y_hi, 0.04, std::max(std::fabs(y_lo) * 0.1, 0.5));
  const std::vector<double> xt = NiceTicks(x_lo, x_hi, 8, /*integer=*/true);
  const std::vector<double> yt = NiceTicks(y_lo, y_hi, 6, /*integer=*/false);
  x_lo = xt.front();
  x_hi = xt.back();
  y_lo = yt.front();
  y_hi = yt.back();
  auto px = [&](double step) { return left + (step - x_lo) / (x_hi - x_lo) * plot_w; };
  auto py = [&](double loss) { return top + (y_hi - loss) / (y_hi - y_lo) * plot_h; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      options.width, options.height);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"26\" text-anchor=\"middle\" font-size=\"16\" "
                     "font-weight=\"bold\">{}</text>\n",
                     left + plot_w / 2, XmlEscape(options.title));
  // Grid and tick labels.
  svg += "<g class=\"x-ticks\" stroke=\"#e3e3e3\">\n";
  for (double t : xt) {
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\" stroke=\"none\" "
                       "fill=\"#333\">{4}</text>\n",
                       px(t), top, top + plot_h, top + plot_h + 18, TickLabel(t, xt[1] - xt[0]));
  }
  svg += "</g>\n<g class=\"y-ticks\" stroke=\"#e3e3e3\">\n";
  for (double t : yt) {
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\"/>"
                       "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\" stroke=\"none\" "
                       "fill=\"#333\">{5}</text>\n",
                       left, py(t), left + plot_w, left - 8, py(t) + 4,
                       TickLabel(t, yt[1] - yt[0]));
  }
  svg += "</g>\n";
  svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
                     "fill=\"none\" stroke=\"#555\"/>\n",
                     left, top, plot_w, plot_h);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">step</text>\n",
                     left + plot_w / 2, height - 14);
  svg += fmt::format(
      "<text transform=\"translate(18 {:.1f}) rotate(-90)\" "
      "text-anchor=\"middle\">{}</text>\n",
      top + plot_h / 2, XmlEscape(options.y_label));

  // The curves.
  auto polyline = [&](const std::vector<LossPoint>& points, const char* cls, const char* style) {
    std::string s = fmt::format("<polyline class=\"{}\" fill=\"none\" {} points=\"", cls, style);
    for (size_t i = 0; i < points.size(); ++i) {
      s += fmt::format("{}{:.1f},{:.1f}", i ? " " : "", px(static_cast<double>(points[i].step)),
                       py(points[i].loss));
    }
    return s + "\"/>\n";
  };
  const char* kTrain = "stroke=\"#1f77b4\" stroke-width=\"1.5\" stroke-linejoin=\"round\"";
  const char* kEval = "stroke=\"#d62728\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"";
  if (!curves.train.empty()) {
    svg += polyline(curves.train, "train", kTrain);
    if (curves.train.size() == 1) {
      svg += fmt::format("<circle class=\"train-marker\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" "
                         "fill=\"#1f77b4\"/>\n",
                         px(static_cast<double>(curves.train[0].step)), py(curves.train[0].loss));
    }
  }
  if (!curves.eval.empty()) {
    svg += polyline(curves.eval, "eval", kEval);
    for (const LossPoint& p : curves.eval) {
      svg += fmt::format("<circle class=\"eval-marker\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" "
                         "fill=\"white\" stroke=\"#d62728\" stroke-width=\"1.5\"/>\n",
                         px(static_cast<double>(p.step)), py(p.loss));
    }
  }

  // The legend, top right inside the plot.
  // About 7 pixels per character of the longer label, after the 40 of the line sample.
  const size_t label_chars = std::max(options.train_label.size(), options.eval_label.size());
  const double legend_w = std::max(110.0, 48.0 + 7.0 * static_cast<double>(label_chars));
  const double lx = left + plot_w - legend_w - 10, ly = top + 10;
  const int rows = (curves.train.empty() ? 0 : 1) + (curves.eval.empty() ? 0 : 1);
  svg += fmt::format(
      "<g class=\"legend\"><rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.0f}\" "
      "height=\"{}\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#bbb\"/>\n",
      lx, ly, legend_w, 8 + 20 * rows);
  double row_y = ly + 18;
  if (!curves.train.empty()) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" {3}/>"
        "<text x=\"{4:.1f}\" y=\"{5:.1f}\">{6}</text>\n",
        lx + 8, row_y - 4, lx + 32, kTrain, lx + 40, row_y, XmlEscape(options.train_label));
    row_y += 20;
  }
  if (!curves.eval.empty()) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" {3}/>"
        "<circle cx=\"{4:.1f}\" cy=\"{1:.1f}\" r=\"4\" fill=\"white\" "
        "stroke=\"#d62728\" stroke-width=\"1.5\"/>"
        "<text x=\"{5:.1f}\" y=\"{6:.1f}\">{7}</text>\n",
        lx + 8, row_y - 4, lx + 32, kEval, lx + 20, lx + 40, row_y, XmlEscape(options.eval_label));
  }
  svg += "</g>\n</svg>\n";
  return svg;
}

}  // namespace arle::train
