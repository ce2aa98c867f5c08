// IncrementalDecoder: buffers raw decoded bytes and releases the settled UTF-8 prefix.
#include "arle/tokenizer/incremental_decoder.h"

#include "arle/tokenizer/unicode.h"

namespace arle::tokenizer {

std::string IncrementalDecoder::Push(int32_t id) {
  tokenizer_.DecodeAppend(id, skip_special_, &state_, &pending_);
  const size_t settled = Utf8SettledPrefix(pending_);
  if (settled == 0) return {};
  std::string out = Utf8Lossy(std::string_view(pending_).substr(0, settled));
  pending_.erase(0, settled);
  return out;
}

void IncrementalDecoder::Continue(std::span<const int32_t> context) {
  std::string discarded;
  for (int32_t id : context) {
    // The state settles once a token was decoded and the leading strip is done; decoding the rest
    // of a long prompt would not change it (the engine calls this under its lock, per sample).
    if (state_.n_decoded > 0 && state_.strip_remaining == 0) break;
    tokenizer_.DecodeAppend(id, skip_special_, &state_, &discarded);
    discarded.clear();
  }
}

std::string IncrementalDecoder::Flush() {
  std::string out = Utf8Lossy(pending_);
  pending_.clear();
  state_ = Tokenizer::DecodeState();
  return out;
}

}  // namespace arle::tokenizer
