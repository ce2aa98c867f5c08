// `arle train plot`'s library: metrics JSONL parsing (last line per step wins, non-finite losses
// skipped with a warning, errors naming the line), nice ticks, and the SVG's curves.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "arle/train/loss_plot.h"

namespace arle::train {
namespace {

// The "x,y" pairs of the polyline with class `cls`.
std::vector<std::pair<double, double>> PolylinePoints(const std::string& svg,
                                                      const std::string& cls) {
  std::smatch m;
  const std::regex line("<polyline class=\"" + cls + "\"[^>]* points=\"([^\"]*)\"");
  if (!std::regex_search(svg, m, line)) return {};
  std::vector<std::pair<double, double>> out;
  const std::string points = m[1];
  const std::regex pair(R"(([-0-9.]+),([-0-9.]+))");
  for (auto it = std::sregex_iterator(points.begin(), points.end(), pair);
       it != std::sregex_iterator(); ++it) {
    out.push_back({std::stod((*it)[1]), std::stod((*it)[2])});
  }
  return out;
}

int Count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(LossPlot, ParsesStepsAndEvaluationsLastLineWins) {
  const std::string text =
      "{\"step\": 1, \"loss\": 5.0, \"lr\": 0.001, \"grad_norm\": 1.0}\n"
      "{\"step\": 2, \"loss\": 4.0}\n"
      "\n"
      "{\"step\": 2, \"eval_loss\": 4.5, \"eval_ppl\": 90.0, \"eval_tokens\": 64}\n"
      "{\"step\": 3, \"loss\": 3.5}\n"
      "{\"step\": 2, \"loss\": 3.9}\n"   // a resumed run logs step 2 again
      "{\"step\": 3, \"loss\": 3.4}\n"
      "{\"step\": 4, \"loss\": null}\n"  // nlohmann writes NaN as null
      "{\"step\": 5, \"loss\": NaN}\n"   // Python writes NaN
      "{\"step\": 6, \"note\": \"other metric\"}\n";
  auto c = ParseMetricsJsonl(text, "m.jsonl");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->train.size(), 3u);
  EXPECT_EQ(c->train[0].step, 1);
  EXPECT_EQ(c->train[1].step, 2);
  EXPECT_DOUBLE_EQ(c->train[1].loss, 3.9);
  EXPECT_DOUBLE_EQ(c->train[2].loss, 3.4);
  ASSERT_EQ(c->eval.size(), 1u);
  EXPECT_DOUBLE_EQ(c->eval[0].loss, 4.5);
  ASSERT_EQ(c->warnings.size(), 2u);
  EXPECT_NE(c->warnings[0].find("m.jsonl:8"), std::string::npos) << c->warnings[0];
  EXPECT_NE(c->warnings[1].find("m.jsonl:9"), std::string::npos) << c->warnings[1];
}

// An RL run's metrics: the reward per step and the held-out accuracy per evaluation.
TEST(LossPlot, OtherMetricsByKey) {
  const std::string text =
      "{\"step\": 0, \"eval_accuracy\": 0.1, \"eval_n\": 200}\n"
      "{\"step\": 1, \"reward_mean\": 0.05, \"loss\": 0.0}\n"
      "{\"step\": 2, \"reward_mean\": 0.15, \"loss\": 0.0}\n"
      "{\"step\": 2, \"eval_accuracy\": 0.3, \"eval_n\": 200}\n";
  auto c = ParseMetricsJsonl(text, "grpo.jsonl", {.train = "reward_mean", .eval = "eval_accuracy"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->train.size(), 2u);
  EXPECT_DOUBLE_EQ(c->train[1].loss, 0.15);
  ASSERT_EQ(c->eval.size(), 2u);
  EXPECT_EQ(c->eval[0].step, 0);
  EXPECT_DOUBLE_EQ(c->eval[1].loss, 0.3);
  PlotOptions o;
  o.y_label = "reward_mean / eval_accuracy";
  o.train_label = "reward_mean";
  o.eval_label = "eval_accuracy";
  const std::string svg = LossPlotSvg(*c, o);
  EXPECT_NE(svg.find(">reward_mean / eval_accuracy<"), std::string::npos);
  EXPECT_NE(svg.find(">eval_accuracy</text>"), std::string::npos);
  EXPECT_EQ(svg.find("loss (nats)"), std::string::npos);
  EXPECT_EQ(svg.find(">train loss<"), std::string::npos);
  auto none = ParseMetricsJsonl(text, "grpo.jsonl", {.train = "kl", .eval = "eval_loss"});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no finite kl or eval_loss"), std::string::npos)
      << none.status().message();
}

TEST(LossPlot, ErrorsNameTheLine) {
  auto bad = [](const std::string& text) {
    auto c = ParseMetricsJsonl(text, "m.jsonl");
    EXPECT_FALSE(c.ok());
    return c.ok() ? std::string() : c.status().ToString();
  };
  EXPECT_NE(bad("{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": \n").find("m.jsonl:2"),
            std::string::npos);
  EXPECT_NE(bad("[1, 2]\n").find("m.jsonl:1: not a JSON object"), std::string::npos);
  EXPECT_NE(bad("{\"loss\": 2}\n").find("m.jsonl:1: \"step\""), std::string::npos);
  EXPECT_NE(bad("{\"step\": 1.5, \"loss\": 2}\n").find("\"step\""), std::string::npos);
  EXPECT_NE(bad("{\"step\": 1, \"loss\": \"low\"}\n").find("must be a number"),
            std::string::npos);
  EXPECT_NE(bad("").find("no finite loss"), std::string::npos);
  EXPECT_NE(bad("{\"step\": 1, \"loss\": null}\n").find("no finite loss"), std::string::npos);
}

TEST(LossPlot, NiceTicks) {
  const std::vector<double> t = NiceTicks(0.13, 0.97, 5, false);
  ASSERT_GE(t.size(), 2u);
  const double step = t[1] - t[0];
  EXPECT_NEAR(step, 0.2, 1e-12);
  EXPECT_LE(t.front(), 0.13);
  EXPECT_GE(t.back(), 0.97);
  for (double v : t) EXPECT_NEAR(std::remainder(v, step), 0.0, 1e-9) << v;
  const std::vector<double> s = NiceTicks(3, 97, 8, true);
  EXPECT_EQ(s.front(), 0);
  EXPECT_EQ(s.back(), 100);
  EXPECT_EQ(s[1] - s[0], 20);
  const std::vector<double> one = NiceTicks(4.5, 5.5, 8, true);  // integer steps of at least 1
  EXPECT_EQ(one[1] - one[0], 1);
  EXPECT_EQ(one.front(), 4);
  EXPECT_EQ(one.back(), 6);
}

TEST(LossPlot, SvgCurvesFollowTheData) {
  LossCurves c;
  for (int s = 1; s <= 50; ++s) c.train.push_back({s, 10.0 / s + 1.0});
  c.eval = {{10, 2.5}, {20, 1.8}, {50, 1.4}};
  PlotOptions o;
  o.title = "run <1> & co";
  const std::string svg = LossPlotSvg(c, o);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("run &lt;1&gt; &amp; co"), std::string::npos);
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
  EXPECT_NE(svg.find(">loss (nats)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">train loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">eval loss</text>"), std::string::npos);
  const auto train = PolylinePoints(svg, "train");
  ASSERT_EQ(train.size(), 50u);
  for (size_t i = 1; i < train.size(); ++i) {
    EXPECT_GT(train[i].first, train[i - 1].first);    // step increases to the right
    EXPECT_GT(train[i].second, train[i - 1].second);  // lower loss is drawn lower (SVG y down)
  }
  for (const auto& [x, y] : train) {
    EXPECT_GE(x, 0);
    EXPECT_LE(x, o.width);
    EXPECT_GE(y, 0);
    EXPECT_LE(y, o.height);
  }
  const auto eval = PolylinePoints(svg, "eval");
  ASSERT_EQ(eval.size(), 3u);
  EXPECT_EQ(Count(svg, "class=\"eval-marker\""), 3);
  // Step 10 sits on the train curve's x for step 10, and the eval loss 2.5 below train's 2.0.
  EXPECT_NEAR(eval[0].first, train[9].first, 0.11);
  EXPECT_LT(eval[0].second, train[9].second);
  EXPECT_NEAR(eval[2].first, train[49].first, 0.11);
}

TEST(LossPlot, OnePointAndFlatCurves) {
  LossCurves one;
  one.train = {{7, 3.0}};
  const std::string svg = LossPlotSvg(one, PlotOptions{});
  EXPECT_EQ(PolylinePoints(svg, "train").size(), 1u);
  EXPECT_EQ(Count(svg, "class=\"train-marker\""), 1);
  EXPECT_EQ(svg.find("class=\"eval\""), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  LossCurves flat;
  flat.eval = {{1, 2.0}, {2, 2.0}};
  const std::string svg2 = LossPlotSvg(flat, PlotOptions{});
  EXPECT_EQ(PolylinePoints(svg2, "eval").size(), 2u);
  EXPECT_EQ(svg2.find("nan"), std::string::npos);
  EXPECT_EQ(svg2.find("inf"), std::string::npos);
}

}  // namespace
}  // namespace arle::train
