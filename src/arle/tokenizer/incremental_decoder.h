// IncrementalDecoder: turns a stream of token ids into text one id at a time without ever emitting
// a partial UTF-8 character (multi-byte characters split over byte-level or <0xNN> tokens).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "arle/tokenizer/tokenizer.h"

namespace arle::tokenizer {

// The concatenation of every Push() result and the final Flush() equals
// tokenizer.Decode(all ids, skip_special). Not thread-safe (one decoder per stream); the tokenizer
// must outlive it.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(tokenizer), skip_special_(skip_special) {}

  // Treats `context` (the prompt) as already decoded, so the next Push continues that stream
  // instead of starting one: a SentencePiece "▁word" right after a prompt keeps its space (as
  // decoding prompt + output together would). Produces no text. Call before the first Push.
  void Continue(std::span<const int32_t> context);
  // Feeds one id. Returns the text completed by it: complete UTF-8 characters, with byte sequences
  // that can no longer become valid replaced by U+FFFD; possibly empty. Bytes of a character still
  // in progress stay buffered. Out-of-range ids are skipped, as in Decode.
  std::string Push(int32_t id);
  // Returns the buffered rest (an incomplete trailing sequence becomes U+FFFD) and starts a new
  // stream (the next Push is treated as the first token again).
  std::string Flush();
  // Bytes buffered waiting for the rest of a character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  Tokenizer::DecodeState state_;
  std::string pending_;
};

}  // namespace arle::tokenizer
