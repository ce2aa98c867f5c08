// AtomicFileWriter: streams a file to a temporary sibling and renames it into place on Commit, so
// readers never see a partial file. The safetensors and GGUF writers use it because their outputs
// can be many GB and should not be assembled in memory first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "arle/core/status.h"

namespace arle::io {

class AtomicFileWriter {
 public:
  // Creates `path`.tmp.<pid>.<n> next to `path`. IoError naming the file when that fails.
  static core::StatusOr<AtomicFileWriter> Create(const std::string& path);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  // Removes the temporary file unless Commit succeeded.
  ~AtomicFileWriter();

  core::Status Append(const void* data, size_t n);
  core::Status Append(std::string_view data) { return Append(data.data(), data.size()); }
  core::Status AppendZeros(size_t n);
  // Bytes appended so far.
  uint64_t size() const { return size_; }
  // Flushes, fsyncs and renames the temporary file to the final path.
  core::Status Commit();

 private:
  AtomicFileWriter() = default;
  void Abandon();

  std::FILE* file_ = nullptr;
  std::string path_;
  std::string tmp_path_;
  uint64_t size_ = 0;
};

}  // namespace arle::io
