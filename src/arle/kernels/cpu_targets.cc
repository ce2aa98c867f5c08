// SupportedCpuTargets / ChosenCpuTarget over Highway's target list.
#include "arle/kernels/cpu_targets.h"

#include "arle/kernels/cpu/cpu_kernels.h"
#include "hwy/targets.h"

namespace arle::kernels {

std::vector<std::string> SupportedCpuTargets() {
  std::vector<std::string> names;
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    names.emplace_back(hwy::TargetName(target));
  }
  return names;
}

std::string ChosenCpuTarget() { return cpu::ChosenTargetName(); }

}  // namespace arle::kernels
