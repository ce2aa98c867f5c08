// The execution context every kernel takes: which backend runs the op (the scalar reference, the
// Highway CPU kernels or CUDA), the CPU thread pool or CUDA stream it runs on, and scratch memory
// for the op's temporaries. Ops have one form, `Op(const Context&, const OpArgs&)`, and each op's
// .cc file validates its arguments and dispatches on ctx.backend() in one place.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "arle/core/status.h"
#include "arle/core/thread_pool.h"

namespace arle::kernels {

enum class Backend {
  kRef,   // plain scalar C++ (slow; the oracle every fast kernel is tested against)
  kCpu,   // Highway SIMD with runtime dispatch to the best target the CPU supports
  kCuda,  // CUDA kernels on device memory (the `cuda` preset; see kernels/cuda/README)
};

// "ref", "cpu", "cuda".
const char* BackendName(Backend backend);

// Parses a backend name as ARLE_KERNELS and --kernels take it. InvalidArgument for anything other
// than ref|cpu|cuda (naming the accepted values); FailedPrecondition for cuda when this build has
// no CUDA backend or the machine no CUDA device.
core::StatusOr<Backend> ParseBackend(std::string_view name);

// The backend the environment variable ARLE_KERNELS names, kCpu when it is unset or empty. Errors
// are ParseBackend's, naming the variable.
core::StatusOr<Backend> BackendFromEnvironment();

// Whether this build has the CUDA backend compiled in (the `cuda` preset with nvcc found).
bool CudaCompiled();

// How MatMul multiplies f32 weights on the CPU backends (other weight dtypes, and CUDA, are
// unaffected). Both orders are batch-invariant (a row of y never depends on the other rows of x)
// and the same for every pool size; they differ from each other in the last bits.
enum class FloatMatMul {
  // Each y[t, o] one SIMD dot product over n_in (its lanes summed at the end): the serving
  // kernels, fastest for decode's few tokens, and the order the engine's log-probs come from.
  kDot,
  // The register-tiled GEMM of the backward kernels (matmul.h): each y[t, o] one chain of
  // multiply-adds over n_in ascending, the weight read through packed panels. Several times
  // faster with hundreds of tokens per call (training's forward).
  kGemm,
};

// Reusable memory for an op's temporaries (e.g. the 8-bit activations of a block-format matmul),
// kept between ops so a step allocates nothing once it has run once. Each of kSlots slots holds
// one region, grown (never shrunk) on demand. Not thread-safe: see Context.
class Scratch {
 public:
  static constexpr int kSlots = 4;
  // Returns at least `nbytes` bytes at slot `slot` (64-byte aligned, contents unspecified), valid
  // until the next Get of the same slot.
  char* Get(int slot, size_t nbytes);

 private:
  std::vector<char> slots_[kSlots];
};

// Where and how ops run. A CPU context borrows its pool (which must outlive it). Thread safety:
// one op at a time per Context (ops use its scratch); ops on different contexts may run at once.
class Context {
 public:
  // A ref or cpu context on `pool`. REQUIRES: backend is kRef or kCpu.
  static Context Cpu(Backend backend, core::ThreadPool& pool);
  // A CUDA context on the default stream of the current device; FailedPrecondition when the build
  // has no CUDA backend or there is no device.
  static core::StatusOr<Context> Cuda();

  Context(Context&&) noexcept = default;
  Context& operator=(Context&&) noexcept = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context();

  Backend backend() const { return backend_; }
  bool is_cpu() const { return backend_ != Backend::kCuda; }
  // The CPU pool. REQUIRES: is_cpu().
  core::ThreadPool& pool() const;
  // The cudaStream_t ops are launched on (null: the default stream). Null on CPU contexts.
  void* cuda_stream() const { return cuda_stream_; }
  Scratch& scratch() const { return *scratch_; }
  FloatMatMul float_matmul() const { return float_matmul_; }
  // kDot unless set (see FloatMatMul); the trainer sets kGemm on its own context.
  void set_float_matmul(FloatMatMul order) { float_matmul_ = order; }

 private:
  Context(Backend backend, core::ThreadPool* pool, void* stream);
  Backend backend_ = Backend::kCpu;
  core::ThreadPool* pool_ = nullptr;
  void* cuda_stream_ = nullptr;
  FloatMatMul float_matmul_ = FloatMatMul::kDot;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace arle::kernels
