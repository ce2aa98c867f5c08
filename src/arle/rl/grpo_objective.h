// The objective of `arle train grpo` as pure functions: group-normalised advantages, and the
// GRPO / GSPO clipped surrogate with the k3 KL penalty, evaluated to the loss plus its gradient
// with respect to every completion token's log-probability. The trainer turns that per-token
// coefficient into the LM head's gradient (d logp / d logits = onehot - softmax), so nothing here
// knows about models, logits or the autograd tape. Follows TRL's GRPOTrainer (token-level
// importance sampling = GRPO, sequence-level = GSPO) except where noted; the tests check every
// number against PyTorch autograd (tests/rl/grpo_objective_goldens.py).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::rl {

// The epsilon added to the group's standard deviation before dividing. TRL's GRPOTrainer adds
// 1e-4; arle's issue fixes 1e-6, which only matters for groups whose rewards are nearly equal.
inline constexpr double kAdvantageStdEpsilon = 1e-6;

// Group-normalised advantages. `rewards` holds n_groups consecutive groups of `group` samples
// (the G completions of one prompt); for sample i of group g:
//   std_norm:  A_i = (r_i - mean_g) / (std_g + kAdvantageStdEpsilon)
//   otherwise: A_i = r_i - mean_g                        (Dr. GRPO)
// where std_g is the unbiased sample standard deviation (divide by G - 1: torch.std's default,
// which TRL uses). With G == 1 std_g is defined as 0 (torch would give NaN), so every advantage
// is 0. Computed in double, mean and variance each one sum in index order.
// InvalidArgument (field "group") for group < 1 or a size that is not a multiple of it, (field
// "rewards") for a non-finite reward.
core::StatusOr<std::vector<double>> GroupAdvantages(std::span<const double> rewards, int group,
                                                    bool std_norm);

enum class ObjectiveKind {
  kGrpo,  // token-level importance ratios (GRPO, DAPO, TRL's importance_sampling_level "token")
  kGspo,  // one length-normalised ratio per sequence (GSPO, TRL's level "sequence")
};

enum class LossAggregation {
  kSeqMeanTokenMean,  // (1/N) sum_i (1/|o_i|) sum_t l_it: the GRPO paper, TRL's loss_type "grpo"
  kTokenMean,         // sum_i sum_t l_it / sum_i |o_i|: DAPO, TRL's loss_type "bnpo"
};

struct ObjectiveOptions {
  ObjectiveKind kind = ObjectiveKind::kGrpo;
  double clip_eps = 0.2;       // eps_low, in (0, 1)
  double clip_eps_high = 0.0;  // eps_high; <= 0 means "same as clip_eps" (DAPO uses 0.28)
  double kl_coef = 0.0;        // beta >= 0; > 0 requires every sequence's ref_logp
  LossAggregation loss_agg = LossAggregation::kSeqMeanTokenMean;

  double eps_low() const { return clip_eps; }
  double eps_high() const { return clip_eps_high > 0 ? clip_eps_high : clip_eps; }

  // InvalidArgument naming the field: clip_eps outside (0, 1), clip_eps_high non-finite, kl_coef
  // negative or non-finite.
  core::Status Validate() const;
};

// One completion o_i of |o_i| >= 1 tokens: per token t its log-probability under the current
// policy (logp_it, what the trainer recomputes), under the behaviour policy that sampled it
// (old_it, the engine's reported log-probs) and optionally under the frozen reference (ref_it).
struct SequenceTerms {
  std::span<const float> logp;      // [|o_i|]
  std::span<const float> old_logp;  // [|o_i|]
  std::span<const float> ref_logp;  // [|o_i|], or empty; required for every sequence if kl_coef>0
  double advantage = 0.0;           // A_i (GroupAdvantages)
};

// The loss and its gradient. With eps_l = eps_low, eps_h = eps_high, beta = kl_coef:
//
//   k3_it = exp(ref_it - logp_it) - (ref_it - logp_it) - 1     (Schulman's k3 estimator of KL)
//   d k3_it / d logp_it = 1 - exp(ref_it - logp_it)
//   clipped surrogate of a ratio r: P(r, A) = -min(r A, clip(r, 1 - eps_l, 1 + eps_h) A)
//
// GRPO: rho_it = exp(logp_it - old_it), l_it = P(rho_it, A_i) + beta k3_it, aggregated by
//   kSeqMeanTokenMean: L = (1/N) sum_i (1/|o_i|) sum_t l_it
//   kTokenMean:        L = sum_i sum_t l_it / sum_i |o_i|
// GSPO: s_i = exp((1/|o_i|) sum_t (logp_it - old_it)),
//   L = (1/N) sum_i P(s_i, A_i) + beta * (k3 aggregated by loss_agg as above),
//   and d s_i / d logp_it = s_i / |o_i|, so every token of o_i shares the sequence's gradient.
//   The surrogate is always a mean over sequences, as in the GSPO paper; TRL with loss_type
//   "bnpo" would weight it by |o_i| instead (the two agree for kSeqMeanTokenMean).
//
// Gradient of P with respect to log r (r = rho_it or s_i): -A r when the unclipped branch is the
// smaller one, 0 when the clipped branch is strictly smaller (A > 0 and r > 1 + eps_h, or A < 0
// and r < 1 - eps_l: the clamp is flat there). At an exact tie (r inside [1 - eps_l, 1 + eps_h],
// bounds included, or A == 0) the gradient is -A r: this is what torch.min + torch.clamp give,
// since torch.min splits a tie's gradient in half between its arguments and torch.clamp passes
// the gradient at its bounds. The implementation applies those torch rules literally, so a tie
// that only rounding creates (r just outside the range with r A == clip(r) A in double) also
// matches torch: half the gradient, -A r / 2.
struct ObjectiveResult {
  double loss = 0.0;                       // L
  std::vector<std::vector<float>> coeffs;  // [N][|o_i|]: dL / d logp_it (computed in double)
  // Fraction of completion tokens whose clipped branch is strictly active (TRL's clip_ratio
  // "region"): (r < 1 - eps_l and A < 0) or (r > 1 + eps_h and A > 0), with r = rho_it for GRPO
  // and the sequence's s_i for every token of it for GSPO.
  double clip_fraction = 0.0;
  double kl_mean = 0.0;     // token mean of k3_it; 0 when no sequence has ref_logp
  double ratio_mean = 0.0;  // token mean of the ratio used: rho_it (GRPO) or s_i (GSPO)
  int64_t n_tokens = 0;     // sum_i |o_i|
};

// Evaluates the objective on N = seqs.size() sequences (in double; coefficients stored as float).
// ref_logp is used for the KL term when kl_coef > 0, and only for the kl_mean metric when
// kl_coef == 0; it must be given for all sequences or none.
// InvalidArgument, message starting with the field name and Status::field() set: options as in
// Validate; "seqs" when there are none; "logp" for an empty completion; "old_logp" / "ref_logp"
// for a size different from logp's, or ref_logp missing on some sequences (all of them when
// kl_coef > 0); "logp" / "old_logp" / "ref_logp" / "advantage" for a non-finite value; "old_logp"
// / "ref_logp" for a log-ratio so large that its exponential overflows a double.
core::StatusOr<ObjectiveResult> EvaluateObjective(std::span<const SequenceTerms> seqs,
                                                  const ObjectiveOptions& options);

// The `arle train grpo` flag spellings: --objective grpo | gspo and
// --loss-agg seq-mean-token-mean | token-mean. InvalidArgument naming "objective" / "loss_agg".
core::StatusOr<ObjectiveKind> ParseObjectiveKind(std::string_view name);
std::string_view ObjectiveKindName(ObjectiveKind kind);
core::StatusOr<LossAggregation> ParseLossAggregation(std::string_view name);
std::string_view LossAggregationName(LossAggregation agg);

}  // namespace arle::rl
