// Backend names, ARLE_KERNELS, and the kernel execution context.
#include "arle/kernels/context.h"

#include <cstdlib>
#include <string>

#include "arle/core/check.h"
#ifdef ARLE_HAVE_CUDA
#include "arle/kernels/cuda/cuda_ops.h"
#endif

namespace arle::kernels {

const char* BackendName(Backend backend) {
  switch (backend) {
    case Backend::kRef:
      return "ref";
    case Backend::kCpu:
      return "cpu";
    case Backend::kCuda:
      return "cuda";
  }
  return "?";
}

bool CudaCompiled() {
#ifdef ARLE_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

namespace {

core::Status CudaUsable() {
#ifdef ARLE_HAVE_CUDA
  if (cuda::DeviceCount() > 0) return core::OkStatus();
  return core::FailedPreconditionError("the CUDA backend found no CUDA device",
                                       "use ref or cpu on this machine");
#else
  return core::FailedPreconditionError(
      "this arle was built without the CUDA backend",
      "build with the `cuda` preset (cmake --preset cuda) where nvcc is installed");
#endif
}

}  // namespace

core::StatusOr<Backend> ParseBackend(std::string_view name) {
  if (name == "ref") return Backend::kRef;
  if (name == "cpu") return Backend::kCpu;
  if (name == "cuda") {
    ARLE_RETURN_IF_ERROR(CudaUsable());
    return Backend::kCuda;
  }
  return core::InvalidArgumentError("unknown kernel backend '" + std::string(name) + "'",
                                    "use one of ref, cpu, cuda");
}

core::StatusOr<Backend> BackendFromEnvironment() {
  const char* env = std::getenv("ARLE_KERNELS");
  if (env == nullptr || *env == '\0') return Backend::kCpu;
  auto backend = ParseBackend(env);
  if (!backend.ok()) return backend.status().WithContext("ARLE_KERNELS");
  return backend;
}

char* Scratch::Get(int slot, size_t nbytes) {
  ARLE_CHECK(slot >= 0 && slot < kSlots) << "scratch slot " << slot;
  std::vector<char>& region = slots_[slot];
  if (region.size() < nbytes + 63) region.resize(nbytes + 63);
  const auto address = reinterpret_cast<uintptr_t>(region.data());
  return region.data() + ((64 - address % 64) % 64);
}

Context::Context(Backend backend, core::ThreadPool* pool, void* stream)
    : backend_(backend), pool_(pool), cuda_stream_(stream), scratch_(std::make_unique<Scratch>()) {}

Context::~Context() = default;

Context Context::Cpu(Backend backend, core::ThreadPool& pool) {
  ARLE_CHECK(backend == Backend::kRef || backend == Backend::kCpu)
      << "Context::Cpu takes ref or cpu, not " << BackendName(backend);
  return Context(backend, &pool, nullptr);
}

core::StatusOr<Context> Context::Cuda() {
  ARLE_RETURN_IF_ERROR(CudaUsable());
#ifdef ARLE_HAVE_CUDA
  cuda::RegisterCudaMemory();
#endif
  return Context(Backend::kCuda, nullptr, nullptr);
}

core::ThreadPool& Context::pool() const {
  ARLE_CHECK(pool_ != nullptr) << "a " << BackendName(backend_) << " context has no CPU pool";
  return *pool_;
}

}  // namespace arle::kernels
