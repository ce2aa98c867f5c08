// Perplexity and KL divergence statistics, computed the way llama.cpp's llama-perplexity computes
// them (tools/perplexity/perplexity.cpp), plus Hugging Face's sliding-window perplexity. Pure
// arithmetic over token ids and logit rows: the runner (ppl_runner.h) feeds it from the engine.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "arle/core/status.h"

namespace arle::eval {

// One forward the model runs: `tokens` from position 0, and the tokens at positions
// score_from .. size-1 scored (each predicted from the tokens before it).
struct ScoredWindow {
  std::vector<int32_t> tokens;
  int64_t score_from = 1;  // in [1, tokens.size()]
};

// llama-perplexity's chunks: consecutive windows of n_ctx tokens (no overlap, the remainder
// dropped), at most max_chunks of them (< 0: all); when `bos` is set (the tokenizer adds BOS) each
// chunk's first token is replaced by it; each chunk scores its second half: positions
// n_ctx/2 + 1 .. n_ctx - 1, that is n_ctx - 1 - n_ctx/2 tokens, with the first half as context.
// Errors: InvalidArgument when n_ctx < 4 or the text has fewer than 2 * n_ctx tokens (what
// llama-perplexity requires), naming both numbers.
core::StatusOr<std::vector<ScoredWindow>> LlamaPerplexityChunks(std::span<const int32_t> tokens,
                                                                int64_t n_ctx, int64_t max_chunks,
                                                                std::optional<int32_t> bos);

// Hugging Face's "perplexity of fixed-length models" (transformers docs): windows of at most
// max_length tokens starting every `stride` tokens; each scores only the tokens no earlier
// window scored (the first window all but its first token), so every token after the first is
// scored exactly once with up to max_length - stride tokens of context. max_chunks < 0: all.
// Errors: InvalidArgument unless 1 <= stride <= max_length, max_length >= 2 and there are at
// least 2 tokens.
core::StatusOr<std::vector<ScoredWindow>> SlidingWindows(std::span<const int32_t> tokens,
                                                         int64_t max_length, int64_t stride,
                                                         int64_t max_chunks);

// What one logit row says about the token it predicts, as llama-perplexity computes it:
// max + log(sum of expf(l - max), summed in double) - l[token].
struct TokenScore {
  double nll = 0;          // -log p(token)
  int32_t argmax = 0;      // the most likely token (lowest id among equal maxima)
  double log_sum_exp = 0;  // log of the softmax's denominator, max included
};
// REQUIRES: 0 <= token < logits.size(), logits finite.
TokenScore ScoreToken(std::span<const float> logits, int32_t token);

// Running mean of per-token NLLs with llama-perplexity's uncertainty: perplexity exp(mean) and
// its standard error exp(mean) * sqrt((mean(nll^2) - mean^2) / (count - 1)).
class NllStats {
 public:
  void Add(double nll);
  void Merge(const NllStats& other);
  int64_t count() const { return count_; }
  double mean() const;               // mean NLL (nats per token); 0 when empty
  double perplexity() const;         // exp(mean)
  double perplexity_stderr() const;  // 0 with fewer than 2 tokens
  double sum() const { return sum_; }

 private:
  double sum_ = 0, sum2_ = 0;
  int64_t count_ = 0;
};

// KL divergence of a model's next-token distributions from a base model's, per token, and the
// statistics llama-perplexity --kl-divergence prints.
struct KldToken {
  double kld = 0;         // sum_i p_base(i) * (log p_base(i) - log p(i))
  double nll = 0;         // the model's NLL of the actual token
  double nll_base = 0;    // the base's
  bool same_top = false;  // both models' argmax agree
  double p_diff = 0;      // p(token) - p_base(token)
};
// REQUIRES: both rows of the same size, token in range.
KldToken CompareDistributions(std::span<const float> base_logits, std::span<const float> logits,
                              int32_t token);

struct KldSummary {
  int64_t count = 0;
  double kld_mean = 0, kld_stderr = 0;
  double kld_median = 0, kld_p90 = 0, kld_p99 = 0, kld_p999 = 0, kld_max = 0;
  double same_top = 0, same_top_stderr = 0;  // fraction of tokens whose argmax agrees
  double ppl = 0, ppl_stderr = 0, ppl_base = 0, ppl_base_stderr = 0;
  double ln_ppl_ratio = 0;  // mean of nll - nll_base
  double p_diff_rms = 0;    // root mean square of p(token) - p_base(token)
};

class KldStats {
 public:
  void Add(const KldToken& token);
  // Percentiles interpolate linearly between sorted values, as llama-perplexity does.
  KldSummary Summary() const;
  int64_t count() const { return static_cast<int64_t>(kld_.size()); }

 private:
  std::vector<float> kld_;
  NllStats nll_, nll_base_;
  double sum_kld_ = 0, sum_kld2_ = 0, sum_p_diff2_ = 0;
  int64_t same_top_ = 0;
};

}  // namespace arle::eval
