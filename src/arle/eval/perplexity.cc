#include "arle/eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>

#include "arle/core/check.h"

namespace arle::eval {

core::StatusOr<std::vector<ScoredWindow>> LlamaPerplexityChunks(std::span<const int32_t> tokens,
                                                                int64_t n_ctx, int64_t max_chunks,
                                                                std::optional<int32_t> bos) {
  if (n_ctx < 4) {
    return core::InvalidArgumentError("--ctx must be at least 4, got " + std::to_string(n_ctx));
  }
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens < 2 * n_ctx) {
    return core::InvalidArgumentError(
        "the text has " + std::to_string(n_tokens) + " tokens; perplexity with a context of " +
            std::to_string(n_ctx) + " needs at least " + std::to_string(2 * n_ctx),
        "use a longer file or a smaller --ctx");
  }
  int64_t n_chunks = n_tokens / n_ctx;
  if (max_chunks >= 0) n_chunks = std::min(n_chunks, max_chunks);
  std::vector<ScoredWindow> windows(static_cast<size_t>(n_chunks));
  for (int64_t c = 0; c < n_chunks; ++c) {
    ScoredWindow& w = windows[static_cast<size_t>(c)];
    w.tokens.assign(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (bos.has_value()) w.tokens[0] = *bos;
    // llama-perplexity keeps the logits of positions n_ctx/2 .. n_ctx-2, which predict the tokens
    // one further on.
    w.score_from = n_ctx / 2 + 1;
  }
  return windows;
}

core::StatusOr<std::vector<ScoredWindow>> SlidingWindows(std::span<const int32_t> tokens,
                                                         int64_t max_length, int64_t stride,
                                                         int64_t max_chunks) {
  if (max_length < 2) {
    return core::InvalidArgumentError("--ctx must be at least 2, got " +
                                      std::to_string(max_length));
  }
  if (stride < 1 || stride > max_length) {
    return core::InvalidArgumentError(
        "--stride must be in [1, --ctx = " + std::to_string(max_length) + "], got " +
        std::to_string(stride));
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 2) {
    return core::InvalidArgumentError("the text has " + std::to_string(n) +
                                      " tokens; perplexity needs at least 2");
  }
  std::vector<ScoredWindow> windows;
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < n; begin += stride) {
    if (max_chunks >= 0 && static_cast<int64_t>(windows.size()) >= max_chunks) break;
    const int64_t end = std::min(begin + max_length, n);
    const int64_t target = end - prev_end;  // tokens no earlier window scored
    ScoredWindow w;
    w.tokens.assign(tokens.begin() + begin, tokens.begin() + end);
    // The labels of the last `target` tokens count; the first token of a window has no
    // prediction (transformers shifts the labels by one).
    w.score_from = std::max<int64_t>(1, (end - begin) - target);
    windows.push_back(std::move(w));
    prev_end = end;
    if (end == n) break;
  }
  return windows;
}

TokenScore ScoreToken(std::span<const float> logits, int32_t token) {
  ARLE_CHECK(token >= 0 && static_cast<size_t>(token) < logits.size());
  float max = logits[0];
  int32_t argmax = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > max) {
      max = logits[i];
      argmax = static_cast<int32_t>(i);
    }
  }
  double sum = 0;
  for (const float l : logits) sum += std::exp(l - max);
  TokenScore score;
  score.argmax = argmax;
  score.log_sum_exp = static_cast<double>(max) + std::log(sum);
  score.nll = score.log_sum_exp - static_cast<double>(logits[static_cast<size_t>(token)]);
  return score;
}

void NllStats::Add(double nll) {
  sum_ += nll;
  sum2_ += nll * nll;
  ++count_;
}

void NllStats::Merge(const NllStats& other) {
  sum_ += other.sum_;
  sum2_ += other.sum2_;
  count_ += other.count_;
}

double NllStats::mean() const { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }

double NllStats::perplexity() const { return std::exp(mean()); }

double NllStats::perplexity_stderr() const {
  if (count_ < 2) return 0.0;
  const double m = mean(), m2 = sum2_ / static_cast<double>(count_);
  return perplexity() * std::sqrt(std::max(0.0, m2 - m * m) / static_cast<double>(count_ - 1));
}

KldToken CompareDistributions(std::span<const float> base_logits, std::span<const float> logits,
                              int32_t token) {
  ARLE_CHECK(base_logits.size() == logits.size());
  const TokenScore base = ScoreToken(base_logits, token);
  const TokenScore model = ScoreToken(logits, token);
  KldToken out;
  // Exact log-softmax of both rows (llama-perplexity stores the base's as 16-bit values and
  // skips base probabilities below e^-16; here nothing is rounded away).
  double kld = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double log_p_base = static_cast<double>(base_logits[i]) - base.log_sum_exp;
    const double log_p = static_cast<double>(logits[i]) - model.log_sum_exp;
    kld += std::exp(log_p_base) * (log_p_base - log_p);
  }
  out.kld = kld;
  out.nll = model.nll;
  out.nll_base = base.nll;
  out.same_top = base.argmax == model.argmax;
  out.p_diff = std::exp(-model.nll) - std::exp(-base.nll);
  return out;
}

void KldStats::Add(const KldToken& token) {
  kld_.push_back(static_cast<float>(token.kld));
  nll_.Add(token.nll);
  nll_base_.Add(token.nll_base);
  sum_kld_ += token.kld;
  sum_kld2_ += token.kld * token.kld;
  sum_p_diff2_ += token.p_diff * token.p_diff;
  if (token.same_top) ++same_top_;
}

namespace {

// llama-perplexity's percentile: linear interpolation at fraction * (n - 1).
double Percentile(const std::vector<float>& sorted, double fraction) {
  if (fraction <= 0) return sorted.front();
  if (fraction >= 1) return sorted.back();
  const double p = fraction * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(p);
  const double f = p - static_cast<double>(i);
  return (1 - f) * sorted[i] + f * sorted[std::min(i + 1, sorted.size() - 1)];
}

// Mean and its standard error from a sum and a sum of squares.
std::pair<double, double> MeanAndError(double sum, double sum2, int64_t count) {
  const double n = static_cast<double>(count);
  const double mean = sum / n;
  if (count < 2) return {mean, 0.0};
  return {mean, std::sqrt(std::max(0.0, sum2 / n - mean * mean) / (n - 1))};
}

}  // namespace

KldSummary KldStats::Summary() const {
  KldSummary s;
  s.count = count();
  if (s.count == 0) return s;
  std::vector<float> sorted = kld_;
  std::sort(sorted.begin(), sorted.end());
  std::tie(s.kld_mean, s.kld_stderr) = MeanAndError(sum_kld_, sum_kld2_, s.count);
  const size_t n = sorted.size();
  s.kld_median = n % 2 == 0 ? 0.5 * (sorted[n / 2] + sorted[n / 2 - 1]) : sorted[n / 2];
  s.kld_p90 = Percentile(sorted, 0.90);
  s.kld_p99 = Percentile(sorted, 0.99);
  s.kld_p999 = Percentile(sorted, 0.999);
  s.kld_max = sorted.back();
  const double frac = static_cast<double>(same_top_) / static_cast<double>(s.count);
  s.same_top = frac;
  s.same_top_stderr =
      s.count < 2 ? 0.0 : std::sqrt(frac * (1 - frac) / static_cast<double>(s.count - 1));
  s.ppl = nll_.perplexity();
  s.ppl_stderr = nll_.perplexity_stderr();
  s.ppl_base = nll_base_.perplexity();
  s.ppl_base_stderr = nll_base_.perplexity_stderr();
  s.ln_ppl_ratio = nll_.mean() - nll_base_.mean();
  s.p_diff_rms = std::sqrt(sum_p_diff2_ / static_cast<double>(s.count));
  return s;
}

}  // namespace arle::eval
