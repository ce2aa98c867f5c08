// gzip decoding on zlib.
#include "arle/io/compressed.h"

#include <zlib.h>

#include "arle/core/file_util.h"

namespace arle::io {

core::StatusOr<std::string> GunzipBytes(std::span<const uint8_t> data, const std::string& name) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return core::InternalError("inflateInit2 failed");
  zs.next_in = const_cast<Bytef*>(data.data());
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char chunk[1 << 16];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof(chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return core::DataLossError(name + ": corrupt gzip data");
    }
    out.append(chunk, sizeof(chunk) - zs.avail_out);
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      return core::DataLossError(name + ": truncated gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

core::StatusOr<std::string> ReadMaybeGzipFile(const std::string& path) {
  ARLE_ASSIGN_OR_RETURN(std::string data, core::ReadFile(path));
  if (data.size() >= 2 && static_cast<uint8_t>(data[0]) == 0x1f &&
      static_cast<uint8_t>(data[1]) == 0x8b) {
    return GunzipBytes({reinterpret_cast<const uint8_t*>(data.data()), data.size()}, path);
  }
  return data;
}

}  // namespace arle::io
