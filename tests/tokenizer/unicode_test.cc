// UTF-8 helpers: lossy repair (one U+FFFD per maximal ill-formed subpart, checked against Python's
// bytes.decode("utf-8", "replace") outputs listed with their inputs) and the byte-level alphabet.
#include "arle/tokenizer/unicode.h"

#include <gtest/gtest.h>

namespace arle::tokenizer {
namespace {

const std::string kR = "\xEF\xBF\xBD";

TEST(Unicode, LossyMatchesMaximalSubpartReplacement) {
  // Expected strings from CPython 3.11: b"...".decode("utf-8", "replace").
  EXPECT_EQ(Utf8Lossy("abc"), "abc");
  EXPECT_EQ(Utf8Lossy("\xE2\x82\xAC"), "\xE2\x82\xAC");
  EXPECT_EQ(Utf8Lossy("\xE2\x82" "a"), kR + "a");
  EXPECT_EQ(Utf8Lossy("\xFF\xFE"), kR + kR);
  EXPECT_EQ(Utf8Lossy("\xED\xA0\x80"), kR + kR + kR);  // a surrogate
  EXPECT_EQ(Utf8Lossy("\xF0\x9F\x98"), kR);
  EXPECT_EQ(Utf8Lossy("\xC0\xAF"), kR + kR);
  EXPECT_EQ(Utf8Lossy("\xF4\x90\x80\x80"), kR + kR + kR + kR);
}

TEST(Unicode, SettledPrefixHoldsOnlyPossiblyValidTails) {
  EXPECT_EQ(Utf8SettledPrefix("ab\xE2\x82"), 2u);
  EXPECT_EQ(Utf8SettledPrefix("ab\xE2\x82\xAC"), 5u);
  EXPECT_EQ(Utf8SettledPrefix("ab\xE2" "a"), 4u);
  EXPECT_EQ(Utf8SettledPrefix("\xFF"), 1u);
  EXPECT_EQ(Utf8SettledPrefix("\xF0\x9F\x98"), 0u);
}

TEST(Unicode, ByteLevelAlphabetIsABijection) {
  // GPT-2's bytes_to_unicode: printable bytes map to themselves, space to U+0120 'Ġ'.
  EXPECT_EQ(ByteToCodePoint('a'), static_cast<uint32_t>('a'));
  EXPECT_EQ(ByteToCodePoint(' '), 0x120u);
  EXPECT_EQ(ByteToCodePoint('\n'), 0x10Au);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string back;
  ASSERT_TRUE(ByteLevelToBytes(BytesToByteLevel(all), &back));
  EXPECT_EQ(back, all);
  EXPECT_EQ(ParseByteToken("<0x0A>"), 10);
  EXPECT_EQ(ParseByteToken("<0xff>"), 255);
  EXPECT_EQ(ParseByteToken("<0x0G>"), -1);
}

}  // namespace
}  // namespace arle::tokenizer
