// UTF-8 helpers and the GPT-2 byte-level alphabet.
#include "arle/tokenizer/unicode.h"

#include <array>

namespace arle::tokenizer {
namespace {

// Result of examining the sequence at the start of a buffer.
struct SeqInfo {
  int valid_len = 0;    // > 0: a complete well-formed sequence of that length
  int invalid_len = 0;  // > 0: a maximal ill-formed subpart of that length (>= 1)
  bool incomplete = false;  // the buffer ends inside a possibly valid sequence
};

SeqInfo Examine(std::string_view s) {
  SeqInfo info;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  uint8_t b0 = p[0];
  if (b0 < 0x80) {
    info.valid_len = 1;
    return info;
  }
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    info.invalid_len = 1;
    return info;
  }
  for (int i = 1; i < need; ++i) {
    if (static_cast<size_t>(i) >= n) {
      info.incomplete = true;
      info.invalid_len = i;
      return info;
    }
    uint8_t b = p[i];
    uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      info.invalid_len = i;
      return info;
    }
  }
  info.valid_len = need;
  return info;
}

std::array<uint32_t, 256> BuildByteTable() {
  std::array<uint32_t, 256> table{};
  std::array<bool, 256> direct{};
  for (int b = '!'; b <= '~'; ++b) direct[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) table[b] = direct[b] ? static_cast<uint32_t>(b) : next++;
  return table;
}

const std::array<uint32_t, 256>& ByteTable() {
  static const std::array<uint32_t, 256> table = BuildByteTable();
  return table;
}

const std::array<int16_t, 324>& ReverseTable() {
  static const std::array<int16_t, 324> table = [] {
    std::array<int16_t, 324> t;
    t.fill(-1);
    const auto& fwd = ByteTable();
    for (int b = 0; b < 256; ++b) t[fwd[b]] = static_cast<int16_t>(b);
    return t;
  }();
  return table;
}

}  // namespace

int Utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  return Examine(s).valid_len;
}

size_t Utf8SettledPrefix(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    SeqInfo info = Examine(s.substr(i));
    if (info.incomplete) return i;
    i += info.valid_len > 0 ? info.valid_len : info.invalid_len;
  }
  return i;
}

void AppendUtf8Lossy(std::string_view s, std::string* out) {
  size_t i = 0;
  size_t run_start = 0;  // start of the pending run of valid bytes
  while (i < s.size()) {
    SeqInfo info = Examine(s.substr(i));
    if (info.valid_len > 0) {
      i += info.valid_len;
      continue;
    }
    out->append(s.substr(run_start, i - run_start));
    out->append("\xEF\xBF\xBD");
    i += info.invalid_len;
    run_start = i;
  }
  out->append(s.substr(run_start));
}

std::string Utf8Lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  AppendUtf8Lossy(s, &out);
  return out;
}

void AppendCodePoint(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t DecodeCodePoint(std::string_view s, int len) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  switch (len) {
    case 1:
      return p[0];
    case 2:
      return ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    case 3:
      return ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    default:
      return ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) |
             (p[3] & 0x3Fu);
  }
}

uint32_t ByteToCodePoint(uint8_t b) { return ByteTable()[b]; }

int CodePointToByte(uint32_t cp) {
  if (cp >= 324) return -1;
  return ReverseTable()[cp];
}

std::string BytesToByteLevel(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) AppendCodePoint(ByteToCodePoint(static_cast<uint8_t>(c)), &out);
  return out;
}

bool ByteLevelToBytes(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size()) {
    int len = Utf8SequenceLength(s.substr(i));
    if (len == 0) return false;
    int b = CodePointToByte(DecodeCodePoint(s.substr(i), len));
    if (b < 0) return false;
    out->push_back(static_cast<char>(b));
    i += len;
  }
  return true;
}

int ParseByteToken(std::string_view t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int h = hex(t[3]), l = hex(t[4]);
  if (h < 0 || l < 0) return -1;
  return h * 16 + l;
}

}  // namespace arle::tokenizer
