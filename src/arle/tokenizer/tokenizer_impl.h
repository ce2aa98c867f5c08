// Internal to the tokenizer module: the parsed pipeline (normalizers, pre-tokenizers, BPE model,
// post-processor, decoders) that FromJson / FromGguf / FromSentencePiece fill and Tokenizer runs.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "arle/core/status.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::tokenizer::internal {

// Heterogeneous string hashing so maps keyed by std::string accept string_view lookups.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// A PCRE2 pattern compiled with UTF + UCP (+ JIT when available); invalid UTF-8 in subjects never
// matches rather than failing.
class Regex {
 public:
  ~Regex();
  // InvalidArgument naming the pattern and the PCRE2 error when it does not compile.
  static core::StatusOr<std::shared_ptr<Regex>> Compile(const std::string& pattern);
  // Calls fn(start, end) for each non-overlapping match, left to right (empty matches skipped).
  template <typename Fn>
  void ForEachMatch(std::string_view subject, Fn&& fn) const {
    size_t pos = 0;
    size_t start, end;
    while (pos <= subject.size() && Next(subject, pos, &start, &end)) {
      if (end > start) fn(start, end);
      pos = end > start ? end : start + 1;
    }
  }

 private:
  Regex() = default;
  bool Next(std::string_view subject, size_t pos, size_t* start, size_t* end) const;
  void* code_ = nullptr;  // pcre2_code_8*
};

struct NormalizerStep {
  enum class Kind { kNfc, kPrepend, kReplace };
  Kind kind = Kind::kNfc;
  std::string pattern;  // kReplace: the literal to find
  std::string content;  // kPrepend: the prefix; kReplace: the replacement
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
enum class PrependScheme { kAlways, kFirst, kNever };

struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel, kMetaspace };
  Kind kind = Kind::kSplit;
  std::shared_ptr<Regex> regex;  // kSplit, and kByteLevel with use_regex
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // kByteLevel
  std::string replacement;        // kMetaspace ("▁")
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  bool split = true;  // kMetaspace
};

struct DecoderStep {
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
  Kind kind = Kind::kByteLevel;
  std::string pattern;  // kReplace
  std::string content;  // kReplace: replacement; kStrip: the character; kMetaspace: replacement
  int start = 0;        // kStrip
  int stop = 0;         // kStrip
  bool prepend = true;  // kMetaspace: prepend_scheme != never
};

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// The BPE model: initial symbols (bytes through the byte-level alphabet, or UTF-8 characters with
// byte fallback / unk), then merges by rank (tokenizer.json merges) or by best merged-piece score.
struct BpeModel {
  enum class Mode { kRanks, kScores };
  Mode mode = Mode::kRanks;
  bool byte_level = false;  // words are raw bytes, symbols start as byte_ids
  bool byte_fallback = false;
  bool ignore_merges = false;
  bool fuse_unk = false;
  std::optional<int32_t> unk_id;
  // (left id << 32 | right id) -> (rank << 32 | merged id); kRanks only.
  std::unordered_map<uint64_t, uint64_t> merges;
  std::vector<float> scores;             // kScores: per id
  std::array<int32_t, 256> byte_ids{};   // byte-level: id of each byte's alphabet character (-1)
  std::array<int32_t, 256> fallback_ids{};  // id of "<0xNN>" (-1)

  // Appends the ids of one pre-token. `vocab` is the token-string map.
  void EncodeWord(std::string_view word, const TokenMap& vocab, std::vector<int32_t>* out) const;
};

// Pre-token -> ids cache, sharded by hash to keep lock contention low between threads.
class WordCache {
 public:
  bool Lookup(std::string_view word, std::vector<int32_t>* out) const;
  void Insert(std::string_view word, const std::vector<int32_t>& ids) const;

 private:
  static constexpr int kShards = 16;
  static constexpr size_t kMaxEntriesPerShard = 1 << 14;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  mutable std::array<Shard, kShards> shards_;
};

struct Parts {
  std::string source;  // file name for messages
  std::vector<std::string> id_to_token;
  TokenMap token_to_id;
  std::vector<uint8_t> is_special;  // per id
  std::vector<AddedToken> added;
  // Added-token matcher: for each first byte, indices into `added` by decreasing length.
  std::array<std::vector<int>, 256> added_by_first_byte;

  std::vector<NormalizerStep> normalizers;
  std::vector<PreTokenizerStep> pre_tokenizers;
  BpeModel model;
  std::vector<DecoderStep> decoders;
  std::vector<int32_t> prefix_ids;  // post-processor, with add_special_tokens
  std::vector<int32_t> suffix_ids;
  std::optional<int32_t> bos_id;
  std::optional<int32_t> eos_id;
  WordCache cache;
};

// Pipeline stages (pipeline.cc).
// Applies the normalizer steps to one text segment (the text between added tokens).
std::string Normalize(const std::vector<NormalizerStep>& steps, std::string_view text);
// Splits a normalized segment into pre-tokens (words in the model's input form).
void PreTokenize(const std::vector<PreTokenizerStep>& steps, std::string_view text, bool at_start,
                 std::vector<std::string>* words);
// Applies the per-token part of the decoder chain to `token`, appending bytes to `out`.
void DecodeToken(const std::vector<DecoderStep>& steps, std::string_view token,
                 Tokenizer::DecodeState* state, std::string* out);

// NFC through libunistring; returns the input unchanged when it is not valid UTF-8.
std::string NfcNormalize(std::string_view text);

// GPT-2 / Qwen2 / Llama 3 pre-tokenizer regexes.
inline constexpr const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace arle::tokenizer::internal
