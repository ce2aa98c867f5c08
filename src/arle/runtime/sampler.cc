// Sampler implementation: bias and penalties, temperature, top-k / top-p / min-p truncation,
// inverse-CDF draw from the per-request RNG, and logprobs.
#include "arle/runtime/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>

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

// InvalidArgument "<field> <what>" naming `field` (core::Status::field()), so a server reports
// the parameter without reading the message.
core::Status FieldError(std::string field, std::string_view what) {
  return core::InvalidArgumentError(fmt::format("{} {}", field, what)).WithField(std::move(field));
}

// exp(x) for x <= 0. Below -104 expf returns exactly 0 anyway (the smallest float denormal is
// e^-103.97); returning it here skips libm's underflow path, which sets errno and is slow, and a
// low temperature sends most of a large vocabulary there.
float ExpNonPositive(float x) { return x < -104.0f ? 0.0f : std::exp(x); }

// log(sum(exp(x))) over a span: float exp terms (as PyTorch's float32 log_softmax), summed in
// double; -inf when every entry is -inf.
double LogSumExp(std::span<const float> x) {
  float max = -std::numeric_limits<float>::infinity();
  for (float v : x) max = std::max(max, v);
  if (!std::isfinite(max)) return max;
  double sum = 0.0;
  for (float v : x) sum += ExpNonPositive(v - max);
  return max + std::log(sum);
}

// Keeps the k best logits (ByValueDescThenId) in `out`, sorted. A bounded heap scanned over
// the logits costs one comparison per token for small k; large k falls back to nth_element.
void SelectTopK(std::span<const float> logits, size_t k, std::vector<Candidate>* out) {
  const ByValueDescThenId better;
  out->clear();
  if (k * 8 <= logits.size()) {
    // With `better` as the heap order, front() is the worst candidate kept so far.
    for (size_t i = 0; i < logits.size(); ++i) {
      const Candidate c{static_cast<int32_t>(i), logits[i]};
      ARLE_CHECK(!std::isnan(c.p)) << "NaN logit at token " << i;
      if (out->size() < k) {
        out->push_back(c);
        std::push_heap(out->begin(), out->end(), better);
      } else if (better(c, out->front())) {
        std::pop_heap(out->begin(), out->end(), better);
        out->back() = c;
        std::push_heap(out->begin(), out->end(), better);
      }
    }
  } else {
    out->resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) {
      ARLE_CHECK(!std::isnan(logits[i])) << "NaN logit at token " << i;
      (*out)[i] = {static_cast<int32_t>(i), logits[i]};
    }
    std::nth_element(out->begin(), out->begin() + k, out->end(), better);
    out->resize(k);
  }
  std::sort(out->begin(), out->end(), better);
}

// Bucket of an unnormalised weight w = exp((l - max) / T) in (0, 1]: its binary exponent, so
// bucket b holds w in [2^-b, 2^(1-b)); the last bucket also takes everything smaller and zeros.
constexpr int kWeightBuckets = 64;
constexpr float kTailWeight = 0x1p-62f;  // the smallest weight of the last bucket but one
int WeightBucket(float w) {
  const int exponent = static_cast<int>(std::bit_cast<uint32_t>(w) >> 23);  // w >= 0
  return std::clamp(127 - exponent, 0, kWeightBuckets - 1);
}

// Inverse CDF over unnormalised weights: the first entry whose cumulative weight exceeds
// `target` (= u * total, u in [0, 1)). Rounding can leave target past the accumulated sum; then
// the last entry with a non-zero weight is chosen, so a zero-weight token is never returned.
template <typename Entry>
int32_t DrawInverseCdf(double target, size_t n, Entry entry) {
  double cumulative = 0.0;
  int32_t last_nonzero = entry(0).id;
  for (size_t i = 0; i < n; ++i) {
    const Candidate c = entry(i);
    if (c.p <= 0.0f) continue;
    cumulative += c.p;
    last_nonzero = c.id;
    if (target < cumulative) return c.id;
  }
  return last_nonzero;
}

}  // namespace

core::Status SamplingParams::Validate(int32_t n_vocab) const {
  if (!(std::isfinite(temperature) && temperature >= 0.0f)) {
    return FieldError("temperature", fmt::format("must be >= 0, got {}", temperature));
  }
  if (top_k < -1) {
    return FieldError("top_k", fmt::format("must be -1, 0 (both disable it) or positive, got {}", top_k));
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return FieldError("top_p", fmt::format("must be in (0, 1], got {}", top_p));
  }
  if (!(min_p >= 0.0f && min_p <= 1.0f)) {
    return FieldError("min_p", fmt::format("must be in [0, 1], got {}", min_p));
  }
  if (!(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f)) {
    return FieldError("repetition_penalty", fmt::format("must be > 0, got {}", repetition_penalty));
  }
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    return FieldError("presence_penalty", fmt::format("must be in [-2, 2], got {}", presence_penalty));
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    return FieldError("frequency_penalty", fmt::format("must be in [-2, 2], got {}", frequency_penalty));
  }
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= n_vocab) {
      return FieldError("logit_bias",
                        fmt::format("token id {} is outside the vocabulary [0, {})", id, n_vocab));
    }
    if (!(bias >= -100.0f && bias <= 100.0f)) {
      return FieldError("logit_bias",
                        fmt::format("value for token {} must be in [-100, 100], got {}", id, bias));
    }
  }
  if (top_logprobs < 0 || top_logprobs > kMaxTopLogprobs) {
    return FieldError("top_logprobs",
                      fmt::format("must be in [0, {}], got {}", kMaxTopLogprobs, top_logprobs));
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

double Sampler::BuildWeights(std::span<const float> logits) {
  ARLE_CHECK_GE(params_.temperature, kGreedyTemperature);
  const size_t n_vocab = logits.size();
  ARLE_CHECK_GT(n_vocab, 0u);
  const float temperature = params_.temperature;
  const bool top_p = params_.top_p < 1.0f;
  const bool min_p = params_.min_p > 0.0f;
  std::vector<Candidate>& cand = candidates_;
  cand.clear();
  dense_ = false;
  double total = 0.0;

  const size_t k = params_.top_k > 0 ? static_cast<size_t>(params_.top_k) : n_vocab;
  if (k < n_vocab) {
    // Top-k on logits (temperature does not change the order); cand comes out sorted.
    SelectTopK(logits, k, &cand);
    const float max_logit = cand[0].p;
    ARLE_CHECK(std::isfinite(max_logit)) << "no finite logit to sample from";
    for (Candidate& c : cand) {
      c.p = ExpNonPositive((c.p - max_logit) / temperature);
      total += c.p;
    }
  } else {
    float max_logit = -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < n_vocab; ++i) {
      // NaN would break the strict weak order the selections rely on; it means a model bug.
      ARLE_CHECK(!std::isnan(logits[i])) << "NaN logit at token " << i;
      max_logit = std::max(max_logit, logits[i]);
    }
    ARLE_CHECK(std::isfinite(max_logit)) << "no finite logit to sample from";
    weights_.resize(n_vocab);
    for (size_t i = 0; i < n_vocab; ++i) {
      weights_[i] = ExpNonPositive((logits[i] - max_logit) / temperature);
      total += weights_[i];
    }
    if (top_p) {
      // Only the head of the distribution can survive top-p. Bucket the mass by binary
      // exponent, find the bucket where the cumulative mass reaches top_p, and sort just the
      // tokens down to that bucket: no full sort of a 150k vocabulary.
      std::array<double, kWeightBuckets> mass{};
      for (float w : weights_) {
        if (w >= kTailWeight) mass[WeightBucket(w)] += w;  // the tail bucket's mass is not needed
      }
      const double threshold = static_cast<double>(params_.top_p) * total;
      int last = kWeightBuckets - 1;
      double cumulative = 0.0;
      for (int b = 0; b < kWeightBuckets; ++b) {
        cumulative += mass[b];
        if (cumulative >= threshold) {
          last = b;
          break;
        }
      }
      // Bucket b <= last  <=>  w >= 2^-last (the tail bucket takes every non-zero weight).
      const float floor_weight = last == kWeightBuckets - 1 ? 0.0f : std::ldexp(1.0f, -last);
      for (size_t i = 0; i < n_vocab; ++i) {
        const float w = weights_[i];
        if (w > 0.0f && w >= floor_weight) cand.push_back({static_cast<int32_t>(i), w});
      }
      std::sort(cand.begin(), cand.end(), ByValueDescThenId());
    } else if (min_p) {
      // The top token's weight is exp(0) = 1, so min-p keeps weights >= min_p; id order.
      for (size_t i = 0; i < n_vocab; ++i) {
        if (weights_[i] >= params_.min_p) cand.push_back({static_cast<int32_t>(i), weights_[i]});
      }
    } else {
      dense_ = true;  // nothing truncated: draw straight from weights_ in id order
      return total;
    }
  }

  // Here cand holds a sorted head (top-k and/or top-p) or, for min-p alone, id order.
  if (top_p) {
    // Keep token i iff the mass strictly before it is below top_p (the first always stays).
    const double threshold = static_cast<double>(params_.top_p) * total;
    double cumulative = 0.0;
    size_t keep = cand.size();
    for (size_t i = 0; i < cand.size(); ++i) {
      if (i > 0 && cumulative >= threshold) {
        keep = i;
        break;
      }
      cumulative += cand[i].p;
    }
    cand.resize(keep);
  }
  if (min_p) {
    float p_max = 0.0f;
    for (const Candidate& c : cand) p_max = std::max(p_max, c.p);
    const float cut = params_.min_p * p_max;
    // remove_if is stable, so the canonical order survives.
    auto end =
        std::remove_if(cand.begin(), cand.end(), [cut](const Candidate& c) { return c.p < cut; });
    cand.erase(end, cand.end());
  }
  total = 0.0;
  for (const Candidate& c : cand) total += c.p;
  return total;
}

void Sampler::ComputeDistribution(std::span<const float> logits, std::vector<Candidate>* out) {
  const double total = BuildWeights(logits);
  const double inv_total = 1.0 / total;
  out->clear();
  if (dense_) {
    out->reserve(weights_.size());
    for (size_t i = 0; i < weights_.size(); ++i) {
      out->push_back({static_cast<int32_t>(i), static_cast<float>(weights_[i] * inv_total)});
    }
  } else {
    for (const Candidate& c : candidates_) {
      out->push_back({c.id, static_cast<float>(c.p * inv_total)});
    }
  }
}

SampledToken Sampler::Sample(std::span<const float> logits, std::span<const int32_t> context_tokens,
                             size_t n_prompt_tokens) {
  const size_t n_vocab = logits.size();
  ARLE_CHECK_GT(n_vocab, 0u);
  // Steps 1-3 need a private copy only when they change something.
  std::span<const float> processed = logits;
  if (!params_.logit_bias.empty() || params_.repetition_penalty != 1.0f ||
      params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    work_.assign(logits.begin(), logits.end());
    ApplyBiasAndPenalties(work_, context_tokens, n_prompt_tokens);
    processed = work_;
  }

  SampledToken result;
  if (params_.temperature < kGreedyTemperature) {
    // First maximum wins, so ties go to the lowest id.
    size_t best = 0;
    float best_value = processed[0];
    bool has_nan = std::isnan(best_value);
    for (size_t i = 1; i < n_vocab; ++i) {
      const float v = processed[i];
      has_nan |= v != v;
      if (v > best_value) {
        best_value = v;
        best = i;
      }
    }
    ARLE_CHECK(!has_nan) << "NaN logit";  // a model bug, as in the sampling path
    result.id = static_cast<int32_t>(best);
  } else {
    const double total = BuildWeights(processed);
    const double u = rng_.UniformDouble();
    result.id = dense_ ? DrawInverseCdf(u * total, weights_.size(),
                                        [this](size_t i) {
                                          return Candidate{int32_t(i), weights_[i]};
                                        })
                       : DrawInverseCdf(u * total, candidates_.size(),
                                        [this](size_t i) { return candidates_[i]; });
  }

  if (params_.logprobs_mode == LogprobsMode::kTempered &&
      (params_.logprobs || params_.top_logprobs > 0)) {
    const int32_t id = result.id;
    result =
        TemperedTokenLogprobs(logits, id, params_.temperature, params_.top_logprobs, &tempered_);
  } else if (params_.logprobs || params_.top_logprobs > 0) {
    const bool raw = params_.logprobs_mode == LogprobsMode::kRaw;
    FillLogprobs(raw ? logits : processed, &result);
  } else {
    result.logprob = std::numeric_limits<float>::quiet_NaN();
  }
  return result;
}

void Sampler::FillLogprobs(std::span<const float> logits, SampledToken* result) const {
  *result = RawTokenLogprobs(logits, result->id, params_.top_logprobs);
}

SampledToken RawTokenLogprobs(std::span<const float> logits, int32_t id, int top_logprobs) {
  SampledToken token;
  token.id = id;
  const double lse = LogSumExp(logits);
  token.logprob = static_cast<float>(logits[id] - lse);
  const size_t n = std::min<size_t>(static_cast<size_t>(std::max(top_logprobs, 0)), logits.size());
  if (n == 0) return token;
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
  token.top_logprobs.clear();
  for (const Candidate& c : best) {
    token.top_logprobs.emplace_back(c.id, static_cast<float>(c.p - lse));
  }
  return token;
}

SampledToken TemperedTokenLogprobs(std::span<const float> logits, int32_t id, float temperature,
                                   int top_logprobs, std::vector<float>* scratch) {
  if (temperature == 1.0f || temperature < kGreedyTemperature) {
    return RawTokenLogprobs(logits, id, top_logprobs);
  }
  scratch->resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) (*scratch)[i] = logits[i] / temperature;
  return RawTokenLogprobs(*scratch, id, top_logprobs);
}

}  // namespace arle::runtime
