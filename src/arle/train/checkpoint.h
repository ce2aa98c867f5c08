// Training checkpoints that are also servable Hugging Face model directories, written so that a
// crash at any moment leaves the run's `latest` pointing at a complete checkpoint.
//
// Layout of a run directory OUT:
//   OUT/step_000120/             one complete checkpoint (6 digits; more for steps >= 10^6)
//     config.json                Hugging Face config (torch_dtype set to the stored dtype)
//     generation_config.json
//     tokenizer.json, tokenizer_config.json, ...   copied from the source model directory
//     model.safetensors          HF tensor names and layout (merged W + (alpha/r) B A for LoRA)
//     optimizer.safetensors      optimizer state tensors; scalars in its __metadata__
//     trainer_state.json         the trainer's JSON object plus "step"
//     adapter/                   LoRA runs only: PEFT adapter_config.json + adapter_model.safetensors
//     arle_checkpoint.json       manifest: format, step, every file's size (written last)
//   OUT/latest -> step_000120    symlink, replaced atomically after the step is complete
// The adapter lives in a subdirectory because transformers, finding adapter_config.json next to
// config.json, would load base_model_name_or_path plus the adapter instead of the merged weights.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/dtype.h"
#include "arle/core/status.h"
#include "arle/io/safetensors.h"
#include "arle/train/peft.h"

namespace arle::train {

// Everything one checkpoint holds. Tensors are views; they must stay valid during SaveCheckpoint.
struct CheckpointContents {
  // The model's tensors under Hugging Face names ("model.layers.0.self_attn.q_proj.weight"), f32,
  // contiguous, on the CPU (for a LoRA run: the frozen base weights; the merge is done here).
  std::vector<io::NamedTensor> model;
  // The dtype model.safetensors stores: kF32 (exact), kBF16 or kF16 (rounded to nearest even).
  core::DType model_dtype = core::DType::kF32;
  // Optimizer state tensors by any unique name ("exp_avg.model.norm.weight"), any dtype
  // safetensors stores, and the scalars the optimizer needs to resume (its step count, betas, ...),
  // kept exactly (as %.17g) in optimizer.safetensors' metadata under "scalar.<name>".
  std::vector<io::NamedTensor> optimizer;
  std::map<std::string, double> optimizer_scalars;
  // A JSON object (RNG state, data cursor, LR schedule, ...). "step" is set to the saved step.
  std::string trainer_state_json = "{}";
  // config.json text (a JSON object), e.g. the source model's or models::llama::ToHfConfigJson's.
  std::string config_json;
  // generation_config.json text; empty: the one in tokenizer_dir, else one made from config.json's
  // bos_token_id and eos_token_id.
  std::string generation_config_json;
  // The source model directory: every tokenizer file present there is copied (tokenizer.json,
  // tokenizer_config.json, special_tokens_map.json, added_tokens.json, vocab.json, merges.txt,
  // tokenizer.model, chat_template.jinja). It must hold tokenizer.json.
  std::string tokenizer_dir;
  // More files to copy into the step directory under their base names (a README, a chat template).
  std::vector<std::string> extra_files;
  // LoRA runs: also written as a PEFT adapter (adapter/), and model.safetensors holds the merge.
  std::optional<LoraAdapter> lora;
};

struct CheckpointOptions {
  // Keep only the newest `keep_last` step directories after a successful save (0 = keep all).
  // The step `latest` points to is never removed.
  int keep_last = 0;
};

// Writes `contents` as OUT/step_NNNNNN and then points OUT/latest at it. Returns the step directory.
//
// Atomicity: everything is written into OUT/.tmp-step_NNNNNN, each file is fsync'ed, then the
// directory; it is renamed to step_NNNNNN and OUT is fsync'ed; then a temporary symlink is renamed
// over OUT/latest and OUT is fsync'ed again. A crash or an error at any point leaves `latest`
// absent (first save) or pointing at a complete older step. An error before the step directory is
// renamed into place removes the temporary directory; one after it leaves a complete step that
// `latest` does not name (replaced when that step is saved again). Leftovers of a crash (OUT/.tmp-*)
// are removed at the start of the next save.
// A step directory that already exists is replaced unless `latest` points to it (a run resumed
// from an earlier step re-saves later steps); then FailedPrecondition.
//
// Errors: InvalidArgument for bad contents (step < 0, no config.json object, a non-object
// trainer state, non-f32 model tensors, a tokenizer_dir without tokenizer.json, a bad LoRA
// adapter), IoError naming the file and the OS reason for anything the OS refuses (a full disk:
// "No space left on device", an unwritable OUT).
// Thread safety: one SaveCheckpoint per OUT at a time (across processes too).
core::StatusOr<std::string> SaveCheckpoint(const std::string& out_dir, int64_t step,
                                           const CheckpointContents& contents,
                                           const CheckpointOptions& options = {});

// A checkpoint read back. The tensors are read-only views into the mapped files.
struct LoadedCheckpoint {
  std::string dir;  // the step directory, resolved through `latest`
  int64_t step = 0;
  std::optional<io::SafetensorsFile> model;      // always set on success
  std::optional<io::SafetensorsFile> optimizer;  // always set on success
  std::map<std::string, double> optimizer_scalars;
  std::string trainer_state_json;  // trainer_state.json's text (the trainer's object plus "step")
  std::string config_json;         // config.json's text
  std::optional<io::SafetensorsFile> adapter;  // LoRA checkpoints: adapter_model.safetensors
  std::string adapter_config_json;             // LoRA checkpoints
};

// Loads OUT (through OUT/latest), OUT/latest or a step directory. Verifies completeness: the
// manifest, every file it lists at its recorded size, both safetensors files (header and ranges)
// and the JSON files. Errors: NotFound when OUT has no `latest` yet or `path` does not exist,
// DataLoss naming the file for a partial or corrupt checkpoint (missing or truncated file, bad
// JSON, bad safetensors, a step that disagrees with the manifest).
core::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path);

// "step_000120".
std::string StepDirName(int64_t step);

// Test hook: called at each point a save can fail or crash, named "write:<file>" (before the file
// is written; <file> relative to the step directory), "sync:step", "rename:step", "sync:out",
// "link:latest", "rename:latest", "retention". A non-OK status is returned by SaveCheckpoint as if
// the OS had failed there. Pass nullptr to clear. Not thread-safe: set it while no save runs.
using CheckpointFaultHook = std::function<core::Status(std::string_view point)>;
void SetCheckpointFaultHookForTesting(CheckpointFaultHook hook);

}  // namespace arle::train
