// Whole-file helpers: read into a string, write atomically (temp file + rename), path checks.
#pragma once

#include <string>
#include <string_view>

#include "arle/core/status.h"

namespace arle::core {

// Returns the file's bytes, or NotFound/IoError naming the file.
StatusOr<std::string> ReadFile(const std::string& path);
// Writes `data` to `path` through `path.tmp.<pid>` + rename, so readers never see a partial file.
Status WriteFileAtomic(const std::string& path, std::string_view data);
bool FileExists(const std::string& path);
bool IsDirectory(const std::string& path);
// Creates a directory and its parents (no error if it exists).
Status MakeDirs(const std::string& path);
// "a/b" + "c" -> "a/b/c".
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace arle::core
