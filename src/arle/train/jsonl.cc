// JSON Lines reading (see jsonl.h).
#include "arle/train/jsonl.h"

#include "arle/io/compressed.h"

namespace arle::train {

core::StatusOr<std::vector<JsonlLine>> ReadJsonlLines(const std::string& path) {
  ARLE_ASSIGN_OR_RETURN(std::string bytes, io::ReadMaybeGzipFile(path));
  return SplitJsonlLines(bytes);
}

std::vector<JsonlLine> SplitJsonlLines(std::string_view bytes) {
  std::vector<JsonlLine> lines;
  std::string_view rest(bytes);
  int64_t number = 0;
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    lines.push_back({number, std::string(line)});
  }
  return lines;
}

}  // namespace arle::train
