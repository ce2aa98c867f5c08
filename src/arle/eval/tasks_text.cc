// The harness's string helpers of the task formats (tasks.h): Python's str.strip and
// str.capitalize, and hellaswag's preprocess, on UTF-8 bytes.
#include <unicase.h>  // libunistring: Unicode case mappings with casing contexts

#include <cstdlib>
#include <string>

#include "arle/eval/tasks.h"  // the declarations this file defines
#include "arle/tokenizer/unicode.h"

namespace arle::eval {
namespace {

// Python's str.isspace(): bidirectional class WS, B or S, or general category Zs.
bool IsPythonSpace(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

// The length of the whitespace character that `s` starts with, 0 when it starts with anything
// else (ill-formed bytes included: Python could not have decoded them).
size_t LeadingSpaceLength(std::string_view s) {
  const int len = tokenizer::Utf8SequenceLength(s);
  if (len == 0) return 0;
  return IsPythonSpace(tokenizer::DecodeCodePoint(s, len)) ? static_cast<size_t>(len) : 0;
}

size_t TrailingSpaceLength(std::string_view s) {
  // The last character starts at the last byte that is not a continuation byte.
  size_t start = s.size();
  while (start > 0 && s.size() - start < 4) {
    --start;
    if ((static_cast<unsigned char>(s[start]) & 0xC0) != 0x80) break;
  }
  const std::string_view last = s.substr(start);
  if (last.empty() || tokenizer::Utf8SequenceLength(last) != static_cast<int>(last.size())) {
    return 0;
  }
  return LeadingSpaceLength(last);
}

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

// re.sub(r"\[.*?\]", "", s): at each '[' the shortest run up to a ']' with no newline in it.
std::string RemoveBracketed(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '[') {
      const size_t close = s.find_first_of("]\n", i + 1);
      if (close != std::string_view::npos && s[close] == ']') {
        i = close + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

bool IsAscii(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

std::string TakeUnistring(uint8_t* buffer, size_t length) {
  std::string out(reinterpret_cast<const char*>(buffer), length);
  std::free(buffer);
  return out;
}

}  // namespace

std::string PythonStrip(std::string_view s) {
  while (size_t n = LeadingSpaceLength(s)) s.remove_prefix(n);
  while (size_t n = TrailingSpaceLength(s)) s.remove_suffix(n);
  return std::string(s);
}

std::string PythonRStrip(std::string_view s) {
  while (size_t n = TrailingSpaceLength(s)) s.remove_suffix(n);
  return std::string(s);
}

std::string PythonCapitalize(std::string_view s) {
  if (s.empty()) return std::string();
  if (IsAscii(s)) {
    std::string out(s);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
    return out;
  }
  // CPython's do_capitalize: the title-case mapping of the first character, then the lower-case
  // mapping of each following one, where a capital sigma becomes final sigma by its context in the
  // whole string (so the first character is the prefix context of the rest).
  int first_len = tokenizer::Utf8SequenceLength(s);
  if (first_len == 0) first_len = 1;  // ill-formed: keep the byte as it is
  const auto* first = reinterpret_cast<const uint8_t*>(s.data());
  const auto* rest = first + first_len;
  const size_t rest_len = s.size() - static_cast<size_t>(first_len);
  std::string out;
  size_t length = 0;
  if (uint8_t* t = u8_ct_totitle(
          first, static_cast<size_t>(first_len), unicase_empty_prefix_context,
          u8_casing_suffix_context(rest, rest_len), nullptr, nullptr, nullptr, &length)) {
    out = TakeUnistring(t, length);
  } else {
    out.assign(s.substr(0, static_cast<size_t>(first_len)));
  }
  if (rest_len == 0) return out;
  if (uint8_t* l = u8_ct_tolower(
          rest, rest_len, u8_casing_prefix_context(first, static_cast<size_t>(first_len)),
          unicase_empty_suffix_context, nullptr, nullptr, nullptr, &length)) {
    out += TakeUnistring(l, length);
  } else {
    out.append(s.substr(static_cast<size_t>(first_len)));
  }
  return out;
}

std::string HellaswagPreprocess(std::string_view text) {
  std::string t = PythonStrip(text);
  // "Brackets are artifacts of the WikiHow dataset portion of HellaSwag" (the harness's note).
  t = ReplaceAll(t, " [title]", ". ");
  t = RemoveBracketed(t);
  return ReplaceAll(t, "  ", " ");
}

}  // namespace arle::eval
