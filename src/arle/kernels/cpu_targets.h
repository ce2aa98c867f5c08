// Which SIMD targets the CPU kernels can run here: the public view of Highway's runtime dispatch
// (for `arle --doctor`, benchmarks and logs), so no caller outside kernels/ needs Highway.
#pragma once

#include <string>
#include <vector>

namespace arle::kernels {

// The Highway targets this build compiled that this CPU supports, best first ("AVX3_DL", "AVX3",
// "AVX2", "SSE4", ..., "EMU128").
std::vector<std::string> SupportedCpuTargets();

// The target the cpu backend's kernels dispatch to now (the best of SupportedCpuTargets()).
std::string ChosenCpuTarget();

}  // namespace arle::kernels
