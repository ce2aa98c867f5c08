// rl/grpo_objective: group advantages and the GRPO / GSPO objective on hand-computed cases (each
// clip branch for both signs of A, the clip bounds and ties, k3 and its derivative, both
// aggregations, GSPO's shared sequence gradient), the errors, and torch autograd's loss and
// dL/dlogp on random batches from tests/rl/grpo_objective_goldens.py.
#include "arle/rl/grpo_objective.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "arle/core/check.h"
#include "arle/core/file_util.h"

namespace arle::rl {
namespace {

using Json = nlohmann::json;

// Owns the float arrays a SequenceTerms points into.
struct Seq {
  std::vector<float> logp, old_logp, ref_logp;
  double advantage = 0.0;
};

std::vector<SequenceTerms> Terms(const std::vector<Seq>& seqs) {
  std::vector<SequenceTerms> terms;
  for (const Seq& s : seqs) terms.push_back({s.logp, s.old_logp, s.ref_logp, s.advantage});
  return terms;
}

ObjectiveResult Evaluate(const std::vector<Seq>& seqs, const ObjectiveOptions& o) {
  const std::vector<SequenceTerms> terms = Terms(seqs);
  auto r = EvaluateObjective(terms, o);
  ARLE_CHECK(r.ok()) << r.status().ToString();
  return *std::move(r);
}

// The error's code, field and that the message starts with the field name.
void ExpectFieldError(const core::Status& s, const std::string& field) {
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_EQ(s.field(), field) << s.ToString();
  EXPECT_TRUE(s.message().starts_with(field + ": ")) << s.ToString();
}

core::Status EvalError(const std::vector<Seq>& seqs, const ObjectiveOptions& o) {
  const std::vector<SequenceTerms> terms = Terms(seqs);
  auto r = EvaluateObjective(terms, o);
  EXPECT_FALSE(r.ok());
  return r.ok() ? core::OkStatus() : r.status();
}

constexpr double kTol = 1e-12;

// --- advantages ---------------------------------------------------------------------------------

TEST(GroupAdvantages, UnbiasedStdPerGroup) {
  // Groups (1, 0) and (0, 1): mean 0.5, unbiased std sqrt((0.25 + 0.25) / (2 - 1)) = sqrt(0.5);
  // A = +-0.5 / (sqrt(0.5) + 1e-6) = +-0.7071057811879616 (the biased std, 0.5, would give ~1).
  const std::vector<double> rewards = {1, 0, 0, 1};
  auto a = GroupAdvantages(rewards, 2, true);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  const double v = 0.7071057811879616;
  ASSERT_EQ(a->size(), 4u);
  EXPECT_NEAR((*a)[0], v, kTol);
  EXPECT_NEAR((*a)[1], -v, kTol);
  EXPECT_NEAR((*a)[2], -v, kTol);
  EXPECT_NEAR((*a)[3], v, kTol);
}

TEST(GroupAdvantages, WithoutStdNormIsCentredReward) {
  const std::vector<double> rewards = {1, 0, 0, 1, 3, 3, 3, 7};
  auto a = GroupAdvantages(rewards, 4, false);
  ASSERT_TRUE(a.ok());
  // Group means 0.5 and 4.
  const std::vector<double> want = {0.5, -0.5, -0.5, 0.5, -1, -1, -1, 3};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR((*a)[i], want[i], kTol) << i;
}

TEST(GroupAdvantages, EqualRewardsAndSingletonGroupsGiveZero) {
  // std 0: (r - mean) = 0 exactly, divided by 1e-6. G == 1: std defined as 0, r - mean = 0.
  const std::vector<double> equal = {0.3, 0.3, 0.3, 0.3};
  for (bool norm : {true, false}) {
    auto a = GroupAdvantages(equal, 4, norm);
    ASSERT_TRUE(a.ok());
    for (double x : *a) EXPECT_EQ(x, 0.0);
    const std::vector<double> single = {3.0, -2.0};
    auto b = GroupAdvantages(single, 1, norm);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(*b, (std::vector<double>{0.0, 0.0}));
  }
}

TEST(GroupAdvantages, Errors) {
  const std::vector<double> five = {1, 2, 3, 4, 5};
  ExpectFieldError(GroupAdvantages(five, 0, true).status(), "group");
  ExpectFieldError(GroupAdvantages(five, 2, true).status(), "group");
  const std::vector<double> nan = {1, std::numeric_limits<double>::quiet_NaN()};
  ExpectFieldError(GroupAdvantages(nan, 2, true).status(), "rewards");
  const std::vector<double> inf = {1, std::numeric_limits<double>::infinity()};
  ExpectFieldError(GroupAdvantages(inf, 1, false).status(), "rewards");
  EXPECT_TRUE(GroupAdvantages({}, 3, true).ok());  // no groups: nothing to normalise
}

// --- GRPO clip branches -------------------------------------------------------------------------

TEST(GrpoObjective, EachClipBranchForBothSigns) {
  // Four one-token sequences, eps 0.2, seq-mean-token-mean (N = 4, weight 1/4 each):
  //   0: rho = e^0.25 = 1.2840254166877414 > 1.2, A = +1: min(1.284, 1.2) is the clipped branch:
  //      l = -1.2, gradient 0, in the clipped region;
  //   1: same rho, A = -1: min(-1.284, -1.2) = -1.284 unclipped: l = 1.284, dl = -A rho = 1.284;
  //   2: rho = e^-0.5 = 0.6065306597126334 < 0.8, A = +2: min(1.2131, 1.6) unclipped:
  //      l = -1.2130613194252668, dl = -1.2130613194252668;
  //   3: same rho, A = -2: min(-1.2131, -1.6) = -1.6 clipped: l = 1.6, gradient 0, clipped region.
  // L = (-1.2 + 1.2840254166877414 - 1.2130613194252668 + 1.6) / 4 = 0.11774102431561867.
  const std::vector<Seq> seqs = {
      {{-1.0f}, {-1.25f}, {}, 1.0},
      {{-1.0f}, {-1.25f}, {}, -1.0},
      {{-1.5f}, {-1.0f}, {}, 2.0},
      {{-1.5f}, {-1.0f}, {}, -2.0},
  };
  const ObjectiveResult r = Evaluate(seqs, {});
  EXPECT_NEAR(r.loss, 0.11774102431561867, kTol);
  ASSERT_EQ(r.coeffs.size(), 4u);
  EXPECT_EQ(r.coeffs[0][0], 0.0f);
  EXPECT_FLOAT_EQ(r.coeffs[1][0], 0.32100635417193535f);
  EXPECT_FLOAT_EQ(r.coeffs[2][0], -0.3032653298563167f);
  EXPECT_EQ(r.coeffs[3][0], 0.0f);
  EXPECT_DOUBLE_EQ(r.clip_fraction, 0.5);
  EXPECT_NEAR(r.ratio_mean, 0.9452780382001874, kTol);  // (2 e^0.25 + 2 e^-0.5) / 4
  EXPECT_EQ(r.kl_mean, 0.0);
  EXPECT_EQ(r.n_tokens, 4);
}

TEST(GrpoObjective, AsymmetricClipOnlyWidensTheUpperSide) {
  // eps_low 0.2, eps_high 0.3 (DAPO's clip-higher):
  //   rho = e^0.25 = 1.284 <= 1.3 with A = +1: inside now, dl = -rho;
  //   rho = e^-0.25 = 0.7788007830714049 < 0.8 with A = -1: still clipped, gradient 0.
  const std::vector<Seq> seqs = {{{0.25f}, {0.0f}, {}, 1.0}, {{-0.25f}, {0.0f}, {}, -1.0}};
  ObjectiveOptions o;
  o.clip_eps_high = 0.3;
  const ObjectiveResult r = Evaluate(seqs, o);
  EXPECT_FLOAT_EQ(r.coeffs[0][0], static_cast<float>(-std::exp(0.25) / 2));
  EXPECT_EQ(r.coeffs[1][0], 0.0f);
  EXPECT_DOUBLE_EQ(r.clip_fraction, 0.5);
  EXPECT_NEAR(r.loss, (-std::exp(0.25) + 0.8) / 2, kTol);
  // clip_eps_high <= 0 means "same as clip_eps": the first token is clipped again.
  o.clip_eps_high = 0.0;
  EXPECT_EQ(Evaluate(seqs, o).coeffs[0][0], 0.0f);
}

TEST(GrpoObjective, TiesAtTheClipBoundsAndOnPolicyPassTheFullGradient) {
  // rho exactly 1 + eps_high (eps_high = e^0.25 - 1, exact since e^0.25 is in [1, 2)) with A > 0:
  // rho A == clip(rho) A, a tie. torch.min gives each branch half and torch.clamp passes the
  // gradient at its bound, so the gradient is the whole -A rho; not counted as clipped.
  // Likewise rho = e^-0.25 == 1 - eps_low with A < 0.
  {
    const std::vector<Seq> seqs = {{{0.25f}, {0.0f}, {}, 2.0}};
    ObjectiveOptions o;
    o.clip_eps_high = std::exp(0.25) - 1.0;
    const ObjectiveResult r = Evaluate(seqs, o);
    EXPECT_FLOAT_EQ(r.coeffs[0][0], static_cast<float>(-2.0 * std::exp(0.25)));
    EXPECT_EQ(r.clip_fraction, 0.0);
  }
  {
    const std::vector<Seq> seqs = {{{-0.25f}, {0.0f}, {}, -2.0}};
    ObjectiveOptions o;
    o.clip_eps = 1.0 - std::exp(-0.25);
    const ObjectiveResult r = Evaluate(seqs, o);
    EXPECT_FLOAT_EQ(r.coeffs[0][0], static_cast<float>(2.0 * std::exp(-0.25)));
    EXPECT_EQ(r.clip_fraction, 0.0);
  }
  // On-policy (old == logp): rho = 1, both branches equal, dl = -A; A = 0 gives 0.
  const std::vector<Seq> seqs = {{{-0.7f}, {-0.7f}, {}, 3.0}, {{-0.2f}, {-0.2f}, {}, 0.0}};
  const ObjectiveResult r = Evaluate(seqs, {});
  EXPECT_FLOAT_EQ(r.coeffs[0][0], -1.5f);  // -3 / N
  EXPECT_EQ(r.coeffs[1][0], 0.0f);
  EXPECT_NEAR(r.loss, -1.5, kTol);
  EXPECT_EQ(r.ratio_mean, 1.0);
}

// --- KL -----------------------------------------------------------------------------------------

TEST(GrpoObjective, K3ValueAndDerivative) {
  // One sequence, on-policy with A = 0 so only the KL term remains, beta 0.1, N = 1, |o| = 2:
  //   token 0: d = ref - logp = -1.5 + 1 = -0.5: k3 = e^-0.5 + 0.5 - 1 = 0.10653065971263342,
  //            dk3/dlogp = 1 - e^-0.5 = 0.3934693402873666;
  //   token 1: d = -1 + 2 = 1: k3 = e - 2 = 0.7182818284590451, dk3/dlogp = 1 - e.
  // L = 0.1 (k3_0 + k3_1) / 2 = 0.04124062440858393; c = 0.1 dk3 / 2.
  const std::vector<Seq> seqs = {{{-1.0f, -2.0f}, {-1.0f, -2.0f}, {-1.5f, -1.0f}, 0.0}};
  ObjectiveOptions o;
  o.kl_coef = 0.1;
  const ObjectiveResult r = Evaluate(seqs, o);
  EXPECT_NEAR(r.loss, 0.04124062440858393, kTol);
  EXPECT_FLOAT_EQ(r.coeffs[0][0], 0.01967346701436833f);
  EXPECT_FLOAT_EQ(r.coeffs[0][1], -0.08591409142295225f);
  EXPECT_NEAR(r.kl_mean, 0.41240624408583926, kTol);
  // kl_coef 0 with ref_logp: kl_mean is still reported, the loss and gradient have no KL.
  const ObjectiveResult metric_only = Evaluate(seqs, {});
  EXPECT_EQ(metric_only.loss, 0.0);
  EXPECT_EQ(metric_only.coeffs[0][0], 0.0f);
  EXPECT_NEAR(metric_only.kl_mean, 0.41240624408583926, kTol);
}

// --- aggregation --------------------------------------------------------------------------------

TEST(GrpoObjective, BothAggregations) {
  // On-policy (rho = 1) so l_it = -A_i: sequence 0 has 1 token and A = +1, sequence 1 has 3
  // tokens and A = -1.
  //   seq-mean-token-mean: L = (1/2)(-1 + (1/3)(3)) = 0; c = -A / (N |o_i|): -0.5 and 1/6;
  //   token-mean:          L = (-1 + 3) / 4 = 0.5;      c = -A / T: -0.25 and 0.25.
  const std::vector<Seq> seqs = {{{-1.0f}, {-1.0f}, {}, 1.0},
                                 {{-1.0f, -2.0f, -3.0f}, {-1.0f, -2.0f, -3.0f}, {}, -1.0}};
  ObjectiveOptions o;
  const ObjectiveResult seq_mean = Evaluate(seqs, o);
  EXPECT_NEAR(seq_mean.loss, 0.0, kTol);
  EXPECT_FLOAT_EQ(seq_mean.coeffs[0][0], -0.5f);
  for (float c : seq_mean.coeffs[1]) EXPECT_FLOAT_EQ(c, 1.0f / 6.0f);
  o.loss_agg = LossAggregation::kTokenMean;
  const ObjectiveResult token_mean = Evaluate(seqs, o);
  EXPECT_NEAR(token_mean.loss, 0.5, kTol);
  EXPECT_FLOAT_EQ(token_mean.coeffs[0][0], -0.25f);
  for (float c : token_mean.coeffs[1]) EXPECT_FLOAT_EQ(c, 0.25f);
  EXPECT_EQ(token_mean.n_tokens, 4);
}

// --- GSPO ---------------------------------------------------------------------------------------

TEST(GspoObjective, SequenceRatioSharesItsGradient) {
  // Sequence 0: log ratios (0.5, 0): s = e^0.25 = 1.2840254166877414, A = -1: unclipped branch,
  //   P = 1.284, dP/dlog s = -A s = 1.284, each token gets s / |o| / N = e^0.25 / 4 (per-token
  //   GRPO would instead clip nothing on token 1 and give token 0 e^0.5).
  // Sequence 1: s = e^-0.5 = 0.6065306597126334, A = +1: unclipped, P = -0.6065, c = -s / 2.
  // L = (1.2840254166877414 - 0.6065306597126334) / 2 = 0.338747378487554.
  std::vector<Seq> seqs = {{{-1.0f, -2.0f}, {-1.5f, -2.0f}, {}, -1.0}, {{-1.0f}, {-0.5f}, {}, 1.0}};
  ObjectiveOptions o;
  o.kind = ObjectiveKind::kGspo;
  ObjectiveResult r = Evaluate(seqs, o);
  EXPECT_NEAR(r.loss, 0.338747378487554, kTol);
  EXPECT_FLOAT_EQ(r.coeffs[0][0], 0.32100635417193535f);
  EXPECT_FLOAT_EQ(r.coeffs[0][1], 0.32100635417193535f);
  EXPECT_FLOAT_EQ(r.coeffs[1][0], -0.3032653298563167f);
  EXPECT_EQ(r.clip_fraction, 0.0);
  EXPECT_NEAR(r.ratio_mean, 1.058193831029372, kTol);  // (2 e^0.25 + e^-0.5) / 3, token mean

  // A = +1 on sequence 0: s > 1.2, the clipped branch: P = -1.2, no gradient, and both of its
  // tokens count as clipped: L = (-1.2 - 0.6065306597126334) / 2, clip_fraction 2/3.
  seqs[0].advantage = 1.0;
  r = Evaluate(seqs, o);
  EXPECT_NEAR(r.loss, -0.9032653298563167, kTol);
  EXPECT_EQ(r.coeffs[0][0], 0.0f);
  EXPECT_EQ(r.coeffs[0][1], 0.0f);
  EXPECT_NEAR(r.clip_fraction, 2.0 / 3.0, kTol);
}

TEST(GspoObjective, SurrogateIsASequenceMeanAndKlFollowsTheAggregation) {
  // The sequences above with A = (-1, +1), ref = (-1.5, -1) and (-1), beta 0.5, token-mean:
  //   surrogate (1/N) sum_i P_i = 0.338747378487554 (not length-weighted);
  //   KL: k3 = (0.10653065971263342, 0.7182818284590451, 0) over T = 3 tokens;
  //   L = 0.338747378487554 + 0.5 * 0.27493749605722617 = 0.47621612651616707;
  //   c_00 = e^0.25 / 4 + 0.5 (1 - e^-0.5) / 3 = 0.3865845775531631,
  //   c_01 = e^0.25 / 4 + 0.5 (1 - e) / 3 = 0.034626049428761185, c_10 = -e^-0.5 / 2.
  const std::vector<Seq> seqs = {{{-1.0f, -2.0f}, {-1.5f, -2.0f}, {-1.5f, -1.0f}, -1.0},
                                 {{-1.0f}, {-0.5f}, {-1.0f}, 1.0}};
  ObjectiveOptions o;
  o.kind = ObjectiveKind::kGspo;
  o.kl_coef = 0.5;
  o.loss_agg = LossAggregation::kTokenMean;
  const ObjectiveResult r = Evaluate(seqs, o);
  EXPECT_NEAR(r.loss, 0.47621612651616707, kTol);
  EXPECT_FLOAT_EQ(r.coeffs[0][0], 0.3865845775531631f);
  EXPECT_FLOAT_EQ(r.coeffs[0][1], 0.034626049428761185f);
  EXPECT_FLOAT_EQ(r.coeffs[1][0], -0.3032653298563167f);
  EXPECT_NEAR(r.kl_mean, 0.27493749605722617, kTol);
}

// --- errors -------------------------------------------------------------------------------------

TEST(Objective, OptionErrors) {
  const std::vector<Seq> seqs = {{{-1.0f}, {-1.0f}, {}, 1.0}};
  for (double eps : {0.0, 1.0, -0.1, std::numeric_limits<double>::quiet_NaN()}) {
    ObjectiveOptions o;
    o.clip_eps = eps;
    ExpectFieldError(o.Validate(), "clip_eps");
    ExpectFieldError(EvalError(seqs, o), "clip_eps");
  }
  ObjectiveOptions o;
  o.clip_eps_high = std::numeric_limits<double>::infinity();
  ExpectFieldError(o.Validate(), "clip_eps_high");
  o = {};
  o.kl_coef = -0.1;
  ExpectFieldError(o.Validate(), "kl_coef");
  o.kl_coef = std::numeric_limits<double>::quiet_NaN();
  ExpectFieldError(o.Validate(), "kl_coef");
  EXPECT_TRUE(ObjectiveOptions{}.Validate().ok());
}

TEST(Objective, SequenceErrors) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  ObjectiveOptions kl;
  kl.kl_coef = 0.1;
  ExpectFieldError(EvalError({}, {}), "seqs");
  ExpectFieldError(EvalError({{{}, {}, {}, 1.0}}, {}), "logp");
  ExpectFieldError(EvalError({{{-1.0f, -2.0f}, {-1.0f}, {}, 1.0}}, {}), "old_logp");
  ExpectFieldError(EvalError({{{-1.0f}, {-1.0f}, {}, 1.0}}, kl), "ref_logp");
  ExpectFieldError(EvalError({{{-1.0f}, {-1.0f}, {-1.0f, -1.0f}, 1.0}}, kl), "ref_logp");
  // ref_logp on some sequences only, either way round.
  ExpectFieldError(EvalError({{{-1.0f}, {-1.0f}, {-1.0f}, 1.0}, {{-1.0f}, {-1.0f}, {}, 1.0}}, {}),
                   "ref_logp");
  ExpectFieldError(EvalError({{{-1.0f}, {-1.0f}, {}, 1.0}, {{-1.0f}, {-1.0f}, {-1.0f}, 1.0}}, {}),
                   "ref_logp");
  ExpectFieldError(EvalError({{{nan}, {-1.0f}, {}, 1.0}}, {}), "logp");
  ExpectFieldError(EvalError({{{-1.0f}, {-inf}, {}, 1.0}}, {}), "old_logp");
  ExpectFieldError(EvalError({{{-1.0f}, {-1.0f}, {inf}, 1.0}}, kl), "ref_logp");
  ExpectFieldError(EvalError({{{-1.0f}, {-1.0f}, {}, std::nan("")}}, {}), "advantage");
  // exp(800) overflows a double: the behaviour log-probs cannot belong to these tokens.
  ExpectFieldError(EvalError({{{0.0f}, {-800.0f}, {}, 1.0}}, {}), "old_logp");
  ObjectiveOptions gspo;
  gspo.kind = ObjectiveKind::kGspo;
  ExpectFieldError(EvalError({{{0.0f}, {-800.0f}, {}, 1.0}}, gspo), "old_logp");
  ExpectFieldError(EvalError({{{-800.0f}, {-800.0f}, {0.0f}, 1.0}}, kl), "ref_logp");
}

TEST(Objective, FlagSpellings) {
  for (ObjectiveKind k : {ObjectiveKind::kGrpo, ObjectiveKind::kGspo}) {
    auto parsed = ParseObjectiveKind(ObjectiveKindName(k));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, k);
  }
  for (LossAggregation a : {LossAggregation::kSeqMeanTokenMean, LossAggregation::kTokenMean}) {
    auto parsed = ParseLossAggregation(LossAggregationName(a));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, a);
  }
  EXPECT_EQ(ObjectiveKindName(ObjectiveKind::kGspo), "gspo");
  EXPECT_EQ(LossAggregationName(LossAggregation::kSeqMeanTokenMean), "seq-mean-token-mean");
  EXPECT_EQ(LossAggregationName(LossAggregation::kTokenMean), "token-mean");
  ExpectFieldError(ParseObjectiveKind("ppo").status(), "objective");
  ExpectFieldError(ParseLossAggregation("seq-mean").status(), "loss_agg");
}

// --- PyTorch goldens ----------------------------------------------------------------------------

const Json& Goldens() {
  static const Json* j = [] {
    auto text = core::ReadFile(std::string(ARLE_TEST_DATA_DIR) + "/rl/grpo_objective_goldens.json");
    ARLE_CHECK(text.ok()) << text.status().ToString();
    return new Json(Json::parse(*text));
  }();
  return *j;
}

// Doubles computed the same way up to summation order.
void ExpectClose(double got, double want, const std::string& what) {
  EXPECT_LE(std::abs(got - want), 1e-10 * std::max(1.0, std::abs(want)))
      << what << ": got " << got << " want " << want;
}

TEST(ObjectiveGoldens, GroupAdvantagesMatchTorch) {
  for (const Json& c : Goldens().at("advantages")) {
    const auto rewards = c.at("rewards").get<std::vector<double>>();
    const auto want = c.at("advantages").get<std::vector<double>>();
    auto got = GroupAdvantages(rewards, c.at("group").get<int>(), c.at("std_norm").get<bool>());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) ExpectClose((*got)[i], want[i], "advantage");
  }
}

TEST(ObjectiveGoldens, CoverBothObjectivesAggregationsAndClipBranches) {
  std::set<std::string> combos;
  bool kl = false, clipped = false, unclipped_both_signs = false;
  for (const Json& c : Goldens().at("objectives")) {
    combos.insert(c.at("objective").get<std::string>() + "/" + c.at("loss_agg").get<std::string>());
    kl |= c.at("kl_coef").get<double>() > 0;
    clipped |= c.at("clip_fraction").get<double>() > 0;
    bool pos = false, neg = false;
    for (const Json& s : c.at("seqs")) {
      pos |= s.at("advantage").get<double>() > 0;
      neg |= s.at("advantage").get<double>() < 0;
    }
    unclipped_both_signs |= pos && neg && c.at("clip_fraction").get<double>() < 1;
  }
  EXPECT_EQ(combos.size(), 4u);
  EXPECT_TRUE(kl);
  EXPECT_TRUE(clipped);
  EXPECT_TRUE(unclipped_both_signs);
}

TEST(ObjectiveGoldens, LossGradientAndMetricsMatchTorchAutograd) {
  for (const Json& c : Goldens().at("objectives")) {
    const std::string name = c.at("name").get<std::string>();
    SCOPED_TRACE(name);
    ObjectiveOptions o;
    auto kind = ParseObjectiveKind(c.at("objective").get<std::string>());
    auto agg = ParseLossAggregation(c.at("loss_agg").get<std::string>());
    ASSERT_TRUE(kind.ok() && agg.ok());
    o.kind = *kind;
    o.loss_agg = *agg;
    o.clip_eps = c.at("clip_eps").get<double>();
    o.clip_eps_high = c.at("clip_eps_high").get<double>();
    o.kl_coef = c.at("kl_coef").get<double>();

    // The advantages the script fed in are GroupAdvantages of its rewards.
    const auto rewards = c.at("rewards").get<std::vector<double>>();
    auto adv = GroupAdvantages(rewards, c.at("group").get<int>(), c.at("std_norm").get<bool>());
    ASSERT_TRUE(adv.ok());
    std::vector<Seq> seqs;
    for (const Json& s : c.at("seqs")) {
      seqs.push_back({s.at("logp").get<std::vector<float>>(),
                      s.at("old_logp").get<std::vector<float>>(),
                      s.at("ref_logp").get<std::vector<float>>(), s.at("advantage").get<double>()});
      ExpectClose((*adv)[seqs.size() - 1], seqs.back().advantage, "advantage");
    }

    const ObjectiveResult r = Evaluate(seqs, o);
    ExpectClose(r.loss, c.at("loss").get<double>(), "loss");
    ExpectClose(r.clip_fraction, c.at("clip_fraction").get<double>(), "clip_fraction");
    ExpectClose(r.kl_mean, c.at("kl_mean").get<double>(), "kl_mean");
    ExpectClose(r.ratio_mean, c.at("ratio_mean").get<double>(), "ratio_mean");
    EXPECT_EQ(r.n_tokens, c.at("n_tokens").get<int64_t>());
    const Json& grad = c.at("grad");
    ASSERT_EQ(r.coeffs.size(), grad.size());
    for (size_t i = 0; i < grad.size(); ++i) {
      const auto want = grad[i].get<std::vector<double>>();
      ASSERT_EQ(r.coeffs[i].size(), want.size()) << "sequence " << i;
      for (size_t t = 0; t < want.size(); ++t) {
        // f32 outputs of a double computation: float rounding only (relative 6e-8).
        EXPECT_LE(std::abs(r.coeffs[i][t] - want[t]), 1e-6 * std::abs(want[t]) + 1e-9)
            << "sequence " << i << " token " << t << ": got " << r.coeffs[i][t] << " want "
            << want[t];
      }
    }
  }
}

}  // namespace
}  // namespace arle::rl
