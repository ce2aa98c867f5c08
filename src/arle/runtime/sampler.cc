// Sampler implementation: bias and penalties, temperature, top-k / top-p / min-p truncation,
// inverse-CDF draw from the per-request RNG, and logprobs.
#include "arle/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <fmt/format.h>

namespace arle::runtime {
namespace {

// Total order used wherever ties could otherwise make the result depend on the algorithm:
// larger value first, then lower id.
struct ByValueDescThenId {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.p != b.p) return a.p > b.p;
    return a.id < b.id;
  }
};

core::Status RangeError(std::string message) {
  return core::InvalidArgumentError(std::move(message));
}

// log(sum(exp(x))) over a span, with the sum in double; -inf when every entry is -inf.
double LogSumExp(std::span<const float> x) {
  float max = -std::numeric_limits<float>::infinity();
  for (float v : x) max = std::max(max, v);
  if (!std::isfinite(max)) return max;
  double sum = 0.0;
  for (float v : x) sum += std::exp(static_cast<double>(v) - max);
  return max + std::log(sum);
}

}  // namespace

core::Status SamplingParams::Validate(int32_t n_vocab) const {
  if (!(std::isfinite(temperature) && temperature >= 0.0f)) {
    return RangeError(fmt::format("temperature must be >= 0, got {}", temperature));
  }
  if (top_k < -1) {
    return RangeError(fmt::format("top_k must be >= 0 (0 or -1 disable it), got {}", top_k));
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return RangeError(fmt::format("top_p must be in (0, 1], got {}", top_p));
  }
  if (!(min_p >= 0.0f && min_p <= 1.0f)) {
    return RangeError(fmt::format("min_p must be in [0, 1], got {}", min_p));
  }
  if (!(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f)) {
    return RangeError(fmt::format("repetition_penalty must be > 0, got {}", repetition_penalty));
  }
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    return RangeError(fmt::format("presence_penalty must be in [-2, 2], got {}", presence_penalty));
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    return RangeError(
        fmt::format("frequency_penalty must be in [-2, 2], got {}", frequency_penalty));
  }
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= n_vocab) {
      return RangeError(fmt::format("logit_bias token id {} is outside the vocabulary [0, {})", id,
                                    n_vocab));
    }
    if (!(bias >= -100.0f && bias <= 100.0f)) {
      return RangeError(
          fmt::format("logit_bias value for token {} must be in [-100, 100], got {}", id, bias));
    }
  }
  if (top_logprobs < 0 || top_logprobs > kMaxTopLogprobs) {
    return RangeError(
        fmt::format("top_logprobs must be in [0, {}], got {}", kMaxTopLogprobs, top_logprobs));
  }
  return core::OkStatus();
}

Sampler::Sampler(SamplingParams params, uint64_t default_seed_if_unset)
    : params_(std::move(params)), rng_(params_.seed.value_or(default_seed_if_unset)) {}

void Sampler::ApplyBiasAndPenalties(std::span<float> logits,
                                    std::span<const int32_t> context_tokens,
                                    size_t n_prompt_tokens) {
  const size_t n_vocab = logits.size();
  ARLE_CHECK_LE(n_prompt_tokens, context_tokens.size());
  for (const auto& [id, bias] : params_.logit_bias) {
    ARLE_CHECK(id >= 0 && static_cast<size_t>(id) < n_vocab) << "logit_bias id " << id;
    logits[id] += bias;
  }
  const bool repetition = params_.repetition_penalty != 1.0f;
  const bool additive = params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f;
  if (!repetition && !additive) return;
  for (int32_t t : context_tokens) {
    ARLE_CHECK(t >= 0 && static_cast<size_t>(t) < n_vocab) << "context token " << t;
  }
  // counts_ is all-zero between calls; each pass below restores that by touching only the
  // context's tokens, so a step costs O(context), not O(n_vocab).
  if (counts_.size() != n_vocab) counts_.assign(n_vocab, 0);
  if (repetition) {
    const float penalty = params_.repetition_penalty;
    for (int32_t t : context_tokens) {
      if (counts_[t] != 0) continue;
      counts_[t] = 1;
      logits[t] = logits[t] > 0.0f ? logits[t] / penalty : logits[t] * penalty;
    }
    for (int32_t t : context_tokens) counts_[t] = 0;
  }
  if (additive) {
    const auto generated = context_tokens.subspan(n_prompt_tokens);
    for (int32_t t : generated) ++counts_[t];
    for (int32_t t : generated) {
      if (counts_[t] == 0) continue;  // already applied for an earlier occurrence
      // Two roundings in vLLM's order (frequency, then presence) so results match it bit for bit.
      logits[t] -= params_.frequency_penalty * static_cast<float>(counts_[t]);
      logits[t] -= params_.presence_penalty;
      counts_[t] = 0;
    }
  }
}

void Sampler::ComputeDistribution(std::span<const float> logits, std::vector<Candidate>* out) {
  ARLE_CHECK_GE(params_.temperature, kGreedyTemperature);
  const size_t n_vocab = logits.size();
  ARLE_CHECK_GT(n_vocab, 0u);
  std::vector<Candidate>& cand = *out;
  cand.resize(n_vocab);
  for (size_t i = 0; i < n_vocab; ++i) {
    // NaN would break the strict weak order the selections rely on; it means a model bug.
    ARLE_CHECK(!std::isnan(logits[i])) << "NaN logit at token " << i;
    cand[i] = {static_cast<int32_t>(i), logits[i]};
  }
  // While `sorted` is false the candidates are in id order; once true they are sorted by
  // ByValueDescThenId, which is the same order for logits and for probabilities.
  bool sorted = false;

  // Top-k on logits (temperature does not change the order).
  const size_t k = params_.top_k > 0 ? static_cast<size_t>(params_.top_k) : n_vocab;
  if (k < n_vocab) {
    std::nth_element(cand.begin(), cand.begin() + k, cand.end(), ByValueDescThenId());
    cand.resize(k);
    std::sort(cand.begin(), cand.end(), ByValueDescThenId());
    sorted = true;
  }

  // Softmax(logits / T) over the survivors, unnormalised: p = exp((l - max) / T).
  float max_logit = -std::numeric_limits<float>::infinity();
  for (const Candidate& c : cand) max_logit = std::max(max_logit, c.p);
  ARLE_CHECK(std::isfinite(max_logit)) << "no finite logit to sample from";
  const float temperature = params_.temperature;
  double total = 0.0;
  for (Candidate& c : cand) {
    c.p = std::exp((c.p - max_logit) / temperature);
    total += c.p;
  }

  // Top-p: find the shortest prefix (by probability) whose mass reaches top_p. Sort only a
  // growing head: a few hundred tokens usually hold the mass, so a 150k vocabulary is not sorted.
  if (params_.top_p < 1.0f) {
    const double threshold = static_cast<double>(params_.top_p) * total;
    size_t head = sorted ? cand.size() : std::min<size_t>(cand.size(), 256);
    size_t done = 0;  // cand[0, done) is sorted and holds the `done` largest
    double cumulative = 0.0;
    size_t keep = cand.size();
    while (true) {
      if (!sorted) {
        if (head < cand.size()) {
          std::nth_element(cand.begin() + done, cand.begin() + head, cand.end(),
                           ByValueDescThenId());
        }
        std::sort(cand.begin() + done, cand.begin() + head, ByValueDescThenId());
      }
      bool found = false;
      for (size_t i = done; i < head; ++i) {
        if (cumulative >= threshold) {  // mass strictly before i already reaches top_p
          keep = i;
          found = true;
          break;
        }
        cumulative += cand[i].p;
      }
      done = head;
      if (found || head == cand.size()) break;
      head = std::min(cand.size(), head * 4);
    }
    keep = std::max<size_t>(keep, 1);
    // cand[0, done) is sorted and keep <= done: the kept prefix is in canonical order.
    cand.resize(keep);
    total = 0.0;
    for (const Candidate& c : cand) total += c.p;
  }

  // Min-p relative to the most likely survivor.
  if (params_.min_p > 0.0f) {
    float p_max = 0.0f;
    for (const Candidate& c : cand) p_max = std::max(p_max, c.p);
    const float cut = params_.min_p * p_max;
    // Stable filtering keeps whichever canonical order the candidates are in.
    auto end =
        std::remove_if(cand.begin(), cand.end(), [cut](const Candidate& c) { return c.p < cut; });
    cand.erase(end, cand.end());
    total = 0.0;
    for (const Candidate& c : cand) total += c.p;
  }

  const double inv_total = 1.0 / total;
  for (Candidate& c : cand) c.p = static_cast<float>(c.p * inv_total);
}

SampledToken Sampler::Sample(std::span<const float> logits,
                             std::span<const int32_t> context_tokens, size_t n_prompt_tokens) {
  const size_t n_vocab = logits.size();
  ARLE_CHECK_GT(n_vocab, 0u);
  work_.assign(logits.begin(), logits.end());
  ApplyBiasAndPenalties(work_, context_tokens, n_prompt_tokens);

  SampledToken result;
  if (params_.temperature < kGreedyTemperature) {
    // First maximum wins, so ties go to the lowest id; NaN never compares greater.
    size_t best = 0;
    for (size_t i = 1; i < n_vocab; ++i) {
      if (work_[i] > work_[best] || std::isnan(work_[best])) best = i;
    }
    result.id = static_cast<int32_t>(best);
  } else {
    ComputeDistribution(work_, &candidates_);
    // Inverse CDF with one uniform in [0, 1). Probabilities sum to 1 up to rounding; if u lands
    // past the accumulated mass, the last candidate (never a zero-probability token) is chosen.
    const double u = rng_.UniformDouble();
    double cumulative = 0.0;
    size_t chosen = candidates_.size() - 1;
    while (chosen > 0 && candidates_[chosen].p <= 0.0f) --chosen;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      cumulative += candidates_[i].p;
      if (u < cumulative && candidates_[i].p > 0.0f) {
        chosen = i;
        break;
      }
    }
    result.id = candidates_[chosen].id;
  }

  if (params_.logprobs || params_.top_logprobs > 0) {
    const bool raw = params_.logprobs_mode == LogprobsMode::kRaw;
    FillLogprobs(raw ? logits : std::span<const float>(work_), &result);
  } else {
    result.logprob = std::numeric_limits<float>::quiet_NaN();
  }
  return result;
}

void Sampler::FillLogprobs(std::span<const float> logits, SampledToken* result) const {
  const double lse = LogSumExp(logits);
  result->logprob = static_cast<float>(logits[result->id] - lse);
  const size_t n = std::min<size_t>(params_.top_logprobs, logits.size());
  if (n == 0) return;
  // Keep the n best in a small sorted vector: one pass, no O(n_vocab) scratch.
  std::vector<Candidate> best;
  best.reserve(n + 1);
  const ByValueDescThenId better;
  for (size_t i = 0; i < logits.size(); ++i) {
    const Candidate c{static_cast<int32_t>(i), logits[i]};
    if (std::isnan(c.p)) continue;
    if (best.size() == n && !better(c, best.back())) continue;
    best.insert(std::upper_bound(best.begin(), best.end(), c, better), c);
    if (best.size() > n) best.pop_back();
  }
  result->top_logprobs.clear();
  for (const Candidate& c : best) {
    result->top_logprobs.emplace_back(c.id, static_cast<float>(c.p - lse));
  }
}

}  // namespace arle::runtime
