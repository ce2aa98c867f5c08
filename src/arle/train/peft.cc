// PEFT LoRA names, adapter_config.json and the merge. Names and fields follow PEFT's
// save_pretrained output (peft/utils/save_and_load.py strips the adapter name, so a default
// adapter's keys are "...lora_A.weight", not "...lora_A.default.weight").
#include "arle/train/peft.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

namespace arle::train {
namespace {

constexpr std::string_view kWeightSuffix = ".weight";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string ModuleName(const std::string& weight_name) {
  ARLE_CHECK(EndsWith(weight_name, kWeightSuffix)) << weight_name;
  return weight_name.substr(0, weight_name.size() - kWeightSuffix.size());
}

bool IsF32Matrix(const core::Tensor& t) {
  return !t.empty() && t.dtype() == core::DType::kF32 && t.rank() == 2 && t.is_contiguous() &&
         t.device() == core::Device::kCpu;
}

}  // namespace

std::string PeftLoraName(const std::string& weight_name, bool b) {
  return "base_model.model." + ModuleName(weight_name) + (b ? ".lora_B.weight" : ".lora_A.weight");
}

std::vector<std::string> PeftTargetModules(const LoraAdapter& adapter) {
  std::set<std::string> modules;
  for (const LoraTarget& t : adapter.targets) {
    const std::string module = ModuleName(t.weight_name);
    modules.insert(module.substr(module.rfind('.') + 1));
  }
  return {modules.begin(), modules.end()};
}

std::string PeftAdapterConfigJson(const LoraAdapter& adapter) {
  nlohmann::json j;
  j["alpha_pattern"] = nlohmann::json::object();
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = adapter.base_model_name_or_path;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = nullptr;
  // PEFT writes an integral alpha as an int (lora_alpha: int = 8).
  if (adapter.alpha == std::floor(adapter.alpha) && std::fabs(adapter.alpha) < 1e15) {
    j["lora_alpha"] = static_cast<int64_t>(adapter.alpha);
  } else {
    j["lora_alpha"] = adapter.alpha;
  }
  j["lora_dropout"] = 0.0;
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = adapter.r;
  j["rank_pattern"] = nlohmann::json::object();
  j["revision"] = nullptr;
  j["target_modules"] = PeftTargetModules(adapter);
  j["task_type"] = "CAUSAL_LM";
  j["use_dora"] = false;
  j["use_rslora"] = false;
  return j.dump(2) + "\n";
}

core::Status ValidateLoraAdapter(const LoraAdapter& adapter,
                                 const std::vector<io::NamedTensor>& base) {
  if (adapter.r <= 0) return core::InvalidArgumentError("LoRA rank r must be positive");
  if (!std::isfinite(adapter.alpha) || adapter.alpha <= 0) {
    return core::InvalidArgumentError("LoRA alpha must be a positive number");
  }
  if (adapter.targets.empty()) return core::InvalidArgumentError("LoRA adapter has no targets");
  std::set<std::string> seen;
  for (const LoraTarget& t : adapter.targets) {
    if (!EndsWith(t.weight_name, kWeightSuffix)) {
      return core::InvalidArgumentError("LoRA target '" + t.weight_name +
                                        "' is not a weight name (must end in .weight)");
    }
    if (!seen.insert(t.weight_name).second) {
      return core::InvalidArgumentError("LoRA target '" + t.weight_name + "' is listed twice");
    }
    const auto it = std::find_if(base.begin(), base.end(),
                                 [&](const io::NamedTensor& n) { return n.name == t.weight_name; });
    if (it == base.end()) {
      return core::InvalidArgumentError("LoRA target '" + t.weight_name +
                                        "' is not among the model tensors");
    }
    const core::Tensor& w = it->tensor;
    if (!IsF32Matrix(w) || !IsF32Matrix(t.a) || !IsF32Matrix(t.b) ||
        t.a.dim(0) != adapter.r || t.a.dim(1) != w.dim(1) || t.b.dim(0) != w.dim(0) ||
        t.b.dim(1) != adapter.r) {
      return core::InvalidArgumentError(
          "LoRA target '" + t.weight_name + "': expected f32 W [out, in], A [r, in], B [out, r] " +
          "with r = " + std::to_string(adapter.r) + ", got W " + w.ToString() + ", A " +
          t.a.ToString() + ", B " + t.b.ToString());
    }
  }
  return core::OkStatus();
}

std::vector<io::NamedTensor> PeftAdapterTensors(const LoraAdapter& adapter) {
  std::vector<io::NamedTensor> out;
  for (const LoraTarget& t : adapter.targets) {
    out.push_back({PeftLoraName(t.weight_name, false), t.a});
    out.push_back({PeftLoraName(t.weight_name, true), t.b});
  }
  return out;
}

core::Buffer MergeLoraWeight(const core::Tensor& w, const core::Tensor& a, const core::Tensor& b,
                             float scale) {
  ARLE_CHECK(IsF32Matrix(w) && IsF32Matrix(a) && IsF32Matrix(b));
  const int64_t n_out = w.dim(0), n_in = w.dim(1), r = a.dim(0);
  ARLE_CHECK(a.dim(1) == n_in && b.dim(0) == n_out && b.dim(1) == r)
      << w.ToString() << " " << a.ToString() << " " << b.ToString();
  core::Buffer out(static_cast<size_t>(n_out * n_in) * sizeof(float));
  const float* wp = w.data_as<float>();
  const float* ap = a.data_as<float>();
  const float* bp = b.data_as<float>();
  float* op = out.as<float>();
  std::vector<float> acc(static_cast<size_t>(n_in));
  // Row by row with k outermost, so the inner loop runs over contiguous A rows and vectorizes while
  // each element still sums its r products in order k = 0..r-1.
  for (int64_t o = 0; o < n_out; ++o) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t k = 0; k < r; ++k) {
      const float bk = bp[o * r + k];
      const float* arow = ap + k * n_in;
      for (int64_t i = 0; i < n_in; ++i) acc[i] += bk * arow[i];
    }
    for (int64_t i = 0; i < n_in; ++i) op[o * n_in + i] = wp[o * n_in + i] + acc[i] * scale;
  }
  return out;
}

}  // namespace arle::train
