// Sampler: turns one sequence's next-token logits into a token id, with OpenAI/vLLM sampling
// parameters (penalties, logit bias, temperature, top-k, top-p, min-p), a per-request seeded RNG
// and logprobs. One Sampler per request; it is what makes "same seed, same tokens" hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "arle/core/random.h"
#include "arle/core/status.h"

namespace arle::runtime {

// Which distribution `SampledToken::logprob` and `top_logprobs` describe.
enum class LogprobsMode {
  // log_softmax of the model's logits, untouched (vLLM's default `raw_logprobs`; what RL
  // trainers recompute from the same weights, and independent of the sampling knobs).
  kRaw,
  // log_softmax after logit bias and penalties, before temperature/top-k/top-p/min-p (vLLM's
  // `processed_logprobs` minus the temperature step).
  kProcessed,
  // log_softmax of the model's logits divided by the temperature (raw when greedy): the
  // distribution the token was drawn from before top-k/top-p/min-p truncation, which RL's
  // importance ratios use (TRL's GRPO). See TemperedTokenLogprobs.
  kTempered,
};

// Per-request sampling parameters, OpenAI / vLLM names and defaults.
struct SamplingParams {
  float temperature = 1.0f;         // < kGreedyTemperature (0 included) means greedy
  int top_k = 0;                    // 0 or -1 = off; larger than the vocabulary = off
  float top_p = 1.0f;               // (0, 1]; 1 = off
  float min_p = 0.0f;               // [0, 1]; 0 = off
  float repetition_penalty = 1.0f;  // > 0; 1 = off
  float presence_penalty = 0.0f;    // [-2, 2]
  float frequency_penalty = 0.0f;   // [-2, 2]
  // (token id, bias in [-100, 100]); a repeated id adds its biases.
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::optional<uint64_t> seed;  // unset: the Sampler's default seed (see the constructor)
  int top_logprobs = 0;          // [0, 20]; > 0 also implies `logprobs`
  bool logprobs = false;         // fill SampledToken::logprob
  LogprobsMode logprobs_mode = LogprobsMode::kRaw;

  // Returns OK when every field is in range for a model with `n_vocab` tokens, else an
  // InvalidArgument error for the first bad field: Status::field() is the field's name as spelled
  // here ("top_p", "logit_bias", "top_logprobs", ...) and the message starts with it ("top_p must
  // be in (0, 1], got 1.5"). This is the one definition of the ranges: the server checks a
  // request's parameters with it when parsing, and the runtime checks them again when a request
  // is submitted (Engine::Submit).
  core::Status Validate(int32_t n_vocab) const;
};

// Temperatures below this are greedy (vLLM's _SAMPLING_EPS): dividing by them would overflow.
inline constexpr float kGreedyTemperature = 1e-5f;
// OpenAI's upper bound for top_logprobs.
inline constexpr int kMaxTopLogprobs = 20;

struct SampledToken {
  int32_t id = -1;
  // log-softmax (per params.logprobs_mode) of the chosen token; NaN unless params.logprobs or
  // params.top_logprobs > 0 (computing it costs one exp pass over the vocabulary).
  float logprob = 0.0f;
  // The params.top_logprobs most likely tokens under the same distribution, sorted by logprob
  // descending, ties by lower id first. May or may not contain `id`.
  std::vector<std::pair<int32_t, float>> top_logprobs;
};

// The raw log_softmax of `logits` at `id` (log-sum-exp in double) and the top_logprobs most
// likely tokens under it, sorted by logprob descending, ties by lower id: SampledToken's logprob
// fields for kRaw, and the engine's prompt log-probs. REQUIRES: 0 <= id < logits.size().
SampledToken RawTokenLogprobs(std::span<const float> logits, int32_t id, int top_logprobs);

// RawTokenLogprobs of the row divided by `temperature` (each logit / temperature in f32, then as
// above), or of the row itself when the temperature is 1 or greedy (< kGreedyTemperature):
// LogprobsMode::kTempered's values, and how an RL trainer recomputes them from the same logits
// bit for bit. `scratch` holds the divided row.
SampledToken TemperedTokenLogprobs(std::span<const float> logits, int32_t id, float temperature,
                                   int top_logprobs, std::vector<float>* scratch);

// One entry of the final sampling distribution.
struct Candidate {
  int32_t id;
  float p;  // probability after truncation and renormalisation
};

// Order of operations (each step is skipped when its parameter is at its "off" value):
//   1. logit bias: logits[id] += bias                      (OpenAI; vLLM applies it first, too)
//   2. repetition penalty over every distinct token of prompt + generated tokens: a logit > 0 is
//      divided by the penalty, a logit <= 0 multiplied (HF RepetitionPenaltyLogitsProcessor,
//      vLLM apply_penalties; CTRL paper)
//   3. frequency, then presence: logits[j] -= frequency * c[j]; logits[j] -= presence * (c[j] > 0)
//      (two roundings, in vLLM's order), where c[j] counts j among the *generated* tokens only
//      (OpenAI: "how often the token was sampled"; vLLM: output_bin_counts). The prompt does not
//      count here (it does for 2, as in HF and vLLM); pass n_prompt_tokens = 0 to count it.
//   -- logprobs (when asked for) are taken here: from the raw logits (kRaw, default, as vLLM's
//      default logprobs_mode) or from the result of 1-3 (kProcessed), always before temperature,
//      so they do not change with the sampling knobs.
//   4. greedy (temperature < kGreedyTemperature): argmax of 1-3, lowest id on ties; no RNG use.
//   5. temperature: softmax(logits / T)
//   6. top-k: keep the k largest logits (ties broken by lower id)
//   7. top-p: sort by probability; keep the smallest prefix whose mass reaches top_p, i.e. token i
//      is kept iff the mass strictly before it is < top_p (HF TopPLogitsWarper); the top token
//      always stays
//   8. min-p: keep tokens with p >= min_p * p_max (HF MinPLogitsWarper; ratio-based, so the
//      renormalisation by 6-7 does not change it)
//   9. draw: one UniformDouble() from the request's core::Rng, inverse CDF over the kept tokens
//      in a canonical order (token id order when nothing was truncated, else probability
//      descending then id).
// 5-8 follow Hugging Face's warper order (temperature, top-k, top-p, min-p). vLLM v1 applies
// min-p before top-k/top-p; the two orders differ only when top-p and min-p are combined (min-p
// first removes tail mass, so the top-p prefix can get shorter).
//
// Determinism: the result depends only on (params, seed, logits, context, number of earlier
// Sample calls); nothing depends on threads, batch composition or timing. Each non-greedy Sample
// consumes exactly one RNG draw.
//
// Cost for a 151,936-token vocabulary: one copy (only when bias or penalties are set), O(context)
// penalties, then either top-k by a
// bounded heap in one scan (exp only over the k survivors), or one exp pass over the vocabulary;
// top-p buckets the mass by binary exponent and sorts only the head down to the bucket where
// top_p is reached (never the whole vocabulary unless the distribution is nearly flat).
// Logprobs add one log-sum-exp pass in double. Buffers are reused between calls: a steady-state
// Sample allocates nothing unless top_logprobs are requested.
//
// Thread safety: a Sampler is used by one thread at a time (it owns the RNG and scratch buffers).
class Sampler {
 public:
  // REQUIRES: params.Validate(n_vocab).ok() for the vocabulary whose logits will be passed.
  // The RNG is seeded with params.seed, or with `default_seed_if_unset` when it is not set (the
  // engine passes a fresh per-request value, so unseeded requests still differ from each other).
  Sampler(SamplingParams params, uint64_t default_seed_if_unset);

  // Picks the next token.
  //   logits: [n_vocab] model output for the last position (not modified).
  //   context_tokens: the prompt followed by all generated tokens so far.
  //   n_prompt_tokens: how many of context_tokens are prompt (<= context_tokens.size()).
  // REQUIRES: every logit_bias id and context token < logits.size(); no NaN logit and at least
  // one finite one (else ARLE_CHECK fails: NaN logits are a model bug).
  SampledToken Sample(std::span<const float> logits, std::span<const int32_t> context_tokens,
                      size_t n_prompt_tokens);

  // Steps 1-3 in place (exposed so tests and the engine's logprobs modes can see them).
  // Same REQUIRES as Sample.
  void ApplyBiasAndPenalties(std::span<float> logits, std::span<const int32_t> context_tokens,
                             size_t n_prompt_tokens);

  // Steps 5-8 over already processed logits: fills `out` with the kept tokens and their
  // renormalised probabilities, in the canonical draw order described above.
  // REQUIRES: params().temperature >= kGreedyTemperature.
  void ComputeDistribution(std::span<const float> processed_logits, std::vector<Candidate>* out);

  const SamplingParams& params() const { return params_; }

 private:
  // Steps 5-8 as unnormalised weights exp((l - max) / T): either dense (weights_, every id, when
  // nothing is truncated) or candidates_ (the survivors in canonical order). Returns their sum.
  double BuildWeights(std::span<const float> processed_logits);
  // Fills result->logprob / top_logprobs from `logits` (raw or processed).
  void FillLogprobs(std::span<const float> logits, SampledToken* result) const;

  SamplingParams params_;
  core::Rng rng_;
  std::vector<float> work_;            // [n_vocab] processed logits
  std::vector<float> tempered_;        // [n_vocab] logits / temperature (kTempered log-probs)
  std::vector<float> weights_;         // [n_vocab] dense weights (valid when dense_)
  std::vector<Candidate> candidates_;  // [<= n_vocab] truncated weights (valid when !dense_)
  bool dense_ = false;
  std::vector<int32_t> counts_;  // [n_vocab] scratch for penalties, all-zero between calls
};

}  // namespace arle::runtime
