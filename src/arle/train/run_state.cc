#include "arle/train/run_state.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/io/safetensors.h"
#include "arle/models/llama/llama_model.h"
#include "arle/train/peft.h"

namespace arle::train {
namespace {

std::vector<io::NamedTensor> Named(const models::llama::ModelWeights& w) {
  std::vector<io::NamedTensor> out;
  models::llama::ForEachWeight(w, [&](const std::string& name, const core::Tensor& t) {
    out.push_back({name, t});
  });
  return out;
}

// Copies `src` (f32, same shape) into `dst`; DataLoss naming `name` otherwise.
core::Status CopyInto(const std::string& name, const core::Tensor& src, core::Tensor& dst) {
  if (src.dtype() != core::DType::kF32 || src.numel() != dst.numel()) {
    return core::DataLossError("checkpoint tensor " + name + " is " + src.ToString() +
                                   ", expected f32 with " + std::to_string(dst.numel()) + " values",
                               "resume from a checkpoint saved with --save-dtype f32");
  }
  std::memcpy(dst.data(), src.data(), static_cast<size_t>(dst.nbytes()));
  return core::OkStatus();
}

}  // namespace

core::StatusOr<TrainableModel> LoadTrainableModel(const std::string& dir) {
  ARLE_ASSIGN_OR_RETURN(auto model, models::llama::LlamaModel::LoadHf(dir));
  TrainableModel out;
  out.config = model->config();
  ARLE_ASSIGN_OR_RETURN(out.weights, models::llama::OwnedF32Copy(model->weights()));
  ARLE_ASSIGN_OR_RETURN(out.tokenizer, tokenizer::LoadTokenizerForModelDir(dir));
  return out;
}

core::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const OptimizerOptions& o,
                                                         const LlamaTrainer& trainer,
                                                         const kernels::Context& ctx) {
  std::vector<ParamRef> refs;
  for (const TrainParam& p : trainer.params()) refs.push_back({p.name, *p.value, *p.grad});
  if (o.kind == "sgd") {
    return MakeSgd(refs, {.momentum = o.momentum, .weight_decay = o.weight_decay});
  }
  AdamWOptions a;
  a.weight_decay = o.weight_decay;
  a.pool = ctx.is_cpu() ? &ctx.pool() : nullptr;
  return MakeAdamW(refs, a);
}

core::StatusOr<std::string> SaveRun(const std::string& out, int64_t step,
                                    const LlamaTrainer& trainer, Optimizer& optimizer,
                                    const std::string& model_dir, core::DType save_dtype,
                                    const std::string& state_json, int keep_last) {
  CheckpointContents c;
  c.model = Named(trainer.base_weights());
  c.model_dtype = save_dtype;
  optimizer.ForEachState([&](const std::string& name, core::Tensor t) {
    c.optimizer.push_back({name, t});
  });
  c.optimizer_scalars["step"] = static_cast<double>(optimizer.step());
  c.trainer_state_json = state_json;
  ARLE_ASSIGN_OR_RETURN(c.config_json, core::ReadFile(model_dir + "/config.json"));
  c.tokenizer_dir = model_dir;
  const LoraOptions& lora = trainer.lora();
  if (lora.rank > 0) {
    LoraAdapter adapter;
    adapter.r = lora.rank;
    adapter.alpha = lora.alpha;
    adapter.base_model_name_or_path = model_dir;
    const auto& ps = trainer.params();
    for (size_t i = 0; i + 1 < ps.size(); i += 2) {
      // "base_model.model.<weight>.lora_A.weight" -> "<weight>.weight"
      std::string name = ps[i].name.substr(std::strlen("base_model.model."));
      name = name.substr(0, name.size() - std::strlen(".lora_A.weight")) + ".weight";
      adapter.targets.push_back({name, *ps[i].value, *ps[i + 1].value});
    }
    c.lora = std::move(adapter);
  }
  CheckpointOptions co;
  co.keep_last = keep_last;
  return SaveCheckpoint(out, step, c, co);
}

core::Status RestoreRun(const LoadedCheckpoint& ck, LlamaTrainer& trainer, Optimizer& optimizer) {
  if (trainer.lora().rank > 0) {
    if (!ck.adapter) return core::DataLossError(ck.dir + ": no LoRA adapter");
    for (const TrainParam& p : trainer.params()) {
      ARLE_ASSIGN_OR_RETURN(core::Tensor t, ck.adapter->GetTensor(p.name));
      ARLE_RETURN_IF_ERROR(CopyInto(p.name, t, *p.value));
    }
    trainer.MergeLora();
  }
  if (!ck.optimizer) return core::DataLossError(ck.dir + ": no optimizer state");
  core::Status restored = core::OkStatus();
  optimizer.ForEachState([&](const std::string& name, core::Tensor dst) {
    if (!restored.ok()) return;
    auto t = ck.optimizer->GetTensor(name);
    restored = t.ok() ? CopyInto(name, *t, dst) : t.status();
  });
  ARLE_RETURN_IF_ERROR(restored);
  auto it = ck.optimizer_scalars.find("step");
  if (it == ck.optimizer_scalars.end()) {
    return core::DataLossError(ck.dir + ": optimizer step missing");
  }
  optimizer.set_step(static_cast<int64_t>(it->second));
  return core::OkStatus();
}

core::Status AppendMetricsLine(const std::string& path, const std::string& json_line) {
  if (path.empty()) return core::OkStatus();
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) {
    return core::IoError("cannot open --metrics-jsonl " + path + ": " + std::strerror(errno));
  }
  const std::string line = json_line + "\n";
  const bool ok = std::fwrite(line.data(), 1, line.size(), f) == line.size();
  if (std::fclose(f) != 0 || !ok) return core::IoError("cannot write " + path);
  return core::OkStatus();
}

}  // namespace arle::train
