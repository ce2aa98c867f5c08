// Process-wide default kernel backend (env ARLE_KERNELS=ref|cpu).
#include "arle/kernels/backend.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace arle::kernels {
namespace {

Backend InitialBackend() {
  const char* env = std::getenv("ARLE_KERNELS");
  if (env != nullptr && std::strcmp(env, "ref") == 0) return Backend::kRef;
  return Backend::kCpu;
}

std::atomic<Backend>& DefaultSlot() {
  static std::atomic<Backend> slot{InitialBackend()};
  return slot;
}

}  // namespace

Backend DefaultBackend() { return DefaultSlot().load(std::memory_order_relaxed); }

void SetDefaultBackend(Backend backend) {
  DefaultSlot().store(backend == Backend::kDefault ? InitialBackend() : backend,
                      std::memory_order_relaxed);
}

Backend ResolveBackend(Backend backend) {
  return backend == Backend::kDefault ? DefaultBackend() : backend;
}

const char* BackendName(Backend backend) {
  switch (backend) {
    case Backend::kRef:
      return "ref";
    case Backend::kCpu:
      return "cpu";
    case Backend::kDefault:
      return "default";
  }
  return "?";
}

}  // namespace arle::kernels
