// libFuzzer target for the safetensors reader: parses arbitrary bytes and touches the metadata and
// the first and last byte of every tensor view, so ASan catches any view that leaves the input.
#include <cstddef>
#include <cstdint>

#include "arle/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = arle::io::SafetensorsFile::Parse({data, size}, "fuzz-input");
  if (!file.ok()) return 0;
  uint64_t acc = 0;
  for (const auto& [key, value] : file->metadata()) acc += key.size() + value.size();
  for (const arle::io::SafetensorsEntry& entry : file->entries()) {
    auto tensor = file->GetTensor(entry.name);
    if (!tensor.ok() || entry.nbytes == 0) continue;
    const auto* p = static_cast<const uint8_t*>(tensor->data());
    acc += p[0] + p[entry.nbytes - 1] + static_cast<uint64_t>(tensor->numel());
  }
  volatile uint64_t sink = acc;
  (void)sink;
  return 0;
}
