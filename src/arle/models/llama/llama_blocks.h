// The Llama/Qwen3 layer as two blocks over explicit activations: the attention block
// (x -> ffn_inp) and the MLP block (ffn_inp -> out). An Activations value either reuses one
// workspace for every layer, its tensors aliased where the kernels allow in-place work (serving),
// or keeps every layer's tensors apart (training: the backward reads what the forward saved).
// The fused kernels leave their inputs intact in both modes; where a fused kernel overwrites a
// value a backward needs (gate/up before SwiGLU), the kept mode runs its unfused twins, which the
// kernel tests show to be bit-identical. Tensor names follow llama.cpp (blk.N.attn_norm, ...).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/status.h"
#include "arle/core/tensor.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/kernels/context.h"
#include "arle/models/llama/llama_weights.h"
#include "arle/models/tensor_dump.h"

namespace arle::models::llama {

// One layer's named activations for n tokens; all f32 [n, width] contiguous.
struct LayerActivations {
  core::Tensor x;           // [n, n_embd] the layer's input (the residual stream)
  core::Tensor attn_norm;   // [n, n_embd] RmsNorm(x)
  core::Tensor q, k, v;     // [n, n_head * hd], [n, n_head_kv * hd] x2: the projections
  core::Tensor q_normed;    // [n, n_head * hd] per-head RmsNorm(q) (qk_norm models; else q)
  core::Tensor k_normed;    // [n, n_head_kv * hd]
  core::Tensor q_rope;      // [n, n_head * hd] RoPE(q_normed)
  core::Tensor k_rope;      // [n, n_head_kv * hd]
  core::Tensor att;         // [n, n_head * hd] attention output, before o_proj
  core::Tensor attn_out;    // [n, n_embd] o_proj(att)
  core::Tensor ffn_inp;     // [n, n_embd] x + attn_out
  core::Tensor ffn_norm;    // [n, n_embd] RmsNorm(ffn_inp)
  core::Tensor gate, up;    // [n, n_ff] the projections, before SwiGLU
  core::Tensor swiglu;      // [n, n_ff] silu(gate) * up
  core::Tensor ffn_out;     // [n, n_embd] down(swiglu)
  core::Tensor out;         // [n, n_embd] ffn_inp + ffn_out: the next layer's x
};

class Activations {
 public:
  enum class Mode {
    kWorkspace,  // one set of buffers for every layer, aliased: x, ffn_inp and out are one
                 // tensor (updated in place), q_normed/q_rope are q, gate and swiglu are one
    kKeepAll,    // every layer's tensors kept apart, and layer l's out is layer l + 1's x
  };
  Activations(Mode mode, const LlamaConfig& config) : mode_(mode), config_(config) {}
  Mode mode() const { return mode_; }

  // Makes room for n tokens (grown, never shrunk) and lays out the views. ResourceExhausted when
  // memory is short.
  core::Status Reserve(int64_t n_tokens);
  // The bytes Reserve(n_tokens) allocates in `mode` (train::LlamaTrainer::EstimateMemory reads it).
  static int64_t BufferBytes(Mode mode, const LlamaConfig& config, int64_t n_tokens);
  // The bytes held now.
  int64_t buffer_bytes() const { return static_cast<int64_t>(buffer_.size()); }
  int64_t n_tokens() const { return n_; }
  // Layer l's activations. REQUIRES: Reserve was called.
  LayerActivations& layer(int64_t l) { return layers_[mode_ == Mode::kWorkspace ? 0 : l]; }
  core::Tensor& embd() { return embd_; }  // [n, n_embd] the embedding: layer 0's x
  // The RoPE tables of the step's positions, f32 [n, head_dim / 2].
  core::Tensor& rope_cos() { return cos_; }
  core::Tensor& rope_sin() { return sin_; }
  // Scratch for the final rows: [n, n_embd] x2 (gathered rows, their norm).
  core::Tensor& final_rows() { return final_rows_; }
  core::Tensor& final_norm() { return final_norm_; }

 private:
  Mode mode_;
  LlamaConfig config_;
  int64_t n_ = 0;           // tokens the views are laid out for
  int64_t capacity_ = 0;    // tokens the buffer has room for
  core::Buffer buffer_;
  std::vector<LayerActivations> layers_;
  core::Tensor embd_, cos_, sin_, final_rows_, final_norm_;
};

// Attends the step's roped queries to the keys and values of their sequences, storing this
// step's keys and values first (paged K/V): layer, q_rope [n, n_head, hd], k_rope and v
// [n, n_head_kv, hd] -> att [n, n_head, hd].
using AttendFn = std::function<void(int64_t layer, const core::Tensor& q3, const core::Tensor& k3,
                                    const core::Tensor& v3, core::Tensor& att3)>;

// x -> attn_norm -> q, k, v -> (q/k norm) -> RoPE -> attend -> o_proj -> ffn_inp = x + attn_out.
void AttentionBlock(const kernels::Context& ctx, const LlamaConfig& config,
                    const LayerWeights& w, int64_t layer, LayerActivations& a,
                    const core::Tensor& cos, const core::Tensor& sin, const AttendFn& attend,
                    TensorDump& dump);

// ffn_inp -> ffn_norm -> gate, up -> SwiGLU -> down -> out = ffn_inp + ffn_out. `fused` runs the
// gate/up/SwiGLU kernel (overwriting gate); otherwise the unfused twins keep gate and up.
void MlpBlock(const kernels::Context& ctx, const LlamaConfig& config, const LayerWeights& w,
              int64_t layer, LayerActivations& a, bool fused, TensorDump& dump);

}  // namespace arle::models::llama
