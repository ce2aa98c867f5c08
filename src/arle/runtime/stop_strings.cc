// StopStringMatcher: first-completing stop-string match over the pending text, holding back only the
// longest suffix that is a proper prefix of a stop string.
#include "arle/runtime/stop_strings.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace arle::runtime {

core::Status ValidateStopStrings(const std::vector<std::string>& stop_strings, size_t max_count) {
  if (stop_strings.size() > max_count) {
    return core::InvalidArgumentError(
        fmt::format("at most {} stop strings are allowed, got {}", max_count, stop_strings.size()))
        .WithField("stop");
  }
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    if (stop_strings[i].empty()) {
      return core::InvalidArgumentError(fmt::format("stop string {} is empty", i)).WithField("stop");
    }
  }
  return core::OkStatus();
}

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings) {
  for (std::string& s : stop_strings) {
    if (s.empty()) continue;
    max_stop_len_ = std::max(max_stop_len_, s.size());
    stops_.push_back(std::move(s));
  }
}

StopStringMatcher::Result StopStringMatcher::Feed(std::string_view piece) {
  Result result;
  if (stopped()) return result;
  if (stops_.empty()) {
    result.text.assign(piece);
    return result;
  }
  // pending_ is the held-back suffix (shorter than the longest stop string) plus `piece`; any
  // match that began in already-emitted text would have kept that text held back.
  pending_.append(piece);
  // The occurrence that completes first (smallest end; tie: smallest start). For one stop string
  // its first occurrence is also its first to complete.
  size_t best_pos = std::string::npos;
  size_t best_end = std::string::npos;
  for (const std::string& stop : stops_) {
    size_t pos = pending_.find(stop);
    if (pos == std::string::npos) continue;
    size_t end = pos + stop.size();
    if (end < best_end || (end == best_end && pos < best_pos)) {
      best_pos = pos;
      best_end = end;
      matched_ = stop;
    }
  }
  if (best_pos != std::string::npos) {
    result.text = pending_.substr(0, best_pos);
    result.stopped = true;
    pending_.clear();
    return result;
  }
  // Longest suffix of pending_ that is a proper prefix of some stop string.
  size_t hold = 0;
  size_t max_hold = std::min(pending_.size(), max_stop_len_ - 1);
  for (size_t len = max_hold; len > 0; --len) {
    std::string_view suffix(pending_.data() + pending_.size() - len, len);
    bool is_prefix = std::any_of(stops_.begin(), stops_.end(), [&](const std::string& stop) {
      return stop.size() > len && std::string_view(stop).substr(0, len) == suffix;
    });
    if (is_prefix) {
      hold = len;
      break;
    }
  }
  result.text = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return result;
}

std::string StopStringMatcher::Flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace arle::runtime
