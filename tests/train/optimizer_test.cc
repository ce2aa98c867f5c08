// train/ optimizers, schedules and clipping against PyTorch goldens written by
// tests/reference/torch_optim.py (torch.optim.AdamW / SGD, LambdaLR with transformers' lambdas,
// torch.nn.utils.clip_grad_norm_).
#include "arle/train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/train/schedule.h"

namespace arle::train {
namespace {

using Json = nlohmann::json;

const Json& Goldens() {
  static const Json* j = [] {
    auto text = core::ReadFile(std::string(ARLE_TEST_DATA_DIR) + "/goldens/train/optim.json");
    ARLE_CHECK(text.ok()) << text.status().ToString();
    return new Json(Json::parse(*text));
  }();
  return *j;
}

// Parameters and gradients as owned f32 vectors with ParamRef views over them.
struct Params {
  std::vector<std::vector<float>> values, grads;
  std::vector<ParamRef> refs;

  explicit Params(const Json& shapes) {
    values.resize(shapes.size());
    grads.resize(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto shape = shapes[i].at("shape").get<std::vector<int64_t>>();
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      values[i].assign(n, 0.0f);
      grads[i].assign(n, 0.0f);
      refs.push_back({shapes[i].at("name").get<std::string>(),
                      core::Tensor(values[i].data(), core::DType::kF32, shape),
                      core::Tensor(grads[i].data(), core::DType::kF32, shape)});
    }
  }
  static void Load(const Json& list, std::vector<std::vector<float>>* out) {
    for (size_t i = 0; i < out->size(); ++i) {
      const auto v = list[i].get<std::vector<double>>();
      ASSERT_EQ(v.size(), (*out)[i].size());
      for (size_t j = 0; j < v.size(); ++j) (*out)[i][j] = static_cast<float>(v[j]);
    }
  }
};

ScheduleOptions ScheduleFrom(const Json& s) {
  ScheduleOptions o;
  auto kind = ParseScheduleKind(s.at("kind").get<std::string>());
  ARLE_CHECK(kind.ok());
  o.kind = *kind;
  o.lr = s.at("lr").get<double>();
  o.warmup_steps = s.at("warmup_steps").get<int64_t>();
  o.total_steps = s.at("total_steps").get<int64_t>();
  o.min_lr = s.at("min_lr").get<double>();
  return o;
}

// f32 tolerance for values that went through a few steps of f32 arithmetic: torch's CPU kernels
// may fuse multiply-adds where arle rounds twice, so the last bits can differ.
void ExpectNear(const std::vector<float>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t j = 0; j < got.size(); ++j) {
    EXPECT_NEAR(got[j], want[j], 2e-6 * std::abs(want[j]) + 1e-7) << what << "[" << j << "]";
  }
}

TEST(Optimizer, MatchesTorchStepByStep) {
  const Json& g = Goldens();
  ASSERT_EQ(g.at("runs").size(), 4u);
  for (const Json& run : g.at("runs")) {
    SCOPED_TRACE(run.at("name").get<std::string>());
    Params params(g.at("shapes"));
    std::vector<Json> initial;
    for (const Json& p : run.at("params")) initial.push_back(p.at("values"));
    Params::Load(Json(initial), &params.values);
    const Json& o = run.at("options");
    std::unique_ptr<Optimizer> opt;
    if (run.at("optimizer") == "adamw") {
      auto made = MakeAdamW(params.refs, {.beta1 = o.at("beta1"), .beta2 = o.at("beta2"),
                                          .eps = o.at("eps"), .weight_decay = o.at("weight_decay")});
      ASSERT_TRUE(made.ok()) << made.status().ToString();
      opt = std::move(made).value();
    } else {
      auto made = MakeSgd(params.refs, {.momentum = o.at("momentum"),
                                        .weight_decay = o.at("weight_decay")});
      ASSERT_TRUE(made.ok()) << made.status().ToString();
      opt = std::move(made).value();
    }
    const ScheduleOptions schedule = ScheduleFrom(run.at("schedule"));
    ASSERT_TRUE(ValidateSchedule(schedule).ok());
    const double max_norm = run.at("max_norm").get<double>();
    int64_t k = 0;
    for (const Json& step : run.at("steps")) {
      SCOPED_TRACE("step " + std::to_string(k));
      Params::Load(step.at("grads"), &params.grads);
      const double norm = ClipGradNorm(params.refs, max_norm);
      if (!step.at("norm").is_null()) {
        EXPECT_NEAR(norm, step.at("norm").get<double>(), 1e-6 * norm);
      }
      const double lr = LearningRate(schedule, k);
      EXPECT_NEAR(lr, step.at("lr").get<double>(), 1e-15);
      opt->Step(lr);
      EXPECT_EQ(opt->step(), k + 1);
      for (size_t i = 0; i < params.values.size(); ++i) {
        ExpectNear(params.values[i], step.at("params")[i].get<std::vector<double>>(),
                   params.refs[i].name);
      }
      ++k;
    }
    // The exported state has torch's names and values.
    std::vector<std::string> names;
    opt->ForEachState([&](const std::string& name, core::Tensor t) {
      names.push_back(name);
      ASSERT_TRUE(run.at("state").contains(name)) << name;
      std::vector<float> got(t.data_as<float>(), t.data_as<float>() + t.numel());
      ExpectNear(got, run.at("state").at(name).get<std::vector<double>>(), name);
    });
    EXPECT_EQ(names.size(), run.at("state").size());
  }
}

// A checkpoint round trip: state exported after k steps and imported into a fresh optimizer
// continues bit-identically.
TEST(Optimizer, StateExportImportResumesExactly) {
  const Json& g = Goldens();
  for (const Json& run : g.at("runs")) {
    SCOPED_TRACE(run.at("name").get<std::string>());
    const bool adamw = run.at("optimizer") == "adamw";
    auto make = [&](Params& p) {
      const Json& o = run.at("options");
      auto made = adamw ? MakeAdamW(p.refs, {.beta1 = o.at("beta1"), .beta2 = o.at("beta2"),
                                             .eps = o.at("eps"), .weight_decay = o.at("weight_decay")})
                        : MakeSgd(p.refs, {.momentum = o.at("momentum"),
                                           .weight_decay = o.at("weight_decay")});
      ARLE_CHECK(made.ok());
      return std::move(made).value();
    };
    Params a(g.at("shapes")), b(g.at("shapes"));
    std::vector<Json> initial;
    for (const Json& p : run.at("params")) initial.push_back(p.at("values"));
    Params::Load(Json(initial), &a.values);
    auto opt_a = make(a);
    const Json& steps = run.at("steps");
    const size_t half = steps.size() / 2;
    for (size_t k = 0; k < half; ++k) {
      Params::Load(steps[k].at("grads"), &a.grads);
      opt_a->Step(0.01);
    }
    b.values = a.values;
    auto opt_b = make(b);
    std::vector<std::vector<float>> saved;
    opt_a->ForEachState([&](const std::string&, core::Tensor t) {
      saved.emplace_back(t.data_as<float>(), t.data_as<float>() + t.numel());
    });
    size_t i = 0;
    opt_b->ForEachState([&](const std::string&, core::Tensor t) {
      std::copy(saved[i].begin(), saved[i].end(), t.data_as<float>());
      ++i;
    });
    opt_b->set_step(opt_a->step());
    for (size_t k = half; k < steps.size(); ++k) {
      Params::Load(steps[k].at("grads"), &a.grads);
      b.grads = a.grads;
      opt_a->Step(0.01);
      opt_b->Step(0.01);
    }
    EXPECT_EQ(a.values, b.values);
  }
}

TEST(Optimizer, WeightDecayOnlyOnMatrices) {
  std::vector<float> w = {1, 1, 1, 1}, gw(4, 0.0f), v = {1, 1}, gv(2, 0.0f);
  std::vector<ParamRef> refs = {{"w", core::Tensor(w.data(), core::DType::kF32, {2, 2}),
                                 core::Tensor(gw.data(), core::DType::kF32, {2, 2})},
                                {"v", core::Tensor(v.data(), core::DType::kF32, {2}),
                                 core::Tensor(gv.data(), core::DType::kF32, {2})}};
  auto opt = MakeAdamW(refs, {.weight_decay = 0.5});
  ASSERT_TRUE(opt.ok());
  (*opt)->Step(0.1);
  EXPECT_FLOAT_EQ(w[0], 0.95f);  // 1 * (1 - 0.1 * 0.5); zero grad moves nothing else
  EXPECT_EQ(v[0], 1.0f);
}

TEST(Optimizer, RejectsBadHyperparameters) {
  EXPECT_FALSE(MakeAdamW({}, {.beta1 = 1.0}).ok());
  EXPECT_FALSE(MakeAdamW({}, {.eps = -1}).ok());
  EXPECT_FALSE(MakeAdamW({}, {.weight_decay = -0.1}).ok());
  EXPECT_FALSE(MakeSgd({}, {.momentum = 1.5}).ok());
  std::vector<float> x(1), gx(1);
  ParamRef p{"x", core::Tensor(x.data(), core::DType::kF32, {1}),
             core::Tensor(gx.data(), core::DType::kF32, {1})};
  EXPECT_FALSE(MakeAdamW({p, p}, {}).ok());
}

TEST(Schedule, MatchesLambdaLR) {
  const Json& g = Goldens();
  ASSERT_GE(g.at("schedules").size(), 6u);
  for (const Json& table : g.at("schedules")) {
    const ScheduleOptions o = ScheduleFrom(table.at("schedule"));
    SCOPED_TRACE(table.at("schedule").dump());
    ASSERT_TRUE(ValidateSchedule(o).ok()) << ValidateSchedule(o).ToString();
    const auto lrs = table.at("lrs").get<std::vector<double>>();
    for (size_t k = 0; k < lrs.size(); ++k) {
      EXPECT_NEAR(LearningRate(o, static_cast<int64_t>(k)), lrs[k], 1e-15) << "step " << k;
    }
  }
}

TEST(Schedule, ConventionsAndValidation) {
  const ScheduleOptions cosine{.kind = ScheduleKind::kCosine, .lr = 1.0, .warmup_steps = 2,
                               .total_steps = 6, .min_lr = 0.1};
  EXPECT_EQ(LearningRate(cosine, 0), 0.0);   // the first update gets lr 0
  EXPECT_EQ(LearningRate(cosine, 1), 0.5);
  EXPECT_EQ(LearningRate(cosine, 2), 1.0);   // warmup ends at the full lr
  EXPECT_NEAR(LearningRate(cosine, 6), 0.1, 1e-15);  // min_lr one past the last update
  EXPECT_NEAR(LearningRate(cosine, 100), 0.1, 1e-15);
  EXPECT_FALSE(ValidateSchedule({.kind = ScheduleKind::kCosine, .lr = 1, .warmup_steps = 5,
                                 .total_steps = 5}).ok());
  EXPECT_FALSE(ValidateSchedule({.lr = 0}).ok());
  EXPECT_FALSE(ValidateSchedule({.lr = 1, .min_lr = 2}).ok());
  EXPECT_FALSE(ParseScheduleKind("linear").ok());
}

TEST(ClipGradNorm, MatchesTorch) {
  const Json& g = Goldens();
  for (const Json& c : g.at("clip")) {
    Params params(g.at("shapes"));
    Params::Load(c.at("grads"), &params.grads);
    const double norm = ClipGradNorm(params.refs, c.at("max_norm").get<double>());
    EXPECT_NEAR(norm, c.at("norm").get<double>(), 1e-6 * norm + 1e-12);
    for (size_t i = 0; i < params.grads.size(); ++i) {
      ExpectNear(params.grads[i], c.at("clipped")[i].get<std::vector<double>>(), "clipped");
    }
  }
}

TEST(ClipGradNorm, ZeroMaxNormOnlyMeasures) {
  std::vector<float> x(1), gx = {3.0f}, y(1), gy = {4.0f};
  std::vector<ParamRef> refs = {{"x", core::Tensor(x.data(), core::DType::kF32, {1}),
                                 core::Tensor(gx.data(), core::DType::kF32, {1})},
                                {"y", core::Tensor(y.data(), core::DType::kF32, {1}),
                                 core::Tensor(gy.data(), core::DType::kF32, {1})}};
  EXPECT_EQ(ClipGradNorm(refs, 0.0), 5.0);
  EXPECT_EQ(gx[0], 3.0f);
  EXPECT_EQ(ClipGradNorm(refs, 1.0), 5.0);
  EXPECT_NEAR(gx[0], 0.6f, 1e-6);
  ZeroGrads(refs);
  EXPECT_EQ(gy[0], 0.0f);
}

}  // namespace
}  // namespace arle::train
