#include "arle/rl/policy_update.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <span>

#include "arle/kernels/cross_entropy.h"
#include "arle/train/schedule.h"

namespace arle::rl {
namespace {

// The micro-batches' inputs and targets (padded to each micro-batch's longest trajectory).
// Position i predicts token i + 1, counted when that token was generated.
struct MicroBatch {
  std::vector<int32_t> inputs, targets;
  std::vector<size_t> trajectories;  // indices into the step's trajectories
  int64_t seq_len = 0;
  train::Batch batch(std::span<const float> weights, float temperature) const {
    return {.inputs = inputs,
            .targets = targets,
            .n_seq = static_cast<int64_t>(trajectories.size()),
            .seq_len = seq_len,
            .token_weights = weights,
            .temperature = temperature};
  }
};

std::vector<MicroBatch> MakeMicroBatches(const std::vector<Trajectory>& ts, int64_t size) {
  std::vector<MicroBatch> out;
  for (size_t t0 = 0; t0 < ts.size(); t0 += static_cast<size_t>(size)) {
    MicroBatch mb;
    const size_t t1 = std::min(ts.size(), t0 + static_cast<size_t>(size));
    for (size_t t = t0; t < t1; ++t) {
      mb.trajectories.push_back(t);
      mb.seq_len = std::max<int64_t>(mb.seq_len, static_cast<int64_t>(ts[t].tokens.size()));
    }
    for (const size_t t : mb.trajectories) {
      const Trajectory& tr = ts[t];
      const int64_t n = static_cast<int64_t>(tr.tokens.size());
      for (int64_t i = 0; i < mb.seq_len; ++i) {
        mb.inputs.push_back(i < n ? tr.tokens[i] : 0);
        mb.targets.push_back(i + 1 < n && tr.generated[i + 1] != 0 ? tr.tokens[i + 1]
                                                                   : kernels::kIgnoreIndex);
      }
    }
    out.push_back(std::move(mb));
  }
  return out;
}

// Per trajectory, the scores of its generated tokens in order.
struct Scores {
  std::vector<std::vector<float>> logprob, entropy;
};

core::StatusOr<Scores> ScoreAll(
    const std::vector<MicroBatch>& mbs, const std::vector<Trajectory>& ts, float temperature,
    const std::function<core::StatusOr<TokenScores>(const train::Batch&)>& score) {
  Scores out;
  out.logprob.resize(ts.size());
  out.entropy.resize(ts.size());
  for (const MicroBatch& mb : mbs) {
    ARLE_ASSIGN_OR_RETURN(TokenScores s, score(mb.batch({}, temperature)));
    size_t k = 0;
    for (const size_t t : mb.trajectories) {
      // The first token has no position predicting it, so it is never generated.
      const size_t n = static_cast<size_t>(ts[t].n_generated());
      if (k + n > s.logprob.size()) return core::InternalError("scored fewer tokens than sampled");
      out.logprob[t].assign(s.logprob.begin() + k, s.logprob.begin() + k + n);
      out.entropy[t].assign(s.entropy.begin() + k, s.entropy.begin() + k + n);
      k += n;
    }
  }
  return out;
}

core::Status CheckUnits(const std::vector<Trajectory>& ts,
                        const std::vector<ObjectiveUnit>& units) {
  std::vector<int64_t> covered(ts.size(), 0);
  for (const ObjectiveUnit& u : units) {
    if (u.trajectory >= ts.size() || u.first < 0 || u.count < 1 ||
        u.first + u.count > ts[u.trajectory].n_generated()) {
      return core::InvalidArgumentError("objective unit outside its trajectory's generated tokens");
    }
    covered[u.trajectory] += u.count;
  }
  for (size_t t = 0; t < ts.size(); ++t) {
    const Trajectory& tr = ts[t];
    if (tr.generated.size() != tr.tokens.size() || (!tr.generated.empty() && tr.generated[0])) {
      return core::InvalidArgumentError("trajectory " + std::to_string(t) +
                                        ": its first token cannot be generated");
    }
    if (covered[t] != tr.n_generated()) {
      return core::InvalidArgumentError("trajectory " + std::to_string(t) +
                                        ": its generated tokens are not covered by units once");
    }
  }
  return core::OkStatus();
}

}  // namespace

void Trajectory::AddContext(const std::vector<int32_t>& ids) {
  tokens.insert(tokens.end(), ids.begin(), ids.end());
  generated.insert(generated.end(), ids.size(), 0);
}

void Trajectory::AddGenerated(const std::vector<int32_t>& ids, const std::vector<float>& lps) {
  tokens.insert(tokens.end(), ids.begin(), ids.end());
  generated.insert(generated.end(), ids.size(), 1);
  logprobs.insert(logprobs.end(), lps.begin(), lps.end());
}

core::StatusOr<UpdateStats> UpdatePolicy(Policy& policy, train::Optimizer& optimizer,
                                         train::LlamaTrainer* reference,
                                         const std::vector<Trajectory>& ts,
                                         const std::vector<ObjectiveUnit>& units,
                                         const UpdateOptions& o, double lr) {
  ARLE_RETURN_IF_ERROR(CheckUnits(ts, units));
  const std::vector<MicroBatch> mbs = MakeMicroBatches(ts, o.micro_batch);
  auto policy_score = [&](const train::Batch& b) { return policy.Score(b, o.temperature); };
  ARLE_ASSIGN_OR_RETURN(Scores current, ScoreAll(mbs, ts, o.temperature, policy_score));
  std::optional<Scores> ref_scores;
  if (reference != nullptr) {
    auto ref_score = [&](const train::Batch& b) {
      return ScoreBatch(*reference, b, o.temperature);
    };
    ARLE_ASSIGN_OR_RETURN(ref_scores, ScoreAll(mbs, ts, o.temperature, ref_score));
  }
  UpdateStats stats;
  double entropy_sum = 0;
  for (size_t t = 0; t < ts.size(); ++t) {
    for (size_t k = 0; k < ts[t].logprobs.size(); ++k) {
      stats.logprob_max_diff = std::max(
          stats.logprob_max_diff, std::fabs(double(ts[t].logprobs[k]) - current.logprob[t][k]));
      entropy_sum += current.entropy[t][k];
      ++stats.n_tokens;
    }
  }
  stats.entropy = stats.n_tokens > 0 ? entropy_sum / static_cast<double>(stats.n_tokens) : 0;

  double clip_sum = 0;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    if (epoch > 0) {
      ARLE_ASSIGN_OR_RETURN(current, ScoreAll(mbs, ts, o.temperature, policy_score));
    }
    std::vector<SequenceTerms> terms;
    for (const ObjectiveUnit& u : units) {
      const auto span = [&](const std::vector<float>& v) {
        return std::span<const float>(v).subspan(static_cast<size_t>(u.first),
                                                 static_cast<size_t>(u.count));
      };
      SequenceTerms term;
      term.logp = span(current.logprob[u.trajectory]);
      term.old_logp = span(ts[u.trajectory].logprobs);
      if (ref_scores) term.ref_logp = span(ref_scores->logprob[u.trajectory]);
      term.advantage = u.advantage;
      terms.push_back(term);
    }
    ARLE_ASSIGN_OR_RETURN(ObjectiveResult obj, EvaluateObjective(terms, o.objective));
    if (epoch == 0) {
      stats.loss = obj.loss;
      stats.kl = obj.kl_mean;
    }
    clip_sum += obj.clip_fraction;
    // Each generated token's coefficient dL/dlogp, in the trajectory's generated order.
    std::vector<std::vector<float>> coeff(ts.size());
    for (size_t t = 0; t < ts.size(); ++t) coeff[t].assign(ts[t].logprobs.size(), 0.0f);
    for (size_t i = 0; i < units.size(); ++i) {
      std::copy(obj.coeffs[i].begin(), obj.coeffs[i].end(),
                coeff[units[i].trajectory].begin() + units[i].first);
    }
    policy.trainer().ZeroGrads();
    for (const MicroBatch& mb : mbs) {
      // The gradient of L = sum c_t logp_t is that of sum w_t CE_t with w_t = -c_t, at the
      // positions that predict generated tokens.
      std::vector<float> weights(mb.targets.size(), 0.0f);
      for (size_t s = 0; s < mb.trajectories.size(); ++s) {
        const Trajectory& tr = ts[mb.trajectories[s]];
        size_t k = 0;
        for (size_t i = 1; i < tr.tokens.size(); ++i) {
          if (tr.generated[i] == 0) continue;
          weights[s * static_cast<size_t>(mb.seq_len) + i - 1] = -coeff[mb.trajectories[s]][k++];
        }
      }
      ARLE_RETURN_IF_ERROR(
          policy.trainer().ForwardBackward(mb.batch(weights, o.temperature), 1.0).status());
    }
    ARLE_RETURN_IF_ERROR(policy.Update([&]() -> core::Status {
      stats.grad_norm = train::ClipGradNorm(optimizer.params(), o.clip_grad);
      optimizer.Step(lr);
      return core::OkStatus();
    }));
  }
  stats.clip_fraction = clip_sum / o.epochs;
  return stats;
}

}  // namespace arle::rl
