// SwiGLU, residual add and argmax.
#include "arle/kernels/elementwise.h"

#include <cmath>

#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels {

void SwiGlu(const core::Tensor& gate, const core::Tensor& up, core::Tensor& out,
            core::ThreadPool& pool) {
  for (const core::Tensor* t : {&gate, &up, static_cast<const core::Tensor*>(&out)}) {
    ARLE_CHECK(t->dtype() == core::DType::kF32 && t->is_contiguous() && t->numel() == gate.numel())
        << "SwiGlu: " << t->ToString() << " vs gate " << gate.ToString();
  }
  const float* g = gate.data_as<float>();
  const float* u = up.data_as<float>();
  float* o = out.data_as<float>();
  pool.ParallelFor(gate.numel(), /*work_per_item=*/8,
                   [&](int64_t begin, int64_t end) { ref::SwiGluRange(g, u, o, begin, end); });
}

void Add(const core::Tensor& a, const core::Tensor& b, core::Tensor& out) {
  for (const core::Tensor* t : {&a, &b, static_cast<const core::Tensor*>(&out)}) {
    ARLE_CHECK(t->dtype() == core::DType::kF32 && t->is_contiguous() && t->numel() == a.numel())
        << "Add: " << t->ToString() << " vs " << a.ToString();
  }
  const float* pa = a.data_as<float>();
  const float* pb = b.data_as<float>();
  float* po = out.data_as<float>();
  const int64_t n = a.numel();
  for (int64_t i = 0; i < n; ++i) po[i] = pa[i] + pb[i];
}

int64_t ArgMax(std::span<const float> values) {
  ARLE_CHECK(!values.empty()) << "ArgMax of an empty span";
  int64_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    // Comparisons with NaN are false, so a NaN never replaces a number; a number replaces a NaN.
    if (values[i] > values[best] || (std::isnan(values[best]) && !std::isnan(values[i]))) best = i;
  }
  return best;
}

}  // namespace arle::kernels
