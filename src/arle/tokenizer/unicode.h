// UTF-8 helpers for the tokenizer: code point iteration, lossy repair of invalid UTF-8 (one U+FFFD
// per maximal ill-formed subpart, as Rust's from_utf8_lossy), and GPT-2's byte <-> unicode table.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace arle::tokenizer {

// Returns the length (1-4) of the well-formed UTF-8 sequence starting at s[0], 0 when s is empty or
// the bytes there are not a complete well-formed sequence.
int Utf8SequenceLength(std::string_view s);

// How many leading bytes of `s` are "settled": bytes that form complete characters or are
// definitely invalid. An incomplete but still possibly valid sequence at the very end is not settled.
size_t Utf8SettledPrefix(std::string_view s);

// Code points in `s`, counting each byte that does not continue a sequence (the count Python's
// len() gives for valid UTF-8; OpenAI's text offsets use it).
inline int64_t Utf8CodePointCount(std::string_view s) {
  int64_t n = 0;
  for (const unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

// Appends `s` to `out`, replacing each maximal ill-formed subpart with U+FFFD. When `s` ends with an
// incomplete sequence it is replaced too (this is the end of the stream).
void AppendUtf8Lossy(std::string_view s, std::string* out);
std::string Utf8Lossy(std::string_view s);

// Appends the UTF-8 encoding of code point `cp` (REQUIRES cp <= 0x10FFFF).
void AppendCodePoint(uint32_t cp, std::string* out);

// GPT-2 byte-level alphabet: byte b <-> a printable code point (e.g. ' ' <-> U+0120 'Ġ').
uint32_t ByteToCodePoint(uint8_t b);
// The byte for code point `cp`, or -1 when `cp` is not in the alphabet.
int CodePointToByte(uint32_t cp);
// Returns `bytes` mapped through the byte-level alphabet.
std::string BytesToByteLevel(std::string_view bytes);
// Maps a byte-level string back to bytes. Returns false (leaving `out` partially appended) when a
// character is not in the alphabet.
bool ByteLevelToBytes(std::string_view s, std::string* out);

// Decodes the code point at s[0] of a well-formed sequence of `len` bytes.
uint32_t DecodeCodePoint(std::string_view s, int len);

// Parses "<0xNN>" (exactly, uppercase or lowercase hex). Returns the byte or -1.
int ParseByteToken(std::string_view token);

}  // namespace arle::tokenizer
