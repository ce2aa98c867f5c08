// Activations layout (workspace or kept per layer) and the attention and MLP blocks: explicit
// sequences of kernel calls, each intermediate dumped under its llama.cpp name.
#include "arle/models/llama/llama_blocks.h"

#include "arle/kernels/elementwise.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/rmsnorm.h"
#include "arle/kernels/rope.h"

namespace arle::models::llama {
namespace {

// Floats per [n, width] slot, rounded up to 64 bytes.
int64_t Aligned(int64_t n_floats) { return (n_floats + 15) / 16 * 16; }

const core::Tensor* OrNull(const core::Tensor& t) { return t.empty() ? nullptr : &t; }

// Hands out consecutive [n, width] views of a buffer.
class Carver {
 public:
  Carver(float* base, int64_t n) : p_(base), n_(n) {}
  core::Tensor Take(int64_t width) {
    core::Tensor t(p_, core::DType::kF32, {n_, width});
    p_ += Aligned(n_ * width);
    return t;
  }
  float* position() const { return p_; }

 private:
  float* p_;
  int64_t n_;
};

}  // namespace

int64_t Activations::BufferBytes(Mode mode, const LlamaConfig& c, int64_t n) {
  const int64_t E = c.n_embd, QD = c.n_head * c.head_dim, KD = c.n_head_kv * c.head_dim;
  const int64_t F = c.n_ff, half = c.head_dim / 2;
  const bool keep = mode == Mode::kKeepAll;
  const int64_t n_sets = keep ? c.n_layer : 1;
  // Per set: workspace X, H, Q, K, V, ATT, G, U; kept: every field but x (the previous out):
  // 6 of width E, 4 of QD, 4 of KD (q/k_normed only with qk_norm), 3 of F.
  const int64_t per_set = keep ? Aligned(n * E) * 6 + Aligned(n * QD) * 4 + Aligned(n * KD) * 4 +
                                     Aligned(n * F) * 3
                               : Aligned(n * E) * 2 + Aligned(n * QD) * 2 +
                                     Aligned(n * KD) * 2 + Aligned(n * F) * 2;
  const int64_t shared = Aligned(n * E) * 3 + Aligned(n * half) * 2;  // embd, final x2, cos, sin
  return (n_sets * per_set + shared) * 4;
}

core::Status Activations::Reserve(int64_t n) {
  const LlamaConfig& c = config_;
  const int64_t E = c.n_embd, QD = c.n_head * c.head_dim, KD = c.n_head_kv * c.head_dim;
  const int64_t F = c.n_ff, half = c.head_dim / 2;
  const bool keep = mode_ == Mode::kKeepAll;
  const int64_t n_sets = keep ? c.n_layer : 1;
  if (n > capacity_) {
    ARLE_ASSIGN_OR_RETURN(buffer_, core::Buffer::TryAllocate(
                                       static_cast<size_t>(BufferBytes(mode_, c, n))));
    capacity_ = n;
  }
  n_ = n;
  Carver carve(buffer_.as<float>(), n);
  embd_ = carve.Take(E);
  cos_ = carve.Take(half);
  sin_ = carve.Take(half);
  final_rows_ = carve.Take(E);
  final_norm_ = carve.Take(E);
  layers_.assign(static_cast<size_t>(n_sets), LayerActivations{});
  if (!keep) {
    LayerActivations& a = layers_[0];
    a.x = a.ffn_inp = a.out = carve.Take(E);
    a.attn_norm = a.attn_out = a.ffn_norm = a.ffn_out = carve.Take(E);
    a.q = a.q_normed = a.q_rope = carve.Take(QD);
    a.k = a.k_normed = a.k_rope = carve.Take(KD);
    a.v = carve.Take(KD);
    a.att = carve.Take(QD);
    a.gate = a.swiglu = carve.Take(F);
    a.up = carve.Take(F);
    embd_ = a.x;  // the embedding is written straight into the residual stream
    ARLE_CHECK(carve.position() <= buffer_.as<float>() + buffer_.size() / 4) << "activation layout";
    return core::OkStatus();
  }
  for (int64_t l = 0; l < c.n_layer; ++l) {
    LayerActivations& a = layers_[l];
    a.x = l == 0 ? embd_ : layers_[l - 1].out;
    a.attn_norm = carve.Take(E);
    a.q = carve.Take(QD);
    a.k = carve.Take(KD);
    a.v = carve.Take(KD);
    a.q_normed = c.qk_norm ? carve.Take(QD) : a.q;
    a.k_normed = c.qk_norm ? carve.Take(KD) : a.k;
    a.q_rope = carve.Take(QD);
    a.k_rope = carve.Take(KD);
    a.att = carve.Take(QD);
    a.attn_out = carve.Take(E);
    a.ffn_inp = carve.Take(E);
    a.ffn_norm = carve.Take(E);
    a.gate = carve.Take(F);
    a.up = carve.Take(F);
    a.swiglu = carve.Take(F);
    a.ffn_out = carve.Take(E);
    a.out = carve.Take(E);
  }
  ARLE_CHECK(carve.position() <= buffer_.as<float>() + buffer_.size() / 4) << "activation layout";
  return core::OkStatus();
}

void AttentionBlock(const kernels::Context& ctx, const LlamaConfig& c, const LayerWeights& w,
                    int64_t layer, LayerActivations& a, const core::Tensor& cos,
                    const core::Tensor& sin, const AttendFn& attend, TensorDump& dump) {
  const int64_t n = a.x.dim(0), hd = c.head_dim;
  const float eps = static_cast<float>(c.norm_eps);
  const std::string p = dump.enabled() ? "blk." + std::to_string(layer) + "." : std::string();
  // attn_norm = RmsNorm(x), fused into the q/k/v input pass (x stays intact).
  const kernels::InputRmsNorm attn_norm{&w.attn_norm, eps, &a.attn_norm};
  const kernels::MatMulOutput qkv[] = {
      {&w.wq, OrNull(w.bq), &a.q}, {&w.wk, OrNull(w.bk), &a.k}, {&w.wv, OrNull(w.bv), &a.v}};
  kernels::MatMul(ctx, {.x = &a.x, .outputs = qkv, .norm = &attn_norm});
  dump.Add(p + "attn_norm", a.attn_norm);
  dump.Add(p + "Qcur", a.q);
  dump.Add(p + "Kcur", a.k);
  dump.Add(p + "Vcur", a.v);
  if (c.qk_norm) {
    // Per-head norm: the rows are heads.
    const core::Tensor q_heads = a.q.Reshape({n * c.n_head, hd});
    const core::Tensor k_heads = a.k.Reshape({n * c.n_head_kv, hd});
    core::Tensor qn_heads = a.q_normed.Reshape({n * c.n_head, hd});
    core::Tensor kn_heads = a.k_normed.Reshape({n * c.n_head_kv, hd});
    kernels::RmsNorm(ctx, {.x = &q_heads, .w = &w.q_norm, .eps = eps, .y = &qn_heads});
    kernels::RmsNorm(ctx, {.x = &k_heads, .w = &w.k_norm, .eps = eps, .y = &kn_heads});
    dump.Add(p + "Qcur_normed", a.q_normed);
    dump.Add(p + "Kcur_normed", a.k_normed);
  }
  const core::Tensor qn3 = a.q_normed.Reshape({n, c.n_head, hd});
  const core::Tensor kn3 = a.k_normed.Reshape({n, c.n_head_kv, hd});
  core::Tensor q3 = a.q_rope.Reshape({n, c.n_head, hd});
  core::Tensor k3 = a.k_rope.Reshape({n, c.n_head_kv, hd});
  kernels::ApplyRope(ctx, {.x = &qn3, .cos = &cos, .sin = &sin, .out = &q3});
  kernels::ApplyRope(ctx, {.x = &kn3, .cos = &cos, .sin = &sin, .out = &k3});
  dump.Add(p + "Qcur_rope", a.q_rope);
  dump.Add(p + "Kcur_rope", a.k_rope);
  const core::Tensor v3 = a.v.Reshape({n, c.n_head_kv, hd});
  core::Tensor att3 = a.att.Reshape({n, c.n_head, hd});
  attend(layer, q3, k3, v3, att3);
  dump.Add(p + "kqv_out", a.att);
  const kernels::MatMulOutput o_proj{&w.wo, OrNull(w.bo), &a.attn_out};
  kernels::MatMul(ctx, {.x = &a.att, .outputs = {&o_proj, 1}});
  dump.Add(p + "attn_out", a.attn_out);
  kernels::Add(ctx, {.a = &a.x, .b = &a.attn_out, .out = &a.ffn_inp});
  dump.Add(p + "ffn_inp", a.ffn_inp);
}

void MlpBlock(const kernels::Context& ctx, const LlamaConfig& c, const LayerWeights& w,
              int64_t layer, LayerActivations& a, bool fused, TensorDump& dump) {
  const float eps = static_cast<float>(c.norm_eps);
  const std::string p = dump.enabled() ? "blk." + std::to_string(layer) + "." : std::string();
  const kernels::InputRmsNorm ffn_norm{&w.ffn_norm, eps, &a.ffn_norm};
  if (fused) {
    // ffn_norm, gate/up and SwiGLU in one pass: gate's storage receives the SwiGLU output.
    kernels::MatMulSwiGlu(ctx, {.x = &a.ffn_inp,
                                .gate = {&w.w_gate, OrNull(w.b_gate), &a.swiglu},
                                .up = {&w.w_up, OrNull(w.b_up), &a.up},
                                .norm = &ffn_norm});
    dump.Add(p + "ffn_norm", a.ffn_norm);
  } else {
    const kernels::MatMulOutput gate_up[] = {{&w.w_gate, OrNull(w.b_gate), &a.gate},
                                             {&w.w_up, OrNull(w.b_up), &a.up}};
    kernels::MatMul(ctx, {.x = &a.ffn_inp, .outputs = gate_up, .norm = &ffn_norm});
    dump.Add(p + "ffn_norm", a.ffn_norm);
    dump.Add(p + "ffn_gate", a.gate);
    dump.Add(p + "ffn_up", a.up);
    kernels::SwiGlu(ctx, {.gate = &a.gate, .up = &a.up, .out = &a.swiglu});
  }
  dump.Add(p + "ffn_swiglu", a.swiglu);
  const kernels::MatMulOutput down{&w.w_down, OrNull(w.b_down), &a.ffn_out};
  kernels::MatMul(ctx, {.x = &a.swiglu, .outputs = {&down, 1}});
  dump.Add(p + "ffn_out", a.ffn_out);
  kernels::Add(ctx, {.a = &a.ffn_inp, .b = &a.ffn_out, .out = &a.out});
  dump.Add(p + "l_out", a.out);
}

}  // namespace arle::models::llama
