// GRPO / GSPO objective (see grpo_objective.h for the formulas and the tie rules).
#include "arle/rl/grpo_objective.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace arle::rl {
namespace {

core::Status FieldError(const std::string& field, const std::string& what) {
  return core::InvalidArgumentError(field + ": " + what).WithField(field);
}

std::string Where(size_t seq, size_t token) {
  return "sequence " + std::to_string(seq) + " token " + std::to_string(token);
}

// Every value of `values` finite, else InvalidArgument naming `field`.
core::Status CheckFinite(const std::string& field, std::span<const float> values, size_t seq) {
  for (size_t t = 0; t < values.size(); ++t) {
    if (!std::isfinite(values[t])) {
      return FieldError(field, Where(seq, t) + " is " + std::to_string(values[t]) +
                                   ", log-probabilities must be finite");
    }
  }
  return core::OkStatus();
}

core::Status CheckSequences(std::span<const SequenceTerms> seqs, const ObjectiveOptions& o) {
  if (seqs.empty()) return FieldError("seqs", "no sequences to evaluate the objective on");
  const bool first_has_ref = !seqs[0].ref_logp.empty();
  for (size_t i = 0; i < seqs.size(); ++i) {
    const SequenceTerms& s = seqs[i];
    const std::string seq = "sequence " + std::to_string(i);
    if (s.logp.empty()) return FieldError("logp", seq + " is an empty completion");
    if (s.old_logp.size() != s.logp.size()) {
      return FieldError("old_logp", seq + " has " + std::to_string(s.old_logp.size()) +
                                        " values but logp has " + std::to_string(s.logp.size()));
    }
    if (s.ref_logp.empty()) {
      if (o.kl_coef > 0) {
        return FieldError("ref_logp", seq + " has no reference log-probs but kl_coef is " +
                                          std::to_string(o.kl_coef));
      }
      if (first_has_ref) {
        return FieldError("ref_logp", seq + " has no reference log-probs but sequence 0 has");
      }
    } else {
      if (!first_has_ref) {
        return FieldError("ref_logp", seq + " has reference log-probs but sequence 0 has none");
      }
      if (s.ref_logp.size() != s.logp.size()) {
        return FieldError("ref_logp", seq + " has " + std::to_string(s.ref_logp.size()) +
                                          " values but logp has " + std::to_string(s.logp.size()));
      }
    }
    ARLE_RETURN_IF_ERROR(CheckFinite("logp", s.logp, i));
    ARLE_RETURN_IF_ERROR(CheckFinite("old_logp", s.old_logp, i));
    ARLE_RETURN_IF_ERROR(CheckFinite("ref_logp", s.ref_logp, i));
    if (!std::isfinite(s.advantage)) {
      return FieldError("advantage", seq + " has advantage " + std::to_string(s.advantage));
    }
  }
  return core::OkStatus();
}

// P(r, A) = -min(r A, clip(r, lo, hi) A) and its derivative with respect to log r, with torch's
// autograd rules applied literally: torch.min gives each argument the whole gradient when it is
// strictly smaller and half of it at a tie; torch.clamp passes the gradient inside [lo, hi],
// bounds included, and blocks it outside.
struct Surrogate {
  double value = 0.0;
  double dlog_r = 0.0;
};

Surrogate ClippedSurrogate(double r, double a, double lo, double hi) {
  const double unclipped = r * a;
  const double clipped = std::clamp(r, lo, hi) * a;
  const double w_unclipped = unclipped < clipped ? 1.0 : unclipped == clipped ? 0.5 : 0.0;
  const double clamp_passes = (r >= lo && r <= hi) ? 1.0 : 0.0;
  // d/d log r = r d/dr; d(min)/dr = w_u A + (1 - w_u) A clamp'(r).
  const double dmin_dr = w_unclipped * a + (1.0 - w_unclipped) * clamp_passes * a;
  return {-std::min(unclipped, clipped), -dmin_dr * r};
}

// TRL's clip_ratio/region_mean: the clipped branch strictly active.
bool InClippedRegion(double r, double a, double lo, double hi) {
  return (r < lo && a < 0) || (r > hi && a > 0);
}

}  // namespace

core::StatusOr<std::vector<double>> GroupAdvantages(std::span<const double> rewards, int group,
                                                    bool std_norm) {
  if (group < 1) {
    return FieldError("group", "group size must be at least 1, got " + std::to_string(group));
  }
  const size_t g = static_cast<size_t>(group);
  if (rewards.size() % g != 0) {
    return FieldError("group", std::to_string(rewards.size()) +
                                   " rewards are not a whole number of groups of " +
                                   std::to_string(group));
  }
  for (size_t i = 0; i < rewards.size(); ++i) {
    if (!std::isfinite(rewards[i])) {
      return FieldError("rewards", "reward " + std::to_string(i) + " is " +
                                       std::to_string(rewards[i]) + ", rewards must be finite");
    }
  }
  std::vector<double> advantages(rewards.size());
  for (size_t start = 0; start < rewards.size(); start += g) {
    const std::span<const double> r = rewards.subspan(start, g);
    double sum = 0.0;
    for (double x : r) sum += x;
    const double mean = sum / static_cast<double>(g);
    double std_dev = 0.0;  // G == 1: defined as 0 (torch.std would be NaN)
    if (g > 1) {
      double sq = 0.0;
      for (double x : r) sq += (x - mean) * (x - mean);
      std_dev = std::sqrt(sq / static_cast<double>(g - 1));
    }
    for (size_t k = 0; k < g; ++k) {
      const double centred = r[k] - mean;
      advantages[start + k] = std_norm ? centred / (std_dev + kAdvantageStdEpsilon) : centred;
    }
  }
  return advantages;
}

core::Status ObjectiveOptions::Validate() const {
  if (!std::isfinite(clip_eps) || clip_eps <= 0 || clip_eps >= 1) {
    return FieldError("clip_eps", "must be in (0, 1), got " + std::to_string(clip_eps));
  }
  if (!std::isfinite(clip_eps_high)) {
    return FieldError("clip_eps_high",
                      "must be finite (<= 0 means clip_eps), got " + std::to_string(clip_eps_high));
  }
  if (!std::isfinite(kl_coef) || kl_coef < 0) {
    return FieldError("kl_coef", "must be >= 0, got " + std::to_string(kl_coef));
  }
  return core::OkStatus();
}

core::StatusOr<ObjectiveResult> EvaluateObjective(std::span<const SequenceTerms> seqs,
                                                  const ObjectiveOptions& options) {
  ARLE_RETURN_IF_ERROR(options.Validate());
  ARLE_RETURN_IF_ERROR(CheckSequences(seqs, options));
  const double lo = 1.0 - options.eps_low();
  const double hi = 1.0 + options.eps_high();
  const double beta = options.kl_coef;
  const bool gspo = options.kind == ObjectiveKind::kGspo;
  const bool has_ref = !seqs[0].ref_logp.empty();
  const double n_seqs = static_cast<double>(seqs.size());

  ObjectiveResult out;
  for (const SequenceTerms& s : seqs) out.n_tokens += static_cast<int64_t>(s.logp.size());
  const double n_tokens = static_cast<double>(out.n_tokens);
  out.coeffs.resize(seqs.size());

  // L = token_part (per-token terms aggregated by loss_agg) + (1/N) surrogate_sum (GSPO).
  double token_sum = 0.0;  // sum_i (1/|o_i|) sum_t, or sum_i sum_t, of the per-token terms
  double surrogate_sum = 0.0;
  double k3_sum = 0.0, ratio_sum = 0.0;
  int64_t clipped_tokens = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const SequenceTerms& s = seqs[i];
    const size_t len = s.logp.size();
    const double a = s.advantage;
    // Weight of a token's per-token term in L: 1/(N |o_i|) or 1/T.
    const double w_token = options.loss_agg == LossAggregation::kSeqMeanTokenMean
                               ? 1.0 / (n_seqs * static_cast<double>(len))
                               : 1.0 / n_tokens;

    Surrogate seq_surrogate;  // GSPO only
    double s_ratio = 0.0;
    if (gspo) {
      double log_ratio_sum = 0.0;
      for (size_t t = 0; t < len; ++t) {
        log_ratio_sum += static_cast<double>(s.logp[t]) - static_cast<double>(s.old_logp[t]);
      }
      s_ratio = std::exp(log_ratio_sum / static_cast<double>(len));
      if (!std::isfinite(s_ratio)) {
        return FieldError("old_logp", "sequence " + std::to_string(i) +
                                          ": the sequence importance ratio overflows");
      }
      seq_surrogate = ClippedSurrogate(s_ratio, a, lo, hi);
      if (InClippedRegion(s_ratio, a, lo, hi)) clipped_tokens += static_cast<int64_t>(len);
      ratio_sum += s_ratio * static_cast<double>(len);
    }

    std::vector<float>& c = out.coeffs[i];
    c.resize(len);
    double seq_token_sum = 0.0;  // sum_t of the per-token terms of this sequence
    for (size_t t = 0; t < len; ++t) {
      const double logp = s.logp[t];
      double term = 0.0, dterm = 0.0;  // per-token part of l_it and its d/dlogp_it
      if (!gspo) {
        const double rho = std::exp(logp - static_cast<double>(s.old_logp[t]));
        if (!std::isfinite(rho)) {
          return FieldError("old_logp", Where(i, t) + ": the importance ratio overflows");
        }
        const Surrogate p = ClippedSurrogate(rho, a, lo, hi);
        term += p.value;
        dterm += p.dlog_r;
        if (InClippedRegion(rho, a, lo, hi)) ++clipped_tokens;
        ratio_sum += rho;
      }
      if (has_ref) {
        // expm1 keeps k3 accurate when the policies nearly agree (exp(d) - d - 1 cancels).
        const double d = static_cast<double>(s.ref_logp[t]) - logp;
        const double k3 = std::expm1(d) - d;
        if (!std::isfinite(k3)) {
          return FieldError("ref_logp", Where(i, t) + ": exp(ref_logp - logp) overflows");
        }
        k3_sum += k3;
        if (beta > 0) {
          term += beta * k3;
          dterm += beta * -std::expm1(d);
        }
      }
      seq_token_sum += term;
      double coeff = w_token * dterm;
      // GSPO: d s_i / d logp_it = s_i / |o_i|; the surrogate is averaged over sequences.
      if (gspo) coeff += seq_surrogate.dlog_r / (n_seqs * static_cast<double>(len));
      c[t] = static_cast<float>(coeff);
    }
    token_sum += options.loss_agg == LossAggregation::kSeqMeanTokenMean
                     ? seq_token_sum / static_cast<double>(len)
                     : seq_token_sum;
    if (gspo) surrogate_sum += seq_surrogate.value;
  }
  out.loss = (options.loss_agg == LossAggregation::kSeqMeanTokenMean ? token_sum / n_seqs
                                                                     : token_sum / n_tokens) +
             surrogate_sum / n_seqs;
  out.clip_fraction = static_cast<double>(clipped_tokens) / n_tokens;
  out.kl_mean = has_ref ? k3_sum / n_tokens : 0.0;
  out.ratio_mean = ratio_sum / n_tokens;
  return out;
}

core::StatusOr<ObjectiveKind> ParseObjectiveKind(std::string_view name) {
  for (ObjectiveKind k : {ObjectiveKind::kGrpo, ObjectiveKind::kGspo}) {
    if (name == ObjectiveKindName(k)) return k;
  }
  return core::InvalidArgumentError("objective: unknown objective \"" + std::string(name) + "\"",
                                    "use grpo or gspo")
      .WithField("objective");
}

std::string_view ObjectiveKindName(ObjectiveKind kind) {
  switch (kind) {
    case ObjectiveKind::kGrpo:
      return "grpo";
    case ObjectiveKind::kGspo:
      return "gspo";
  }
  return "?";
}

core::StatusOr<LossAggregation> ParseLossAggregation(std::string_view name) {
  for (LossAggregation a : {LossAggregation::kSeqMeanTokenMean, LossAggregation::kTokenMean}) {
    if (name == LossAggregationName(a)) return a;
  }
  return core::InvalidArgumentError(
             "loss_agg: unknown loss aggregation \"" + std::string(name) + "\"",
             "use seq-mean-token-mean or token-mean")
      .WithField("loss_agg");
}

std::string_view LossAggregationName(LossAggregation agg) {
  switch (agg) {
    case LossAggregation::kSeqMeanTokenMean:
      return "seq-mean-token-mean";
    case LossAggregation::kTokenMean:
      return "token-mean";
  }
  return "?";
}

}  // namespace arle::rl
