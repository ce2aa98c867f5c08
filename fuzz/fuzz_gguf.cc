// libFuzzer target for the GGUF reader: parses arbitrary bytes and touches every metadata value and
// every byte range a tensor view claims, so ASan catches any view that leaves the input.
#include <cstddef>
#include <cstdint>

#include "arle/io/gguf.h"

namespace {

uint64_t Touch(const arle::io::GgufValue& v) {
  uint64_t acc = 0;
  if (const auto i = v.AsInt()) acc += static_cast<uint64_t>(*i);
  if (const auto f = v.AsFloat()) acc += *f != 0;
  if (const auto b = v.AsBool()) acc += *b;
  if (const std::string* s = v.AsString()) acc += s->size();
  if (const arle::io::GgufArray* a = v.AsArray()) {
    for (const arle::io::GgufValue& e : a->values) acc += Touch(e);
  }
  return acc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = arle::io::GgufFile::Parse({data, size}, "fuzz-input");
  if (!file.ok()) return 0;
  uint64_t acc = 0;
  for (const auto& [key, value] : file->metadata()) acc += Touch(value) + key.size();
  for (const arle::io::GgufTensorInfo& info : file->tensors()) {
    auto tensor = file->GetTensor(info.name);
    if (!tensor.ok() || tensor->numel() == 0) continue;
    const auto* p = static_cast<const uint8_t*>(tensor->data());
    const int64_t n = tensor->nbytes();
    acc += p[0] + p[n - 1];
  }
  volatile uint64_t sink = acc;
  (void)sink;
  return 0;
}
