// Reading gzip-compressed files (fixtures and assets are committed compressed).
#pragma once

#include <span>
#include <string>

#include "arle/core/status.h"

namespace arle::io {

// Returns the file's bytes, decompressed when it is gzip (magic 1f 8b), as is otherwise.
core::StatusOr<std::string> ReadMaybeGzipFile(const std::string& path);
// Decompresses gzip data held in memory. DataLoss when it is corrupt or truncated.
core::StatusOr<std::string> GunzipBytes(std::span<const uint8_t> data, const std::string& name);

}  // namespace arle::io
