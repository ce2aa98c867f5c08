// Pretraining data: a .txt or .jsonl corpus tokenized into one token stream, cut into windows of
// seq + 1 tokens, served as micro-batches in a fixed or seeded-shuffled order with a resumable
// cursor, and a held-out evaluation tail.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arle/core/status.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::train {

struct PretrainDataOptions {
  int64_t seq = 256;         // tokens per sequence (a window holds seq + 1: inputs and targets)
  int64_t batch_size = 1;    // B: sequences per micro-batch
  int64_t grad_accum = 1;    // micro-batches per optimizer step
  bool shuffle = false;
  uint64_t seed = 0;
  double eval_frac = 0.0;    // fraction of windows held out from the tail, in [0, 1)
};

// B windows of one micro-batch: inputs[b * seq + t] = window token t, targets[...] = token t + 1.
struct TokenBatch {
  int64_t batch_size = 0;
  int64_t seq = 0;
  std::vector<int32_t> inputs;   // [batch_size, seq]
  std::vector<int32_t> targets;  // [batch_size, seq]
  std::vector<int64_t> windows;  // [batch_size]: the window index of each row (for logs, tests)
  int64_t epoch = 0;             // the epoch of the first row
};

// Reads a corpus into one token stream.
//   .txt: the whole file is one document. .jsonl: one JSON object per non-blank line with a string
//   field "text"; each is one document. Any other extension: InvalidArgument.
//   Each document is encoded on its own (add_special_tokens on, so a BOS-adding tokenizer starts
//   every document with BOS; parse_special off, so text that spells "<|im_end|>" stays text) and
//   followed by the tokenizer's EOS id. A tokenizer without EOS is allowed for a single .txt
//   document only (FailedPrecondition for .jsonl).
// Errors name the file (and line for .jsonl): NotFound/IoError for unreadable files, DataLoss for
// a line that is not JSON, InvalidArgument for a line that is not an object or whose "text" is
// missing or not a string, and for a corpus with no tokens.
core::StatusOr<std::vector<int32_t>> TokenizeCorpus(const std::string& path,
                                                    const tokenizer::Tokenizer& tokenizer);

// The windows of a token stream and the order they are served in.
//   Window w covers tokens [w * seq, w * seq + seq], so consecutive windows share one token (the
//   target of the last position of w is the input of the first position of w + 1); n_windows =
//   (n_tokens - 1) / seq. The last n_eval = ceil(eval_frac * n_windows) windows (the tail of the
//   stream) are evaluation data, the first n_train = n_windows - n_eval are training data.
//   Training order: the micro-batch m of optimizer step k takes the B rows with global row numbers
//   r = (k * grad_accum + m) * B + b, b = 0..B-1; row r is in epoch r / n_train at position
//   r % n_train of that epoch's order, so a micro-batch may span two epochs and every training
//   window is served exactly once per epoch. The order is 0, 1, 2, ... without shuffle and a
//   Fisher-Yates permutation drawn from core::Rng seeded by (seed, epoch) with shuffle: a new
//   one each epoch, reproducible from (seed, epoch) alone.
// Thread safety: none.
class PretrainData {
 public:
  // InvalidArgument for seq, batch_size or grad_accum < 1, eval_frac outside [0, 1), and for a
  // stream shorter than one window or with no training window left after the evaluation tail.
  static core::StatusOr<PretrainData> FromTokens(std::vector<int32_t> tokens,
                                                 const PretrainDataOptions& options);
  // TokenizeCorpus + FromTokens (errors name the file).
  static core::StatusOr<PretrainData> Load(const std::string& path,
                                           const tokenizer::Tokenizer& tokenizer,
                                           const PretrainDataOptions& options);

  int64_t n_tokens() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t n_train_windows() const { return n_train_; }
  int64_t n_eval_windows() const { return n_eval_; }
  const PretrainDataOptions& options() const { return options_; }

  // The next training micro-batch; advances the cursor by batch_size rows.
  TokenBatch Next();
  // The training window served at `position` of `epoch`'s order. REQUIRES: 0 <= position < n_train.
  int64_t WindowAt(int64_t epoch, int64_t position);
  // Evaluation windows [first, first + count) of the tail as one batch of `count` rows (window
  // indices n_train + first, ...). REQUIRES: 0 <= first, first + count <= n_eval_windows().
  TokenBatch EvalBatch(int64_t first, int64_t count) const;

  // The cursor: rows served so far, as {"epoch": E, "position": P, "n_train_windows": N,
  // "seed": S, "shuffle": bool}. Restoring it continues with exactly the rows an uninterrupted run
  // would have served.
  std::string CursorJson() const;
  // InvalidArgument for malformed JSON or a cursor from different data or options (a different
  // window count, seed or shuffle setting).
  core::Status RestoreCursor(const std::string& json);
  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }

 private:
  PretrainData() = default;
  void FillRow(int64_t row, int64_t window, TokenBatch* batch) const;
  const std::vector<int64_t>& Order(int64_t epoch);

  PretrainDataOptions options_;
  std::vector<int32_t> tokens_;
  int64_t n_train_ = 0;
  int64_t n_eval_ = 0;
  int64_t epoch_ = 0;     // epoch of the next row
  int64_t position_ = 0;  // position of the next row in that epoch's order
  int64_t order_epoch_ = -1;
  std::vector<int64_t> order_;  // the shuffled order of order_epoch_ (shuffle only)
};

// The shuffled window order of `epoch` (exposed for tests): a permutation of [0, n).
std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace arle::train
