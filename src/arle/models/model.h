// Model: the interface every model family implements and everything above models/ runs (the
// engine, and through it run, serve, the agent, bench and eval). A model is its identity and
// limits, a per-layer state contract (state.h), and one forward step over a flat batch of tokens
// from many sequences. Families live in their own folders (models/llama/, ...) and are found
// through the registry (registry.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"
#include "arle/core/tensor.h"
#include "arle/kernels/context.h"
#include "arle/models/state.h"

namespace arle::models {

struct LoadOptions {
  int n_threads = 0;  // 0 = one per physical core
  // The kernel backend; unset: what ARLE_KERNELS names (cpu when unset). kRef runs the scalar
  // reference kernels (slow; for debugging).
  std::optional<kernels::Backend> backend;
  // How f32 weights are multiplied (kernels/context.h). kGemm makes the logits bit-identical to
  // train::LlamaTrainer's for the same weights and tokens: RL rollouts whose log-probs a trainer
  // recomputes. kDot (the default) is faster for decode.
  kernels::FloatMatMul float_matmul = kernels::FloatMatMul::kDot;
  // Holds owned, writable f32 copies of the weights instead of using them in place from the
  // mapped file (block formats are dequantized), so Model::SetWeights can replace them: a
  // rollout server that an RL trainer pushes new weights to.
  bool writable_weights = false;
  // When non-empty (or when the environment variable ARLE_DUMP_DIR is set), every forward writes
  // its named activations there (see tensor_dump.h); each forward overwrites the previous one's.
  std::string dump_dir;
};

// What callers above models/ may know about a loaded model.
struct ModelInfo {
  std::string family;        // the registry family that loaded it ("llama")
  std::string architecture;  // Hugging Face `architectures` value ("Qwen3ForCausalLM")
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;   // context length it was trained for (0 = unknown)
  int64_t n_layer = 0;
  int64_t n_embd = 0;        // hidden size
  std::vector<int64_t> eos_token_ids;  // config.json + generation_config.json (may be empty)
  int64_t n_params = 0;        // parameters, counting a tied embedding once
  int64_t weight_bytes = 0;    // bytes of all weights as stored
  int64_t decode_weight_bytes = 0;  // bytes one decode step reads (one embedding row, not the table)
  std::string weight_format;   // "bf16", "q4_k+q6_k", ...: the stored dtypes, most bytes first
};

// One tensor of a weight update, by its Hugging Face name.
struct NamedWeight {
  std::string name;
  core::Tensor tensor;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelInfo& info() const = 0;
  // What each layer keeps per sequence between steps.
  virtual const StateSpec& state_spec() const = 0;
  // The kernel context the forward runs on (its pool), or null for models without kernels (test
  // doubles).
  virtual const kernels::Context* context() const { return nullptr; }

  // Allocates the storage for every sequence's state (see state.h for the errors).
  virtual core::StatusOr<std::unique_ptr<ModelState>> NewState(const StateSizes& sizes) const = 0;

  // One step: a flat batch of tokens from several sequences, each with its own positions, block
  // table and recurrent slot (no padding). Writes every token's state (K/V rows, recurrent state),
  // takes the snapshots asked for, and writes the logits each sequence asks for, in sequence order,
  // into logits ([n_rows, n_vocab], resized).
  // Errors (nothing is written then): InvalidArgument for an empty batch, a token id outside the
  // vocabulary, sequences that do not tile `tokens` in order, a block table too short, a missing
  // slot or a snapshot outside the step.
  // Determinism: a sequence's logits are bit-identical whatever the other sequences of the step,
  // the chunking of its prompt, the blocks or slot it was given, or the pool size.
  // Thread safety: one Forward at a time per model and state.
  virtual core::Status Forward(std::span<const int32_t> tokens,
                               std::span<const StepSequence> sequences, ModelState& state,
                               std::vector<float>* logits) = 0;

  // Replaces every weight by the tensor of the same name in `weights` (an RL trainer pushing its
  // updated weights to a rollout server: POST /v1/admin/weights). `config_json` is the sender's
  // config.json; it must describe this model (architecture, sizes, norms, rotary embedding).
  // `weights` must name each of the model's tensors exactly once, with its shape, as f32, f16 or
  // bf16 (converted to f32). Everything is checked before anything is written, so on an error the
  // model is unchanged. Errors: FailedPrecondition when the weights are not writable (loaded
  // without LoadOptions::writable_weights), InvalidArgument naming the config field or the tensor
  // that does not match, Unimplemented for a family that takes no updates (the default).
  // Not concurrently with Forward: run it through runtime::Engine::UpdateWeights.
  virtual core::Status SetWeights(std::string_view config_json,
                                  std::span<const NamedWeight> weights);
};

}  // namespace arle::models
