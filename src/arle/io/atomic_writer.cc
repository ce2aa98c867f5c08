// Streaming temp-file + rename writer.
#include "arle/io/atomic_writer.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

namespace arle::io {
namespace {

// Distinguishes temp files of concurrent writers in one process (the pid alone does not).
std::atomic<uint64_t> g_temp_counter{0};

}  // namespace

core::StatusOr<AtomicFileWriter> AtomicFileWriter::Create(const std::string& path) {
  AtomicFileWriter writer;
  writer.path_ = path;
  writer.tmp_path_ = path + ".tmp." + std::to_string(::getpid()) + "." +
                     std::to_string(g_temp_counter.fetch_add(1));
  writer.file_ = std::fopen(writer.tmp_path_.c_str(), "wb");
  if (writer.file_ == nullptr) {
    return core::IoError(writer.tmp_path_ + ": cannot create: " + std::strerror(errno));
  }
  std::setvbuf(writer.file_, nullptr, _IOFBF, size_t{1} << 20);
  return writer;
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : file_(std::exchange(other.file_, nullptr)),
      path_(std::move(other.path_)),
      tmp_path_(std::move(other.tmp_path_)),
      size_(std::exchange(other.size_, 0)) {}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    Abandon();
    file_ = std::exchange(other.file_, nullptr);
    path_ = std::move(other.path_);
    tmp_path_ = std::move(other.tmp_path_);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

AtomicFileWriter::~AtomicFileWriter() { Abandon(); }

void AtomicFileWriter::Abandon() {
  if (file_ == nullptr) return;
  std::fclose(file_);
  file_ = nullptr;
  std::remove(tmp_path_.c_str());
}

core::Status AtomicFileWriter::Append(const void* data, size_t n) {
  if (file_ == nullptr) return core::FailedPreconditionError(path_ + ": writer is closed");
  if (n > 0 && std::fwrite(data, 1, n, file_) != n) {
    return core::IoError(tmp_path_ + ": write failed: " + std::strerror(errno));
  }
  size_ += n;
  return core::OkStatus();
}

core::Status AtomicFileWriter::AppendZeros(size_t n) {
  static constexpr char kZeros[64] = {};
  while (n > 0) {
    const size_t chunk = n < sizeof(kZeros) ? n : sizeof(kZeros);
    ARLE_RETURN_IF_ERROR(Append(kZeros, chunk));
    n -= chunk;
  }
  return core::OkStatus();
}

core::Status AtomicFileWriter::Commit() {
  if (file_ == nullptr) return core::FailedPreconditionError(path_ + ": writer is closed");
  const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const int flush_errno = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) {
    std::remove(tmp_path_.c_str());
    return core::IoError(path_ + ": write failed: " + std::strerror(flush_errno));
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp_path_.c_str());
    return core::IoError(path_ + ": cannot rename into place: " + std::strerror(err));
  }
  return core::OkStatus();
}

}  // namespace arle::io
