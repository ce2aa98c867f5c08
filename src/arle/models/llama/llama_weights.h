// Llama-family weights: views of every tensor the forward reads, bound by Hugging Face name and checked
// for presence, dtype and shape; plus the name getters for safetensors directories and GGUF files.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/status.h"
#include "arle/core/tensor.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/model.h"

namespace arle::models::llama {

// Returns the tensor with a Hugging Face name ("model.layers.0.self_attn.q_proj.weight"), or
// NotFound when the source has no such tensor.
using TensorGetter = std::function<core::StatusOr<core::Tensor>(const std::string& hf_name)>;

struct LayerWeights {
  core::Tensor attn_norm;                  // [n_embd]
  core::Tensor wq, wk, wv, wo;             // [n_head*hd, n_embd], [n_kv*hd, n_embd] x2, [n_embd, n_head*hd]
  core::Tensor bq, bk, bv, bo;             // biases (empty unless attention_bias)
  core::Tensor q_norm, k_norm;             // [head_dim] (empty unless qk_norm)
  core::Tensor ffn_norm;                   // [n_embd]
  core::Tensor w_gate, w_up, w_down;       // [n_ff, n_embd] x2, [n_embd, n_ff]
  core::Tensor b_gate, b_up, b_down;       // biases (empty unless mlp_bias)
};

// The same type serves inference and training: the tensors are views into whatever `owner`
// keeps alive, either the mapped file (read-only, as stored) or owned f32 buffers that an
// optimizer may write (OwnedF32Copy).
struct ModelWeights {
  core::Tensor embed;     // [n_vocab, n_embd]
  std::vector<LayerWeights> layers;
  core::Tensor out_norm;  // [n_embd]
  core::Tensor lm_head;   // [n_vocab, n_embd]; the embedding itself when tied
  std::shared_ptr<void> owner;  // keeps the tensors' memory alive
  bool writable = false;        // the tensors are owned buffers, not a mapped file
};

// Calls fn(hf_name, tensor) for every tensor of `w` (a tied LM head once, as the embedding).
void ForEachWeight(const ModelWeights& w,
                   const std::function<void(const std::string& hf_name, const core::Tensor&)>& fn);

// The same walk over writable weights (a trainer's parameters and their gradients).
void ForEachMutableWeight(ModelWeights& w,
                          const std::function<void(const std::string& hf_name, core::Tensor&)>& fn);

// Writes `update` into the writable weights `w` (Model::SetWeights): each of w's tensors (by
// ForEachWeight's names) exactly once, same shape, contiguous f32, f16 or bf16. Every tensor is
// checked before the first write. Errors: FailedPrecondition when `w` is not writable,
// InvalidArgument naming the duplicate, missing, unknown or mis-shaped tensor.
core::Status CopyWeightsFrom(std::span<const NamedWeight> update, ModelWeights& w);

// An owned, writable f32 copy of every tensor (exact for f32/f16/bf16; block formats are
// dequantized), with a tied head still tied: the weights a trainer updates in place.
core::StatusOr<ModelWeights> OwnedF32Copy(const ModelWeights& w);

// Binds and validates every tensor `config` calls for. Errors name the tensor, what was expected
// and `source` (the file or directory): NotFound for a missing tensor, InvalidArgument for a wrong
// shape, Unimplemented for a dtype the kernels do not multiply (f32/f16/bf16 and the GGUF block
// formats of kernels/quant.h are; 1-D tensors must be float).
core::StatusOr<ModelWeights> BindWeights(const LlamaConfig& config, const TensorGetter& get,
                                         const std::string& source);

// llama.cpp's GGUF tensor name for a Hugging Face name ("model.layers.3.mlp.up_proj.weight" ->
// "blk.3.ffn_up.weight"); empty when there is none.
std::string GgufNameForHf(const std::string& hf_name);

// Undoes convert_hf_to_gguf.py's permute() of llama q/k rows (which reorders rotate-half pairs
// into interleaved ones): `w` is [n_rows, n_cols] with n_rows = n_heads * head_dim as stored in
// the GGUF file; returns a copy in Hugging Face row order, same dtype. REQUIRES: plain dtype,
// head_dim even, n_rows == n_heads * head_dim.
core::Buffer UnpermuteLlamaQk(const core::Tensor& w, int64_t n_heads);

}  // namespace arle::models::llama
