// ReadAll: dispatch to the Highway reader or the scalar reference.
#include "arle/kernels/bandwidth.h"

#include "arle/core/check.h"
#include "arle/kernels/cpu/cpu_kernels.h"

namespace arle::kernels {

float ReadAll(const float* p, int64_t n, Backend backend) {
  ARLE_CHECK(n >= 0 && (n == 0 || p != nullptr)) << "ReadAll: n " << n;
  if (ResolveBackend(backend) == Backend::kRef) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += p[i];
    return s;
  }
  return cpu::ReadAll(p, n);
}

}  // namespace arle::kernels
