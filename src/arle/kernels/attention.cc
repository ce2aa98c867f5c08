// Attention validation and dispatch, threaded over (token, head) pairs; training attention
// (CausalAttention and its backward) likewise.
#include "arle/kernels/attention.h"

#include <algorithm>

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
#include "arle/kernels/ref/backward_layer_ref.h"
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

namespace {

bool Overlap(const core::Tensor& a, const core::Tensor& b) {
  const char* a0 = static_cast<const char*>(a.data());
  const char* b0 = static_cast<const char*>(b.data());
  return a.nbytes() > 0 && b.nbytes() > 0 && a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

// Checks the q/k/v operands of training attention and fills the shape fields.
CausalAttentionParams<float> CheckedCausalParams(const Context& ctx, const core::Tensor& q,
                                                 const core::Tensor& k, const core::Tensor& v,
                                                 int64_t n_seq, int64_t seq_len, float scale,
                                                 const char* op) {
  for (const core::Tensor* t : {&q, &k, &v}) {
    ARLE_CHECK(t->rank() == 3 && t->dtype() == core::DType::kF32 && t->is_contiguous())
        << op << ": " << t->ToString();
    CheckOnDevice(ctx, *t, op);
  }
  if (!ctx.is_cpu()) NoKernelFor(op, ctx);
  ARLE_CHECK(n_seq >= 0 && seq_len >= 0 && q.dim(0) == n_seq * seq_len)
      << op << ": q " << q.ToString() << " for " << n_seq << " sequences of " << seq_len;
  const int64_t n_head_kv = k.dim(1);
  ARLE_CHECK(n_head_kv > 0 && q.dim(1) % n_head_kv == 0 && k.dim(0) == q.dim(0) &&
             k.dim(2) == q.dim(2) && v.dim(0) == k.dim(0) && v.dim(1) == k.dim(1) &&
             v.dim(2) == k.dim(2))
      << op << ": q " << q.ToString() << " k " << k.ToString() << " v " << v.ToString();
  CausalAttentionParams<float> p;
  p.q = q.data_as<float>();
  p.k = k.data_as<float>();
  p.v = v.data_as<float>();
  p.n_seq = n_seq;
  p.seq_len = seq_len;
  p.n_head = q.dim(1);
  p.n_head_kv = n_head_kv;
  p.head_dim = q.dim(2);
  p.scale = scale;
  return p;
}

void CheckShapeAs(const core::Tensor& t, const core::Tensor& like, const Context& ctx,
                  const char* op) {
  ARLE_CHECK(t.dtype() == core::DType::kF32 && t.is_contiguous() && t.rank() == like.rank() &&
             std::ranges::equal(t.shape(), like.shape()))
      << op << ": " << t.ToString() << " for " << like.ToString();
  CheckOnDevice(ctx, t, op);
}

}  // namespace

void CausalAttention(const Context& ctx, const CausalAttentionArgs& a) {
  ARLE_CHECK(a.q != nullptr && a.k != nullptr && a.v != nullptr && a.out != nullptr &&
             a.lse != nullptr)
      << "CausalAttention: null tensor";
  CausalAttentionParams<float> p =
      CheckedCausalParams(ctx, *a.q, *a.k, *a.v, a.n_seq, a.seq_len, a.scale, "CausalAttention");
  CheckShapeAs(*a.out, *a.q, ctx, "CausalAttention out");
  const core::Tensor& lse = *a.lse;
  ARLE_CHECK(lse.dtype() == core::DType::kF32 && lse.is_contiguous() && lse.rank() == 2 &&
             lse.dim(0) == a.q->dim(0) && lse.dim(1) == p.n_head)
      << "CausalAttention lse: " << lse.ToString() << " for q " << a.q->ToString();
  CheckOnDevice(ctx, lse, "CausalAttention");
  for (const core::Tensor* in : {a.q, a.k, a.v}) {
    ARLE_CHECK(!Overlap(*in, *a.out) && !Overlap(*in, lse)) << "CausalAttention: output aliases";
  }
  p.out = a.out->data_as<float>();
  p.lse = lse.data_as<float>();
  const int64_t hd = p.head_dim;
  // Work per query row: about seq_len / 2 keys of two head_dim dot products.
  const int64_t work = std::max<int64_t>(1, p.seq_len * hd);
  if (ctx.backend() == Backend::kRef) {
    ctx.pool().ParallelFor(p.n_seq * p.n_head, p.seq_len * work, [&](int64_t begin, int64_t end) {
      ref::CausalAttentionUnits(p, begin, end);
    });
    return;
  }
  ctx.pool().ParallelForChunks(p.n_seq * p.n_head * p.seq_len, work, /*chunk=*/64,
                               [&](int64_t begin, int64_t end) {
                                 cpu::CausalAttentionItems(p, begin, end);
                               });
}

void CausalAttentionBackward(const Context& ctx, const CausalAttentionBackwardArgs& a) {
  ARLE_CHECK(a.q != nullptr && a.k != nullptr && a.v != nullptr && a.out != nullptr &&
             a.lse != nullptr && a.dout != nullptr && a.dq != nullptr && a.dk != nullptr &&
             a.dv != nullptr)
      << "CausalAttentionBackward: null tensor";
  const char* op = "CausalAttentionBackward";
  CausalAttentionParams<float> p =
      CheckedCausalParams(ctx, *a.q, *a.k, *a.v, a.n_seq, a.seq_len, a.scale, op);
  CheckShapeAs(*a.out, *a.q, ctx, op);
  CheckShapeAs(*a.dout, *a.q, ctx, op);
  CheckShapeAs(*a.dq, *a.q, ctx, op);
  CheckShapeAs(*a.dk, *a.k, ctx, op);
  CheckShapeAs(*a.dv, *a.v, ctx, op);
  const core::Tensor& lse = *a.lse;
  ARLE_CHECK(lse.dtype() == core::DType::kF32 && lse.is_contiguous() && lse.rank() == 2 &&
             lse.dim(0) == a.q->dim(0) && lse.dim(1) == p.n_head)
      << op << " lse: " << lse.ToString() << " for q " << a.q->ToString();
  CheckOnDevice(ctx, lse, op);
  for (const core::Tensor* g : {a.dq, a.dk, a.dv}) {
    for (const core::Tensor* t : {a.q, a.k, a.v, a.out, a.lse, a.dout,
                                  static_cast<const core::Tensor*>(a.dq),
                                  static_cast<const core::Tensor*>(a.dk),
                                  static_cast<const core::Tensor*>(a.dv)}) {
      ARLE_CHECK(t == g || !Overlap(*t, *g)) << op << ": gradient aliases";
    }
  }
  p.out = a.out->data_as<float>();  // read only by the backward
  p.lse = lse.data_as<float>();
  p.dout = a.dout->data_as<float>();
  p.dq = a.dq->data_as<float>();
  p.dk = a.dk->data_as<float>();
  p.dv = a.dv->data_as<float>();
  const bool use_ref = ctx.backend() == Backend::kRef;
  // Work per unit: group * seq_len^2 / 2 pairs of 5 head_dim multiply-adds.
  const int64_t work = std::max<int64_t>(1, p.n_head / p.n_head_kv * p.seq_len * p.seq_len / 2 *
                                                5 * p.head_dim);
  ctx.pool().ParallelForChunks(p.n_seq * p.n_head_kv, work, /*chunk=*/1,
                               [&](int64_t begin, int64_t end) {
                                 use_ref ? ref::CausalAttentionBackwardUnits(p, begin, end)
                                         : cpu::CausalAttentionBackwardUnits(p, begin, end);
                               });
}

}  // namespace arle::kernels
