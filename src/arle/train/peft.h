// LoRA adapters in Hugging Face PEFT's on-disk format (adapter_config.json +
// adapter_model.safetensors) and their merge into the base weights (W + (alpha / r) * B A), so a
// LoRA run's checkpoint is both a PEFT adapter and a plain, servable model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/status.h"
#include "arle/core/tensor.h"
#include "arle/io/safetensors.h"

namespace arle::train {

// One adapted linear layer: y = W x + (alpha / r) * B (A x).
struct LoraTarget {
  std::string weight_name;  // the base weight's HF name: "model.layers.0.self_attn.q_proj.weight"
  core::Tensor a;           // [r, in] f32, contiguous (PEFT's lora_A)
  core::Tensor b;           // [out, r] f32, contiguous (PEFT's lora_B)
};

struct LoraAdapter {
  int64_t r = 0;        // rank: A's rows, B's columns
  double alpha = 0.0;   // lora_alpha; the update is scaled by alpha / r
  // Written to adapter_config.json; PEFT loads the base model from it.
  std::string base_model_name_or_path;
  std::vector<LoraTarget> targets;
};

// PEFT's state-dict name of a target's A or B matrix: "model.layers.0.self_attn.q_proj.weight" ->
// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" (lora_B for `b`).
// REQUIRES: weight_name ends in ".weight".
std::string PeftLoraName(const std::string& weight_name, bool b);

// The module names PEFT's target_modules lists: the last component of each target's module
// ("q_proj"), sorted, without duplicates.
std::vector<std::string> PeftTargetModules(const LoraAdapter& adapter);

// adapter_config.json text as PEFT's LoraConfig.save_pretrained writes it: peft_type "LORA",
// task_type "CAUSAL_LM", r, lora_alpha, target_modules, lora_dropout 0, bias "none",
// base_model_name_or_path, fan_in_fan_out false, inference_mode true, and the remaining fields at
// PEFT's defaults (use_rslora/use_dora false, empty rank/alpha patterns, nulls).
std::string PeftAdapterConfigJson(const LoraAdapter& adapter);

// Checks the adapter against the base weights: r > 0, alpha finite and > 0, at least one target,
// no target twice, every target's weight in `base` as f32 [out, in] with A [r, in] and B [out, r]
// f32 contiguous. InvalidArgument naming the tensor otherwise.
core::Status ValidateLoraAdapter(const LoraAdapter& adapter,
                                 const std::vector<io::NamedTensor>& base);

// The adapter's tensors under PEFT names (views of the adapter's memory, A then B per target).
std::vector<io::NamedTensor> PeftAdapterTensors(const LoraAdapter& adapter);

// W + scale * (B A) as a new f32 [out, in] buffer, in f32 like PEFT's merge (delta = (B @ A) *
// scaling; W += delta): each element of B A is summed over k = 0..r-1 in that order, multiplied by
// `scale`, then added to W.
// REQUIRES: f32 contiguous W [out, in], A [r, in], B [out, r].
core::Buffer MergeLoraWeight(const core::Tensor& w, const core::Tensor& a, const core::Tensor& b,
                             float scale);

}  // namespace arle::train
