// Pretraining corpus tokenization, windowing, ordering and the resumable cursor (see
// pretrain_data.h for the exact row -> window mapping).
#include "arle/train/pretrain_data.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string_view>
#include <utility>

#include "arle/core/random.h"
#include "arle/io/compressed.h"
#include "arle/io/json_fields.h"
#include "arle/train/jsonl.h"

namespace arle::train {
namespace {

std::string_view WithoutGz(std::string_view path) {
  if (path.ends_with(".gz")) path.remove_suffix(3);
  return path;
}

void AppendDocument(const tokenizer::Tokenizer& tok, std::string_view text,
                    std::vector<int32_t>* out) {
  const std::vector<int32_t> ids =
      tok.Encode(text, {.add_special_tokens = true, .parse_special = false});
  out->insert(out->end(), ids.begin(), ids.end());
  if (tok.eos_id()) out->push_back(*tok.eos_id());
}

// Uniform in [0, bound) without modulo bias (rejection), so permutations are exact everywhere.
uint64_t UniformBelow(core::Rng& rng, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do {
    x = rng.NextU64();
  } while (x >= limit);
  return x % bound;
}

}  // namespace

core::StatusOr<std::vector<int32_t>> TokenizeCorpus(const std::string& path,
                                                    const tokenizer::Tokenizer& tok) {
  const std::string_view kind = WithoutGz(path);
  std::vector<int32_t> tokens;
  if (kind.ends_with(".txt")) {
    ARLE_ASSIGN_OR_RETURN(std::string text, io::ReadMaybeGzipFile(path));
    AppendDocument(tok, text, &tokens);
  } else if (kind.ends_with(".jsonl")) {
    if (!tok.eos_id()) {
      return core::FailedPreconditionError(
          path + ": the tokenizer has no EOS token to separate the documents of a .jsonl corpus",
          "set eos_token in tokenizer_config.json, or train on a .txt file");
    }
    ARLE_ASSIGN_OR_RETURN(std::vector<JsonlLine> lines, ReadJsonlLines(path));
    for (const JsonlLine& line : lines) {
      const std::string where = path + ":" + std::to_string(line.number);
      ARLE_ASSIGN_OR_RETURN(nlohmann::json record, io::ParseJsonObject(line.text, where));
      const auto it = record.find("text");
      if (it == record.end()) {
        return core::InvalidArgumentError(where + ": missing field \"text\"",
                                          "each line must be an object like {\"text\": \"...\"}");
      }
      if (!it->is_string()) {
        return core::InvalidArgumentError(where + ": field \"text\" must be a string, got " +
                                          std::string(io::JsonTypeName(*it)));
      }
      AppendDocument(tok, it->get_ref<const std::string&>(), &tokens);
    }
  } else {
    return core::InvalidArgumentError(path + ": unknown corpus format",
                                      "use a .txt file (one text) or .jsonl with a \"text\" field");
  }
  // A document list that encodes to nothing but separators is still empty data.
  if (tokens.empty() || (tok.eos_id() && tokens.size() == static_cast<size_t>(std::count(
                                              tokens.begin(), tokens.end(), *tok.eos_id())))) {
    return core::InvalidArgumentError(path + ": the corpus has no text");
  }
  return tokens;
}

core::StatusOr<PretrainData> PretrainData::FromTokens(std::vector<int32_t> tokens,
                                                      const PretrainDataOptions& o) {
  if (o.seq < 1 || o.batch_size < 1 || o.grad_accum < 1) {
    return core::InvalidArgumentError("seq, batch size and gradient accumulation must be >= 1");
  }
  if (!(o.eval_frac >= 0.0 && o.eval_frac < 1.0)) {
    return core::InvalidArgumentError("eval_frac must be in [0, 1), got " +
                                      std::to_string(o.eval_frac));
  }
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  const int64_t n_windows = n_tokens > 0 ? (n_tokens - 1) / o.seq : 0;
  if (n_windows < 1) {
    return core::InvalidArgumentError(
        "the data has " + std::to_string(n_tokens) + " tokens, fewer than one window of seq + 1 = " +
            std::to_string(o.seq + 1),
        "use more data or a smaller --seq");
  }
  PretrainData d;
  d.options_ = o;
  d.n_eval_ = static_cast<int64_t>(std::ceil(o.eval_frac * static_cast<double>(n_windows)));
  d.n_train_ = n_windows - d.n_eval_;
  if (d.n_train_ < 1) {
    return core::InvalidArgumentError("no training window is left after holding out " +
                                          std::to_string(d.n_eval_) + " of " +
                                          std::to_string(n_windows) + " for evaluation",
                                      "lower --eval-frac or use more data");
  }
  d.tokens_ = std::move(tokens);
  return d;
}

core::StatusOr<PretrainData> PretrainData::Load(const std::string& path,
                                                const tokenizer::Tokenizer& tokenizer,
                                                const PretrainDataOptions& options) {
  ARLE_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, TokenizeCorpus(path, tokenizer));
  auto data = FromTokens(std::move(tokens), options);
  if (!data.ok()) return data.status().WithContext(path);
  return data;
}

std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  // Rng seeds through splitmix64, so adjacent (seed, epoch) pairs still give unrelated streams.
  core::Rng rng(seed ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(epoch + 1)));
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(UniformBelow(rng, static_cast<uint64_t>(i + 1)));
    std::swap(order[i], order[j]);
  }
  return order;
}

const std::vector<int64_t>& PretrainData::Order(int64_t epoch) {
  if (order_epoch_ != epoch) {
    order_ = ShuffledOrder(n_train_, options_.seed, epoch);
    order_epoch_ = epoch;
  }
  return order_;
}

int64_t PretrainData::WindowAt(int64_t epoch, int64_t position) {
  ARLE_CHECK(position >= 0 && position < n_train_) << position;
  return options_.shuffle ? Order(epoch)[position] : position;
}

void PretrainData::FillRow(int64_t row, int64_t window, TokenBatch* batch) const {
  const int64_t seq = options_.seq;
  const int32_t* w = tokens_.data() + window * seq;
  std::copy(w, w + seq, batch->inputs.begin() + row * seq);
  std::copy(w + 1, w + seq + 1, batch->targets.begin() + row * seq);
  batch->windows[row] = window;
}

TokenBatch PretrainData::Next() {
  TokenBatch batch;
  batch.batch_size = options_.batch_size;
  batch.seq = options_.seq;
  batch.epoch = epoch_;
  batch.inputs.resize(batch.batch_size * batch.seq);
  batch.targets.resize(batch.batch_size * batch.seq);
  batch.windows.resize(batch.batch_size);
  for (int64_t b = 0; b < batch.batch_size; ++b) {
    FillRow(b, WindowAt(epoch_, position_), &batch);
    if (++position_ == n_train_) {
      position_ = 0;
      ++epoch_;
    }
  }
  return batch;
}

TokenBatch PretrainData::EvalBatch(int64_t first, int64_t count) const {
  ARLE_CHECK(first >= 0 && count >= 0 && first + count <= n_eval_) << first << "+" << count;
  TokenBatch batch;
  batch.batch_size = count;
  batch.seq = options_.seq;
  batch.inputs.resize(count * batch.seq);
  batch.targets.resize(count * batch.seq);
  batch.windows.resize(count);
  for (int64_t b = 0; b < count; ++b) FillRow(b, n_train_ + first + b, &batch);
  return batch;
}

std::string PretrainData::CursorJson() const {
  nlohmann::ordered_json j;
  j["epoch"] = epoch_;
  j["position"] = position_;
  j["n_train_windows"] = n_train_;
  j["seed"] = options_.seed;
  j["shuffle"] = options_.shuffle;
  return j.dump();
}

core::Status PretrainData::RestoreCursor(const std::string& json) {
  ARLE_ASSIGN_OR_RETURN(nlohmann::json j, io::ParseJsonObject(json, "data cursor"));
  io::JsonFields f(j, "data cursor");
  ARLE_ASSIGN_OR_RETURN(int64_t epoch, f.Int("epoch"));
  ARLE_ASSIGN_OR_RETURN(int64_t position, f.Int("position"));
  ARLE_ASSIGN_OR_RETURN(int64_t n_train, f.Int("n_train_windows"));
  ARLE_ASSIGN_OR_RETURN(bool shuffle, f.BoolOr("shuffle", false));
  const auto seed = j.find("seed");
  if (n_train != n_train_ || shuffle != options_.shuffle ||
      seed == j.end() || !seed->is_number_unsigned() || seed->get<uint64_t>() != options_.seed) {
    return core::InvalidArgumentError(
        "the data cursor was saved for different data or options (" + json + ")",
        "resume with the same data, --seq, --eval-frac, --shuffle and --seed");
  }
  if (epoch < 0 || position < 0 || position >= n_train_) {
    return core::InvalidArgumentError("data cursor out of range: " + json);
  }
  epoch_ = epoch;
  position_ = position;
  return core::OkStatus();
}

}  // namespace arle::train
