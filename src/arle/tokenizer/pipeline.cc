// Tokenizer pipeline stages: PCRE2 regexes, normalizers (NFC, Prepend, Replace), pre-tokenizers
// (Split, ByteLevel, Metaspace) and the per-token decoder chain, following Hugging Face tokenizers.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <uninorm.h>

#include <algorithm>
#include <cstdlib>

#include "arle/tokenizer/tokenizer_impl.h"
#include "arle/tokenizer/unicode.h"

namespace arle::tokenizer::internal {
namespace {

// Per-thread match data and context: generic (not tied to a pattern) so one serves all regexes.
struct MatchScratch {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  MatchScratch() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    // Patterns come from files; bound backtracking so a pathological pattern cannot hang Encode.
    pcre2_set_match_limit(context, 10'000'000);
    pcre2_set_depth_limit(context, 100'000);
  }
  ~MatchScratch() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
  }
};

MatchScratch& Scratch() {
  thread_local MatchScratch scratch;
  return scratch;
}

std::string ReplaceAll(std::string_view s, std::string_view pattern, std::string_view content) {
  std::string out;
  if (pattern.empty()) return std::string(s);
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(pattern, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(content);
    pos = hit + pattern.size();
  }
  out.append(s.substr(pos));
  return out;
}

struct Span {
  size_t start, end;
  bool is_match;
};

// Turns match positions into covering spans and applies a split behaviour.
void ApplyBehavior(std::string_view text, std::vector<Span>& spans, SplitBehavior behavior,
                   bool invert, std::vector<std::string>* out) {
  if (invert) {
    for (auto& s : spans) s.is_match = !s.is_match;
  }
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& s : spans) out->emplace_back(text.substr(s.start, s.end - s.start));
      break;
    case SplitBehavior::kRemoved:
      for (const auto& s : spans) {
        if (!s.is_match) out->emplace_back(text.substr(s.start, s.end - s.start));
      }
      break;
    case SplitBehavior::kContiguous: {
      std::vector<Span> merged;
      for (const auto& s : spans) {
        if (!merged.empty() && s.is_match && merged.back().is_match) {
          merged.back().end = s.end;
        } else {
          merged.push_back(s);
        }
      }
      for (const auto& s : merged) out->emplace_back(text.substr(s.start, s.end - s.start));
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      std::vector<Span> merged;
      bool previous_match = false;
      for (const auto& s : spans) {
        if (s.is_match && !previous_match && !merged.empty()) {
          merged.back().end = s.end;
        } else {
          merged.push_back(s);
        }
        previous_match = s.is_match;
      }
      for (const auto& s : merged) out->emplace_back(text.substr(s.start, s.end - s.start));
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      std::vector<Span> merged;  // built in reverse
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty()) {
          merged.back().start = it->start;
        } else {
          merged.push_back(*it);
        }
        previous_match = it->is_match;
      }
      for (auto it = merged.rbegin(); it != merged.rend(); ++it) {
        out->emplace_back(text.substr(it->start, it->end - it->start));
      }
      break;
    }
  }
}

void SplitRegex(const Regex& regex, std::string_view text, SplitBehavior behavior, bool invert,
                std::vector<std::string>* out) {
  std::vector<Span> spans;
  size_t last = 0;
  regex.ForEachMatch(text, [&](size_t start, size_t end) {
    if (start > last) spans.push_back({last, start, false});
    spans.push_back({start, end, true});
    last = end;
  });
  if (last < text.size()) spans.push_back({last, text.size(), false});
  ApplyBehavior(text, spans, behavior, invert, out);
}

void SplitLiteral(std::string_view literal, std::string_view text, SplitBehavior behavior,
                  std::vector<std::string>* out) {
  std::vector<Span> spans;
  size_t last = 0;
  size_t pos = 0;
  while (!literal.empty()) {
    size_t hit = text.find(literal, pos);
    if (hit == std::string_view::npos) break;
    if (hit > last) spans.push_back({last, hit, false});
    spans.push_back({hit, hit + literal.size(), true});
    last = pos = hit + literal.size();
  }
  if (last < text.size()) spans.push_back({last, text.size(), false});
  ApplyBehavior(text, spans, behavior, false, out);
}

// Code points that are NFC_Quick_Check=Yes with canonical combining class 0 (a conservative subset):
// text made only of these is already in NFC, since composition needs a following combining or
// "Maybe" character and reordering needs a non-zero combining class.
bool IsNfcInert(uint32_t cp) {
  return cp < 0x300 ||                      // Latin, Latin-1, Latin Extended-A/B, IPA, modifiers
         (cp >= 0x0400 && cp <= 0x0482) ||  // Cyrillic letters (combining marks start at U+0483)
         (cp >= 0x16A0 && cp <= 0x16F0) ||  // runes
         (cp >= 0x200B && cp <= 0x200F) ||  // zero-width space/joiners, direction marks
         (cp >= 0x2010 && cp <= 0x2027) ||  // dashes, quotes, bullets, ellipsis
         (cp >= 0x3000 && cp <= 0x3029) ||  // CJK symbols and punctuation (tone marks excluded)
         (cp >= 0x3041 && cp <= 0x3096) ||  // hiragana (voicing marks U+3099/309A excluded)
         (cp >= 0x30A1 && cp <= 0x30FA) ||  // katakana
         (cp >= 0x4E00 && cp <= 0x9FFF) ||  // CJK unified ideographs
         (cp >= 0xAC00 && cp <= 0xD7A3) ||  // Hangul syllables (trailing jamo are not inert)
         (cp >= 0xFE00 && cp <= 0xFE0F) ||  // variation selectors
         (cp >= 0xFF01 && cp <= 0xFF60) ||  // fullwidth forms
         (cp >= 0x1F300 && cp <= 0x1FAFF);  // emoji
}

// Length of the NFC-inert character at s[0], or 0 when it is not inert (or not valid UTF-8).
int InertLength(std::string_view s) {
  if (static_cast<unsigned char>(s[0]) < 0x80) return 1;
  int len = Utf8SequenceLength(s.substr(0, 4));
  if (len == 0 || !IsNfcInert(DecodeCodePoint(s, len))) return 0;
  return len;
}

std::string NormalizeWithLibunistring(std::string_view text) {
  size_t length = 0;
  uint8_t* result = u8_normalize(UNINORM_NFC, reinterpret_cast<const uint8_t*>(text.data()),
                                 text.size(), nullptr, &length);
  if (result == nullptr) return std::string(text);  // invalid UTF-8: leave as is
  std::string out(reinterpret_cast<const char*>(result), length);
  std::free(result);
  return out;
}

}  // namespace

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

core::StatusOr<std::shared_ptr<Regex>> Regex::Compile(const std::string& pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error,
                                   &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return core::InvalidArgumentError("regex /" + pattern + "/ does not compile at offset " +
                                      std::to_string(offset) + ": " +
                                      reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when unavailable
  std::shared_ptr<Regex> regex(new Regex());
  regex->code_ = code;
  return regex;
}

bool Regex::Next(std::string_view subject, size_t pos, size_t* start, size_t* end) const {
  MatchScratch& scratch = Scratch();
  int rc = pcre2_match(static_cast<const pcre2_code*>(code_),
                       reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), pos, 0,
                       scratch.data, scratch.context);
  if (rc < 0) return false;  // no match, or a resource limit: the rest stays one piece
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data);
  *start = ovector[0];
  *end = ovector[1];
  return *end >= *start && *end <= subject.size();
}

std::string NfcNormalize(std::string_view text) {
  // Only the stretches around non-inert characters go through libunistring. Cutting just before an
  // inert character is safe: it has combining class 0 and never composes with what precedes it.
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;        // text[0, copied) is already in `out`
  size_t prev_start = 0;    // start of the previous character (a possible composition base)
  size_t i = 0;
  while (i < text.size()) {
    int len = InertLength(text.substr(i));
    if (len > 0) {
      prev_start = i;
      i += len;
      continue;
    }
    // A non-inert stretch: from the character before it up to the next inert character.
    size_t start = std::max(copied, i > 0 ? prev_start : 0);
    size_t end = i;
    while (end < text.size() && InertLength(text.substr(end)) == 0) {
      int l = Utf8SequenceLength(text.substr(end, 4));
      end += l > 0 ? l : 1;
    }
    out.append(text.substr(copied, start - copied));
    out.append(NormalizeWithLibunistring(text.substr(start, end - start)));
    copied = end;
    prev_start = end;
    i = end;
  }
  out.append(text.substr(copied));
  return out;
}

std::string Normalize(const std::vector<NormalizerStep>& steps, std::string_view text) {
  std::string cur(text);
  for (const auto& step : steps) {
    switch (step.kind) {
      case NormalizerStep::Kind::kNfc:
        cur = NfcNormalize(cur);
        break;
      case NormalizerStep::Kind::kPrepend:
        if (!cur.empty()) cur = step.content + cur;
        break;
      case NormalizerStep::Kind::kReplace:
        cur = ReplaceAll(cur, step.pattern, step.content);
        break;
    }
  }
  return cur;
}

void PreTokenize(const std::vector<PreTokenizerStep>& steps, std::string_view text, bool at_start,
                 std::vector<std::string>* words) {
  std::vector<std::string> pieces;
  pieces.emplace_back(text);
  std::vector<std::string> next;
  for (const auto& step : steps) {
    next.clear();
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string& piece = pieces[i];
      switch (step.kind) {
        case PreTokenizerStep::Kind::kSplit:
          SplitRegex(*step.regex, piece, step.behavior, step.invert, &next);
          break;
        case PreTokenizerStep::Kind::kByteLevel:
          if (step.add_prefix_space && !piece.empty() && piece[0] != ' ') piece.insert(0, " ");
          if (step.regex) {
            SplitRegex(*step.regex, piece, SplitBehavior::kIsolated, false, &next);
          } else {
            next.push_back(std::move(piece));
          }
          break;
        case PreTokenizerStep::Kind::kMetaspace: {
          std::string replaced = ReplaceAll(piece, " ", step.replacement);
          bool prepend = step.prepend_scheme == PrependScheme::kAlways ||
                         (step.prepend_scheme == PrependScheme::kFirst && at_start && i == 0);
          if (prepend && !replaced.empty() && !replaced.starts_with(step.replacement)) {
            replaced.insert(0, step.replacement);
          }
          if (step.split) {
            SplitLiteral(step.replacement, replaced, SplitBehavior::kMergedWithNext, &next);
          } else {
            next.push_back(std::move(replaced));
          }
          break;
        }
      }
    }
    pieces.swap(next);
  }
  for (auto& piece : pieces) {
    if (!piece.empty()) words->push_back(std::move(piece));
  }
}

void DecodeToken(const std::vector<DecoderStep>& steps, std::string_view token,
                 Tokenizer::DecodeState* state, std::string* out) {
  if (state->strip_remaining < 0) {
    // Leading characters stripped from the whole stream: a Strip or Metaspace step that runs after
    // the tokens were fused into one string.
    state->strip_remaining = 0;
    bool fused = false;
    for (const auto& step : steps) {
      if (step.kind == DecoderStep::Kind::kFuse || step.kind == DecoderStep::Kind::kByteLevel) {
        fused = true;
      } else if (fused && step.kind == DecoderStep::Kind::kStrip) {
        state->strip_remaining = step.start;
      } else if (fused && step.kind == DecoderStep::Kind::kMetaspace && step.prepend) {
        state->strip_remaining = 1;
      }
    }
  }
  const bool first = state->n_decoded == 0;
  ++state->n_decoded;
  std::string cur(token);
  bool fused = false;
  std::string stream_strip_char;
  for (const auto& step : steps) {
    switch (step.kind) {
      case DecoderStep::Kind::kByteLevel: {
        std::string bytes;
        if (ByteLevelToBytes(cur, &bytes)) cur.swap(bytes);
        fused = true;
        break;
      }
      case DecoderStep::Kind::kReplace:
        cur = ReplaceAll(cur, step.pattern, step.content);
        break;
      case DecoderStep::Kind::kByteFallback: {
        int b = ParseByteToken(cur);
        if (b >= 0) cur.assign(1, static_cast<char>(b));
        break;
      }
      case DecoderStep::Kind::kFuse:
        fused = true;
        break;
      case DecoderStep::Kind::kStrip:
        if (fused) {
          stream_strip_char = step.content;
        } else {
          for (int k = 0; k < step.start && cur.starts_with(step.content); ++k) {
            cur.erase(0, step.content.size());
          }
          for (int k = 0; k < step.stop && cur.ends_with(step.content); ++k) {
            cur.erase(cur.size() - step.content.size());
          }
        }
        break;
      case DecoderStep::Kind::kMetaspace:
        cur = ReplaceAll(cur, step.content, " ");
        if (fused) {
          if (step.prepend) stream_strip_char = " ";
        } else if (first && step.prepend && cur.starts_with(' ')) {
          cur.erase(0, 1);
        }
        break;
    }
  }
  if (state->strip_remaining > 0 && !stream_strip_char.empty()) {
    while (state->strip_remaining > 0 && cur.starts_with(stream_strip_char)) {
      cur.erase(0, stream_strip_char.size());
      --state->strip_remaining;
    }
    if (!cur.empty()) state->strip_remaining = 0;  // the stream has started
  }
  out->append(cur);
}

}  // namespace arle::tokenizer::internal
