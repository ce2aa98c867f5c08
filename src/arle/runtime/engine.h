// Engine: the continuous-batching inference engine, the one generation path of arle: `arle serve`,
// `arle run`, the REPL and agent, `arle bench` and (later) eval and RL rollouts all submit requests
// here, a lone request being a batch of one. One engine thread owns the model's state (paged K/V
// blocks, recurrent slots) and the scheduler; each step is one forward over a flat batch of tokens
// from many sequences (decodes first, then prefill chunks). Requests are submitted from any thread
// and report their tokens through a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arle/core/dtype.h"
#include "arle/core/status.h"
#include "arle/models/model.h"
#include "arle/runtime/sampler.h"
#include "arle/runtime/stop.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::runtime {

struct EngineOptions {
  // KV cache memory; 0 = a default (a quarter of the available RAM, at most what max_seqs
  // sequences of the full context need, at least 64 blocks).
  int64_t kv_cache_bytes = 0;
  core::DType kv_dtype = core::DType::kF32;  // f32, bf16 or f16
  int64_t max_batch_tokens = 512;            // tokens per step (decodes + prefill chunks)
  int max_seqs = 64;                         // sequences running at once
  int max_queue = 1024;                      // waiting requests; Submit fails beyond it
  bool enable_prefix_cache = true;
  // Serving context limit in tokens (prompt + generated); 0 = the model's (n_ctx_train).
  int64_t max_context_tokens = 0;
  // Models with recurrent layers: state snapshots kept at block boundaries for prefix reuse.
  int recurrent_snapshots = 32;
};

// Stop parameters from the model: its EOS ids (config + generation_config, or the tokenizer's eos
// when the config has none), the end-of-turn tokens of its chat format that the vocabulary has
// (models/registry.h), and its context length.
StopParams DefaultStopParams(const models::Model& model, const tokenizer::Tokenizer& tokenizer);

// Samples per request (EngineRequest::n) at most.
inline constexpr int kMaxSamples = 16;

// The log-probability of one prompt token given the tokens before it (raw log_softmax of the
// model's logits, as LogprobsMode::kRaw).
struct PromptTokenLogprob {
  int32_t id = -1;
  float logprob = 0.0f;
  bool is_argmax = false;  // the token is the model's most likely one there (lowest id on ties)
  // The top_logprobs most likely tokens, as SampledToken::top_logprobs.
  std::vector<std::pair<int32_t, float>> top_logprobs;
};

// Prompt scoring: OpenAI `echo` with `logprobs`, vLLM's `prompt_logprobs`, and evaluation
// (log-likelihoods, perplexity). The prefix cache still serves the prompt's blocks before `from`
// (a shared context is computed once), never those whose logits are asked for; the scores are
// bit-identical whatever the batch, the chunking or the cache (the determinism contract).
struct PromptLogprobsParams {
  int64_t from = 1;      // score prompt tokens from .. n_prompt - 1; in [1, n_prompt]
  int top_logprobs = 0;  // [0, kMaxTopLogprobs]
  // When set: called on the engine thread, once per scored token in prompt order, with the raw
  // logits row that predicts prompt token `position` (the row is valid during the call only).
  // For whole distributions (KL divergence). Must be quick and must not call Submit.
  std::function<void(int64_t position, std::span<const float> logits)> on_logits;
};

struct EngineRequest {
  std::vector<int32_t> prompt_tokens;  // REQUIRES: non-empty, ids in the vocabulary
  SamplingParams sampling;
  // EOS ids etc.: start from DefaultStopParams(model, tokenizer). max_context_tokens is capped to
  // the engine's limit.
  StopParams stop;
  std::vector<std::string> stop_strings;
  // Samples of this prompt (OpenAI `n`); they share the prompt's KV blocks. Sample i uses seed
  // sampling.seed + i when a seed is set.
  int n = 1;
  // Seed for an unseeded request; unset = the engine draws one per request.
  std::optional<uint64_t> default_seed;
  bool skip_special_tokens = true;  // in the streamed text
  // Log-probabilities of prompt tokens (see PromptLogprobsParams). With it, stop.max_tokens may
  // be 0: the request only scores its prompt (n must then be 1), the prompt may fill the whole
  // context, and its one event has no tokens and finish_reason kLength.
  std::optional<PromptLogprobsParams> prompt_logprobs;
};

// One event for one sample of a request. Delivered in order per sample; the last event of a
// sample has finish_reason != kNone.
struct EngineOutput {
  int index = 0;                         // which sample (0 .. n-1)
  std::vector<SampledToken> tokens;      // new tokens (usually one; the stop token included)
  std::string text;                      // new text (never a partial character or stop string)
  FinishReason finish_reason = FinishReason::kNone;
  std::optional<std::string> stop_string;  // the stop string that ended the sample
  std::optional<int32_t> stop_token_id;    // the EOS / stop token that ended it
  // The request's first event (whichever sample it is for) carries the prompt's scores when
  // EngineRequest::prompt_logprobs was set: one entry per prompt token from `from` on.
  std::vector<PromptTokenLogprob> prompt_logprobs;
  // Filled on the last event of a sample.
  int64_t n_prompt_tokens = 0;
  int64_t n_cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache
  int64_t n_generated_tokens = 0;
};

// Called on the engine thread: must be quick and must not call Submit (Cancel is fine).
using EngineCallback = std::function<void(const EngineOutput&)>;

struct EngineStats {
  int64_t n_waiting = 0;     // queued, not yet admitted (preempted ones included)
  int64_t n_running = 0;     // sequences holding KV blocks
  int32_t kv_blocks_total = 0;
  int32_t kv_blocks_used = 0;    // referenced by a running sequence
  int32_t kv_blocks_cached = 0;  // unreferenced, kept for prefix reuse
  int64_t prefix_queried_tokens = 0;
  int64_t prefix_hit_tokens = 0;
  int64_t n_preemptions = 0;
  int64_t n_steps = 0;
  int64_t prompt_tokens_total = 0;     // prompt tokens of admitted requests (cached included)
  int64_t computed_prompt_tokens_total = 0;  // of those, prefilled by the model
  int64_t generated_tokens_total = 0;
  int64_t max_context_tokens = 0;
  int64_t block_size = 0;
};

class Engine {
 public:
  // Sizes the model's state (KV blocks, recurrent slots) and starts the engine thread. The model
  // and tokenizer must outlive it.
  static core::StatusOr<std::unique_ptr<Engine>> Create(models::Model& model,
                                                        const tokenizer::Tokenizer& tokenizer,
                                                        const EngineOptions& options);
  // Same, owning the model (tests use fakes). The tokenizer must outlive the engine.
  static core::StatusOr<std::unique_ptr<Engine>> Create(std::unique_ptr<models::Model> model,
                                                        const tokenizer::Tokenizer& tokenizer,
                                                        const EngineOptions& options);
  // Stops the thread; unfinished requests get a final event with finish_reason kAbort.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates the request (sampling, stop, n in [1, 16], prompt length against the context
  // and the KV pool) and queues it. Returns its id. Errors: InvalidArgument naming the parameter
  // in its message and in Status::field() ("top_p", "n", "stop", "prompt" for the prompt's
  // length or ids, ...; a too-long prompt names both numbers); ResourceExhausted when the queue
  // is full.
  // Thread-safe.
  core::StatusOr<uint64_t> Submit(EngineRequest request, EngineCallback callback);

  // Cancels a request: its blocks return to the pool at the next step boundary and its samples get
  // a final event with finish_reason kAbort (unless already finished). Unknown ids are ignored.
  // Thread-safe.
  void Cancel(uint64_t request_id);

  // Runs `update` on the engine thread between two steps (no forward runs meanwhile): the caller
  // changes the model's weights in place there (an RL trainer's step, a server's weight push).
  // Then every prefix-cache entry is forgotten, so no later request reuses K/V computed with the
  // old weights: cached blocks are freed, and the blocks of sequences still running stay theirs
  // but are never matched or registered again. Sequences in flight continue with the new weights
  // over the K/V they hold (in-flight updates, as vLLM's). Blocks until done and returns what
  // `update` returned. Thread-safe; must not be called from an engine callback.
  core::Status UpdateWeights(std::function<core::Status()> update);

  // A consistent snapshot. Thread-safe.
  EngineStats Stats() const;

  int64_t max_context_tokens() const;
  int32_t n_vocab() const;
  const tokenizer::Tokenizer& tokenizer() const;

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  static core::StatusOr<std::unique_ptr<Engine>> Create(models::Model* model,
                                                        std::unique_ptr<models::Model> owned,
                                                        const tokenizer::Tokenizer& tokenizer,
                                                        const EngineOptions& options);
  std::unique_ptr<Impl> impl_;
};

}  // namespace arle::runtime
