// Tokenizer::FromSentencePiece: a SentencePiece vocabulary merged by best piece score, with "▁"
// for spaces, byte fallback and the Llama-2 style normalizer/decoder chain.
#include "arle/tokenizer/tokenizer.h"
#include "arle/tokenizer/tokenizer_impl.h"
#include "arle/tokenizer/unicode.h"

namespace arle::tokenizer {

core::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSentencePiece(
    const SentencePieceVocab& vocab, const std::string& source) {
  const size_t n = vocab.pieces.size();
  if (n == 0) return core::InvalidArgumentError(source + ": the vocabulary is empty");
  if (vocab.scores.size() != n || (!vocab.types.empty() && vocab.types.size() != n)) {
    return core::InvalidArgumentError(source + ": pieces, scores and token types differ in length");
  }
  auto p = std::make_unique<internal::Parts>();
  p->source = source;
  p->id_to_token = vocab.pieces;
  p->token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // Later duplicates do not replace earlier pieces (SentencePiece keeps the first).
    if (!vocab.pieces[i].empty()) p->token_to_id.emplace(vocab.pieces[i], static_cast<int32_t>(i));
    TokenType type = vocab.types.empty() ? TokenType::kNormal : vocab.types[i];
    if (type == TokenType::kControl || type == TokenType::kUserDefined) {
      internal::AddedToken t;
      t.id = static_cast<int32_t>(i);
      t.content = vocab.pieces[i];
      t.special = type == TokenType::kControl;
      if (!t.content.empty()) p->added.push_back(std::move(t));
    }
  }
  p->model.mode = internal::BpeModel::Mode::kScores;
  p->model.scores = vocab.scores;
  p->model.byte_fallback = true;
  p->model.unk_id = vocab.unk_id;
  const std::string kSpace = "\xE2\x96\x81";  // ▁
  if (vocab.add_space_prefix) {
    p->normalizers.push_back({internal::NormalizerStep::Kind::kPrepend, "", kSpace});
  }
  p->normalizers.push_back({internal::NormalizerStep::Kind::kReplace, " ", kSpace});
  internal::DecoderStep step;
  step.kind = internal::DecoderStep::Kind::kReplace;
  step.pattern = kSpace;
  step.content = " ";
  p->decoders.push_back(step);
  step = {};
  step.kind = internal::DecoderStep::Kind::kByteFallback;
  p->decoders.push_back(step);
  step = {};
  step.kind = internal::DecoderStep::Kind::kFuse;
  p->decoders.push_back(step);
  if (vocab.add_space_prefix) {
    step = {};
    step.kind = internal::DecoderStep::Kind::kStrip;
    step.content = " ";
    step.start = 1;
    p->decoders.push_back(step);
  }
  p->bos_id = vocab.bos_id;
  p->eos_id = vocab.eos_id;
  if (vocab.add_bos && vocab.bos_id) p->prefix_ids.push_back(*vocab.bos_id);
  for (auto id : {vocab.bos_id, vocab.eos_id, vocab.unk_id}) {
    if (id && (*id < 0 || static_cast<size_t>(*id) >= n)) {
      return core::InvalidArgumentError(source + ": special token id " + std::to_string(*id) +
                                        " is outside the vocabulary");
    }
  }
  p->is_special.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (!vocab.types.empty() && vocab.types[i] == TokenType::kControl) p->is_special[i] = 1;
  }
  if (vocab.types.empty()) {
    for (auto id : {vocab.bos_id, vocab.eos_id, vocab.unk_id}) {
      if (id) p->is_special[*id] = 1;
    }
  }
  auto tok = Finish(std::move(p));
  return tok;
}

}  // namespace arle::tokenizer
