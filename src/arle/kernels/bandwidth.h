// Memory read bandwidth probe: `arle bench membw` and the decode roofline read a large buffer with
// this as fast as the CPU's widest vectors allow.
#pragma once

#include <cstdint>

namespace arle::kernels {

// The sum of p[0 .. n) in f32 (several vector accumulators; the order depends on the target).
// Returned so the reads cannot be optimized away; the value itself only matters to tests. Always
// the widest SIMD target: ARLE_KERNELS=ref must not turn a bandwidth probe into a scalar loop.
float ReadAll(const float* p, int64_t n);

}  // namespace arle::kernels
