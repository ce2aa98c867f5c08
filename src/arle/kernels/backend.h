// Kernel backend selection: the scalar reference (kernels/ref, the oracle) or the Highway SIMD
// kernels (kernels/cpu, runtime-dispatched to the best target the CPU supports).
#pragma once

namespace arle::kernels {

enum class Backend {
  kDefault,  // whatever DefaultBackend() says at call time
  kRef,      // plain scalar C++ (slow, the reference the fast kernels are tested against)
  kCpu,      // Highway SIMD with runtime dispatch
};

// The backend used for kDefault. Initially kCpu, or kRef when the environment variable
// ARLE_KERNELS=ref is set. Thread-safe.
Backend DefaultBackend();
// Changes the process-wide default (for tests and the --reference-kernels debug flag). Thread-safe.
void SetDefaultBackend(Backend backend);
// Returns `backend` unless it is kDefault, in which case DefaultBackend().
Backend ResolveBackend(Backend backend);
// "ref", "cpu", "default".
const char* BackendName(Backend backend);

}  // namespace arle::kernels
