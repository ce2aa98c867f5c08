// Tokenizer: Hugging Face tokenizer.json and GGUF vocabularies (byte-level BPE as in Qwen2/3, GPT-2
// and Llama 3; SentencePiece-style BPE with "▁" and <0xNN> byte fallback as in Llama 2 and tok512)
// behind one interface: added/special tokens, normalizer, pre-tokenizer, BPE, post-processor, decoder.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::io {
class GgufFile;
}  // namespace arle::io

namespace arle::tokenizer {

namespace internal {
struct Parts;
}  // namespace internal

struct EncodeOptions {
  // Apply the post-processor (e.g. a TemplateProcessing BOS prefix, or add_bos_token).
  bool add_special_tokens = true;
  // Match special added tokens (such as "<|im_start|>") in the text. When false they are encoded as
  // plain text; non-special added tokens are still matched (Hugging Face semantics).
  bool parse_special = true;
};

// Token kinds (the GGUF `tokenizer.ggml.token_type` values).
enum class TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// A SentencePiece vocabulary merged by best piece score (llama2.c's `encode`, llama.cpp's "llama"
// GGUF model). Pieces use "▁" for spaces and "<0xNN>" for byte tokens.
struct SentencePieceVocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;     // same size as pieces
  std::vector<TokenType> types;  // empty (all normal, <0xNN> detected) or same size as pieces
  std::optional<int32_t> unk_id;
  std::optional<int32_t> bos_id;
  std::optional<int32_t> eos_id;
  bool add_bos = true;           // Encode with add_special_tokens prefixes BOS
  bool add_space_prefix = true;  // prepend "▁" to the text (and strip it when decoding)
};

// Thread safety: after construction all const methods may be called concurrently (the pre-token
// cache is internally locked).
class Tokenizer {
 public:
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Parses a tokenizer.json document. `source` names it in error messages. Errors: InvalidArgument
  // or DataLoss for malformed JSON or inconsistent vocabularies/merges, Unimplemented for component
  // types arle does not support (naming the type) and for non-BPE models (WordPiece, Unigram).
  static core::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json,
                                                             const std::string& source);
  // Reads a tokenizer.json or tokenizer.json.gz file.
  static core::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // Builds from GGUF `tokenizer.ggml.*` metadata: model "gpt2" (byte-level BPE, regex chosen by
  // `tokenizer.ggml.pre`) or "llama" (SentencePiece by score).
  static core::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const io::GgufFile& gguf);
  static core::StatusOr<std::unique_ptr<Tokenizer>> FromSentencePiece(const SentencePieceVocab& vocab,
                                                                      const std::string& source);

  // Returns the token ids of `text` (any bytes; invalid UTF-8 is encoded through byte tokens where
  // the model has them). Thread-safe.
  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Returns the text of `ids` as valid UTF-8: invalid byte sequences (from byte tokens) become
  // U+FFFD, one per maximal ill-formed subpart. Ids outside [0, vocab_size()) and unassigned ids are
  // skipped. With `skip_special`, special added tokens are skipped.
  std::string Decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // One past the largest token id (including added tokens).
  int32_t vocab_size() const;
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token's string as stored in the vocabulary ("Ġthe", "▁the", "<0x0A>"); empty when out of range.
  std::string_view IdToToken(int32_t id) const;
  // Special (control) tokens: added tokens with "special": true, GGUF control tokens.
  bool IsSpecial(int32_t id) const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  // Whether Encode with add_special_tokens prefixes bos_id().
  bool adds_bos() const;

  // Overrides from tokenizer_config.json / generation config. `add_bos` replaces the post-processor
  // prefix by [bos] (or nothing); REQUIRES ids < vocab_size(). Not thread-safe: call before sharing.
  void SetSpecialTokens(std::optional<int32_t> bos, std::optional<int32_t> eos,
                        std::optional<bool> add_bos);

  // Streaming decode: appends the raw bytes of `id` to `bytes` given the stream state. The
  // concatenation over a sequence, passed through lossy UTF-8 repair, equals Decode(). Used by
  // IncrementalDecoder.
  struct DecodeState {
    int64_t n_decoded = 0;     // tokens that reached the decoder chain (only 0 vs. more matters)
    int strip_remaining = -1;  // leading characters still to strip (-1: not initialized)
  };
  void DecodeAppend(int32_t id, bool skip_special, DecodeState* state, std::string* bytes) const;

 private:
  explicit Tokenizer(std::unique_ptr<internal::Parts> parts);
  static core::StatusOr<std::unique_ptr<Tokenizer>> Finish(std::unique_ptr<internal::Parts> parts);
  void EncodeText(std::string_view text, bool at_start, std::vector<int32_t>* ids) const;

  std::unique_ptr<internal::Parts> p_;
};

// Loads DIR/tokenizer.json (or tokenizer.json.gz) and applies DIR/tokenizer_config.json when present:
// bos_token, eos_token (strings or {"content": ...} objects) and add_bos_token.
core::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerForModelDir(const std::string& dir);

}  // namespace arle::tokenizer
