// Attention validation and dispatch, threaded over (token, head) pairs.
#include "arle/kernels/attention.h"

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels {

void Attention(const Context& ctx, const AttentionArgs& a) {
  ARLE_CHECK(a.q != nullptr && a.k != nullptr && a.v != nullptr && a.out != nullptr)
      << "Attention: null tensor";
  if (!ctx.is_cpu()) NoKernelFor("Attention", ctx);
  const core::Tensor &q = *a.q, &k = *a.k, &v = *a.v;
  core::Tensor& out = *a.out;
  const std::span<const int32_t> positions = a.positions;
  const float scale = a.scale;
  const auto f32_3d = [](const core::Tensor& t) {
    return t.rank() == 3 && t.dtype() == core::DType::kF32 && t.is_contiguous();
  };
  ARLE_CHECK(f32_3d(q) && f32_3d(k) && f32_3d(v) && f32_3d(out))
      << "Attention: q " << q.ToString() << " k " << k.ToString() << " v " << v.ToString()
      << " out " << out.ToString();
  const int64_t n_tok = q.dim(0), n_head = q.dim(1), head_dim = q.dim(2);
  const int64_t n_ctx = k.dim(0), n_head_kv = k.dim(1);
  ARLE_CHECK(n_head_kv > 0 && n_head % n_head_kv == 0 && k.dim(2) == head_dim)
      << "Attention: q " << q.ToString() << " k " << k.ToString();
  ARLE_CHECK(v.dim(0) == n_ctx && v.dim(1) == n_head_kv && v.dim(2) == head_dim)
      << "Attention: v " << v.ToString() << " k " << k.ToString();
  ARLE_CHECK(out.dim(0) == n_tok && out.dim(1) == n_head && out.dim(2) == head_dim)
      << "Attention: out " << out.ToString() << " q " << q.ToString();
  ARLE_CHECK_EQ(static_cast<int64_t>(positions.size()), n_tok);
  for (const int32_t p : positions) ARLE_CHECK(p >= 0 && p < n_ctx) << "position " << p;
  AttentionParams args;
  args.q = q.data_as<float>();
  args.k = k.data_as<float>();
  args.v = v.data_as<float>();
  args.out = out.data_as<float>();
  args.positions = positions.data();
  args.n_tok = n_tok;
  args.n_head = n_head;
  args.n_head_kv = n_head_kv;
  args.head_dim = head_dim;
  args.n_ctx = n_ctx;
  args.scale = scale;
  const bool use_ref = ctx.backend() == Backend::kRef;
  ctx.pool().ParallelFor(n_tok * n_head, /*work_per_item=*/2 * n_ctx * args.head_dim,
                         [&](int64_t begin, int64_t end) {
                           if (use_ref) {
                             ref::AttentionRows(args, begin, end);
                           } else {
                             cpu::AttentionRows(args, begin, end);
                           }
                         });
}

}  // namespace arle::kernels
