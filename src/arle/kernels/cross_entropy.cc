// CrossEntropy validation and dispatch, threaded over rows.
#include "arle/kernels/cross_entropy.h"

#include <cmath>

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
#include "arle/kernels/ref/backward_linear_ref.h"

namespace arle::kernels {

void CrossEntropy(const Context& ctx, const CrossEntropyArgs& a) {
  ARLE_CHECK(a.logits != nullptr) << "CrossEntropy: null logits";
  core::Tensor& logits = *a.logits;
  ARLE_CHECK(logits.rank() == 2 && logits.dtype() == core::DType::kF32 && logits.is_contiguous())
      << "CrossEntropy logits: " << logits.ToString();
  const int64_t n_rows = logits.dim(0), n_vocab = logits.dim(1);
  ARLE_CHECK(static_cast<int64_t>(a.targets.size()) == n_rows &&
             static_cast<int64_t>(a.losses.size()) == n_rows)
      << "CrossEntropy: " << a.targets.size() << " targets and " << a.losses.size()
      << " losses for logits " << logits.ToString();
  ARLE_CHECK(a.row_scales.empty() || static_cast<int64_t>(a.row_scales.size()) == n_rows)
      << "CrossEntropy: " << a.row_scales.size() << " row scales for " << n_rows << " rows";
  ARLE_CHECK(a.temperature > 0 && std::isfinite(a.temperature))
      << "CrossEntropy: temperature " << a.temperature;
  for (int64_t r = 0; r < n_rows; ++r) {
    const int32_t t = a.targets[r];
    ARLE_CHECK(t == kIgnoreIndex || (t >= 0 && t < n_vocab))
        << "CrossEntropy: target " << t << " of row " << r << " outside [0, " << n_vocab << ")";
  }
  CheckOnDevice(ctx, logits, "CrossEntropy");
  if (!ctx.is_cpu()) NoKernelFor("CrossEntropy", ctx);
  if (n_rows == 0) return;
  ARLE_CHECK(n_vocab > 0) << "CrossEntropy: empty vocabulary";
  CrossEntropyParams<float> p;
  p.logits = logits.data_as<float>();
  p.targets = a.targets.data();
  p.losses = a.losses.data();
  p.n_rows = n_rows;
  p.n_vocab = n_vocab;
  p.grad_scale = a.grad_scale;
  p.row_scales = a.row_scales.empty() ? nullptr : a.row_scales.data();
  p.temperature = a.temperature;
  const bool use_ref = ctx.backend() == Backend::kRef;
  ctx.pool().ParallelFor(n_rows, /*work_per_item=*/8 * n_vocab, [&](int64_t begin, int64_t end) {
    if (use_ref) {
      ref::CrossEntropyRows(p, begin, end);
    } else {
      cpu::CrossEntropyRows(p, begin, end);
    }
  });
}

}  // namespace arle::kernels
