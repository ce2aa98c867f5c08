// ReadAll: the Highway reader (cpu/bandwidth_cpu.cc) behind an argument check.
#include "arle/kernels/bandwidth.h"

#include "arle/core/check.h"
#include "arle/kernels/cpu/cpu_kernels.h"

namespace arle::kernels {

float ReadAll(const float* p, int64_t n) {
  ARLE_CHECK(n >= 0 && (n == 0 || p != nullptr)) << "ReadAll: n " << n;
  return cpu::ReadAll(p, n);
}

}  // namespace arle::kernels
