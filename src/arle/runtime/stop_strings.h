// StopStringMatcher: matches per-request stop strings (OpenAI/vLLM `stop`) on detokenized text
// fed piece by piece, across piece boundaries, and never lets any part of a stop string out.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::runtime {

// Returns OK when every stop string is non-empty and there are at most `max_count` of them, else
// InvalidArgument naming the offending entry (Status::field() "stop").
core::Status ValidateStopStrings(const std::vector<std::string>& stop_strings,
                                 size_t max_count = 16);

// One matcher per generating sequence. The engine feeds each newly detokenized text piece; the
// matcher returns the text that is safe to stream now and whether a stop string matched.
//
// Semantics (as vLLM / OpenAI, stop string excluded from the output):
//  - The sequence stops at the first stop-string occurrence to *complete* in the generated text
//    (the smallest end offset; on a tie, the one starting first) and the output is cut right
//    before it. This is what a streaming matcher can decide without looking ahead, so the
//    result is the same however the text is split into pieces. E.g. stops {"abcd", "bc"} on
//    "xabcd" give "xa" (matched "bc"); stops {"ab", "abc"} on "zzabc" give "zz" (matched "ab").
//  - Text is held back only while it could still become a stop string: the longest suffix of the
//    not-yet-emitted text that is a proper prefix of some stop string. Everything before it is
//    returned at once.
//  - After a match the matcher is finished: further Feed() calls return no text.
//
// With no stop strings, Feed() returns its input unchanged and never stops.
// Thread safety: one thread at a time.
class StopStringMatcher {
 public:
  struct Result {
    std::string text;      // safe to emit now (may be empty)
    bool stopped = false;  // a stop string matched; `text` is the last text of the sequence
  };

  // Empty strings in `stop_strings` are ignored (ValidateStopStrings rejects them up front).
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  // Feeds the next detokenized piece. Returns the text to emit and whether the sequence stopped.
  Result Feed(std::string_view piece);

  // End of generation without a stop-string match (EOS, length): returns the held-back text,
  // which then belongs to the output. Returns "" after a match. Idempotent.
  std::string Flush();

  bool stopped() const { return matched_.has_value(); }
  // The stop string that matched (OpenAI/vLLM `stop_reason`), if any.
  const std::optional<std::string>& matched() const { return matched_; }
  // Bytes currently held back (for tests and accounting).
  size_t held_bytes() const { return pending_.size(); }

 private:
  std::vector<std::string> stops_;
  size_t max_stop_len_ = 0;
  std::string pending_;  // fed but not yet emitted; never contains a whole stop string
  std::optional<std::string> matched_;
};

}  // namespace arle::runtime
