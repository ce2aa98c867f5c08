// Engine: request validation, the engine thread's loop, cancellation and statistics. Planning a
// step lives in scheduler.cc, running it in engine_step.cc.
#include "arle/runtime/engine.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <string>

#include "arle/core/logging.h"
#include "arle/models/registry.h"
#include "arle/runtime/engine_internal.h"
#include "arle/runtime/stop_strings.h"

namespace arle::runtime {
namespace {

// MemAvailable from /proc/meminfo in bytes (0 when unknown).
int64_t AvailableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t value = 0;
  std::string unit;
  while (in >> key >> value >> unit) {
    if (key == "MemAvailable:") return value * 1024;
  }
  return 0;
}

}  // namespace

Sequence::Sequence(RequestState* r, int i, const EngineRequest& req, SamplingParams params,
                   uint64_t default_seed, const tokenizer::Tokenizer& tok)
    : request(r),
      index(i),
      tokens(req.prompt_tokens),
      n_prompt(static_cast<int64_t>(req.prompt_tokens.size())),
      sampler(std::move(params), default_seed),
      stop(req.stop, static_cast<int64_t>(req.prompt_tokens.size())),
      decoder(tok, req.skip_special_tokens),
      matcher(req.stop_strings) {
  decoder.Continue(req.prompt_tokens);
  if (i == 0 && req.prompt_logprobs.has_value()) {
    score_next = req.prompt_logprobs->from - 1;
    score_end = n_prompt - 1;
  }
}

Engine::Impl::Impl(models::Model* m, std::unique_ptr<models::Model> owned,
                   const tokenizer::Tokenizer& t, EngineOptions o, int32_t n_blocks)
    : model(m), owned_model(std::move(owned)), tokenizer(t), options(o), pool(n_blocks) {}

StopParams DefaultStopParams(const models::Model& model, const tokenizer::Tokenizer& tokenizer) {
  const models::ModelInfo& info = model.info();
  StopParams stop;
  for (int64_t id : info.eos_token_ids) {
    if (id >= 0 && id < info.n_vocab) stop.eos_token_ids.push_back(static_cast<int32_t>(id));
  }
  if (stop.eos_token_ids.empty() && tokenizer.eos_id().has_value() &&
      *tokenizer.eos_id() < info.n_vocab) {
    stop.eos_token_ids.push_back(*tokenizer.eos_id());
  }
  for (const std::string& name : models::ChatFormatFor(info.architecture).stop_tokens) {
    const std::optional<int32_t> id = tokenizer.TokenToId(name);
    if (id.has_value() && *id < info.n_vocab &&
        std::find(stop.eos_token_ids.begin(), stop.eos_token_ids.end(), *id) ==
            stop.eos_token_ids.end()) {
      stop.eos_token_ids.push_back(*id);
    }
  }
  stop.max_context_tokens = info.n_ctx_train > 0 ? info.n_ctx_train : 2048;
  return stop;
}

core::StatusOr<std::unique_ptr<Engine>> Engine::Create(models::Model& model,
                                                       const tokenizer::Tokenizer& tokenizer,
                                                       const EngineOptions& options) {
  return Create(&model, nullptr, tokenizer, options);
}

core::StatusOr<std::unique_ptr<Engine>> Engine::Create(std::unique_ptr<models::Model> model,
                                                       const tokenizer::Tokenizer& tokenizer,
                                                       const EngineOptions& options) {
  models::Model* raw = model.get();
  return Create(raw, std::move(model), tokenizer, options);
}

core::StatusOr<std::unique_ptr<Engine>> Engine::Create(models::Model* model,
                                                       std::unique_ptr<models::Model> owned,
                                                       const tokenizer::Tokenizer& tokenizer,
                                                       const EngineOptions& options) {
  if (options.kv_dtype != core::DType::kF32 && options.kv_dtype != core::DType::kBF16 &&
      options.kv_dtype != core::DType::kF16) {
    return core::InvalidArgumentError("kv cache dtype must be f32, bf16 or f16, got " +
                                      std::string(core::DTypeName(options.kv_dtype)));
  }
  if (options.max_seqs < 1) return core::InvalidArgumentError("max_seqs must be >= 1");
  if (options.max_batch_tokens < options.max_seqs) {
    return core::InvalidArgumentError(
        "max_batch_tokens (" + std::to_string(options.max_batch_tokens) +
            ") must be at least max_seqs (" + std::to_string(options.max_seqs) + ")",
        "every running sequence needs one token of each step");
  }
  if (options.max_queue < 1) return core::InvalidArgumentError("max_queue must be >= 1");
  if (options.kv_cache_bytes < 0) return core::InvalidArgumentError("kv cache size must be >= 0");
  if (options.recurrent_snapshots < 0) {
    return core::InvalidArgumentError("recurrent_snapshots must be >= 0");
  }
  const models::ModelInfo& info = model->info();
  const models::StateSpec& spec = model->state_spec();
  int64_t max_context = info.n_ctx_train > 0 ? info.n_ctx_train : 2048;
  if (options.max_context_tokens > 0) max_context = std::min(max_context, options.max_context_tokens);

  // Blocks: the K/V of attention layers. A model without attention layers still numbers its
  // prefixes in blocks (the prefix cache's unit), which then cost no memory.
  const int64_t block_bytes = spec.KvBytesPerBlock(kv::kBlockSize, options.kv_dtype);
  const int64_t blocks_per_context = (max_context + kv::kBlockSize - 1) / kv::kBlockSize;
  int64_t n_blocks = 0;
  if (block_bytes == 0) {
    n_blocks = std::max<int64_t>(blocks_per_context * options.max_seqs, 64);
  } else if (options.kv_cache_bytes > 0) {
    n_blocks = options.kv_cache_bytes / block_bytes;
    if (n_blocks < 1) {
      return core::InvalidArgumentError(
          "the KV cache budget holds no block (one block of " + std::to_string(kv::kBlockSize) +
              " tokens takes " + std::to_string(block_bytes) + " bytes)",
          "raise --kv-cache-mb")
        .WithField("prompt");
    }
  } else {
    // A quarter of the available memory, no more than max_seqs full contexts, at least 64 blocks.
    const int64_t avail = AvailableMemoryBytes();
    n_blocks = avail > 0 ? avail / 4 / block_bytes : 1024;
    n_blocks = std::min<int64_t>(n_blocks, blocks_per_context * options.max_seqs);
    n_blocks = std::max<int64_t>(n_blocks, 64);
  }
  n_blocks = std::min<int64_t>(n_blocks, 1 << 24);
  // Recurrent slots: one per running sequence (forks of an n > 1 request may briefly pass
  // max_seqs), plus the snapshots.
  RecurrentSlots slots;
  if (spec.has_recurrent()) {
    slots = RecurrentSlots(options.max_seqs + kMaxSamples, options.recurrent_snapshots);
  }
  models::StateSizes sizes;
  sizes.n_blocks = n_blocks;
  sizes.block_size = kv::kBlockSize;
  sizes.kv_dtype = options.kv_dtype;
  sizes.n_slots = slots.n_slots();
  ARLE_ASSIGN_OR_RETURN(std::unique_ptr<models::ModelState> state, model->NewState(sizes));

  auto impl = std::make_unique<Impl>(model, std::move(owned), tokenizer, options,
                                     static_cast<int32_t>(n_blocks));
  impl->state = std::move(state);
  impl->slots = std::move(slots);
  impl->max_context = max_context;
  impl->n_vocab = static_cast<int32_t>(info.n_vocab);
  ARLE_LOG_DEBUG("engine: {} KV blocks of {} tokens ({} MiB, {}), {} recurrent slots ({} MiB), "
                 "context {}",
                 n_blocks, kv::kBlockSize, n_blocks * block_bytes >> 20,
                 core::DTypeName(options.kv_dtype), sizes.n_slots,
                 sizes.n_slots * spec.RecurrentBytesPerSlot() >> 20, max_context);
  impl->PublishStats();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

core::StatusOr<uint64_t> Engine::Submit(EngineRequest request, EngineCallback callback) {
  Impl& im = *impl_;
  const int64_t n_prompt = static_cast<int64_t>(request.prompt_tokens.size());
  if (n_prompt == 0) {
    return core::InvalidArgumentError("the prompt is empty", "give at least one token")
        .WithField("prompt");
  }
  for (int32_t id : request.prompt_tokens) {
    if (id < 0 || id >= im.n_vocab) {
      return core::InvalidArgumentError("prompt token id " + std::to_string(id) +
                                        " is outside the vocabulary [0, " +
                                        std::to_string(im.n_vocab) + ")")
          .WithField("prompt");
    }
  }
  if (request.n < 1 || request.n > kMaxSamples) {
    return core::InvalidArgumentError("n must be in [1, " + std::to_string(kMaxSamples) +
                                      "], got " + std::to_string(request.n))
        .WithField("n");
  }
  if (request.stop.max_context_tokens <= 0 || request.stop.max_context_tokens > im.max_context) {
    request.stop.max_context_tokens = im.max_context;
  }
  ARLE_RETURN_IF_ERROR(request.sampling.Validate(im.n_vocab));
  ARLE_RETURN_IF_ERROR(request.stop.Validate(im.n_vocab, request.prompt_logprobs.has_value()));
  if (request.prompt_logprobs.has_value()) {
    const PromptLogprobsParams& p = *request.prompt_logprobs;
    if (p.from < 1 || p.from > n_prompt) {
      return core::InvalidArgumentError("prompt log-probs must start in [1, " +
                                        std::to_string(n_prompt) + "], got " +
                                        std::to_string(p.from))
          .WithField("prompt_logprobs");
    }
    if (p.top_logprobs < 0 || p.top_logprobs > kMaxTopLogprobs) {
      return core::InvalidArgumentError("top_logprobs must be in [0, " +
                                        std::to_string(kMaxTopLogprobs) + "], got " +
                                        std::to_string(p.top_logprobs))
          .WithField("top_logprobs");
    }
  }
  if (request.stop.max_tokens == 0) {
    if (request.n != 1) {
      return core::InvalidArgumentError("n must be 1 when max_tokens is 0").WithField("n");
    }
  }
  ARLE_RETURN_IF_ERROR(ValidateStopStrings(request.stop_strings));
  ARLE_RETURN_IF_ERROR(request.stop.CheckPromptLength(n_prompt));
  const int64_t blocks_needed = n_prompt / kv::kBlockSize + 1;
  if (blocks_needed > im.pool.n_blocks()) {
    return core::InvalidArgumentError(
        "prompt has " + std::to_string(n_prompt) + " tokens but the KV cache holds only " +
            std::to_string(int64_t{im.pool.n_blocks()} * kv::kBlockSize),
        "raise --kv-cache-mb")
        .WithField("prompt");
  }
  if (!callback) return core::InvalidArgumentError("Submit needs a callback");

  auto state = std::make_shared<RequestState>();
  state->callback = std::move(callback);
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    if (im.stopping) return core::ResourceExhaustedError("the engine is shutting down", "retry on another server");
    // stats.n_waiting counts the queue and `incoming` (each Submit adds one until the engine
    // thread's next snapshot).
    if (im.stats.n_waiting >= im.options.max_queue) {
      return core::ResourceExhaustedError(
          "the request queue is full (" + std::to_string(im.options.max_queue) + " waiting)",
          "retry later");
    }
    id = im.next_id++;
    state->id = id;
    const uint64_t default_seed =
        request.default_seed.value_or(std::random_device{}() ^ (im.seed_counter++ << 32) ^ id);
    state->request = std::move(request);
    for (int i = 0; i < state->request.n; ++i) {
      // Sample i uses seed + i (of the request's seed, or of the default one): each sample needs
      // its own random stream.
      const EngineRequest& r = state->request;
      SamplingParams params = r.sampling;
      if (params.seed) params.seed = *params.seed + static_cast<uint64_t>(i);
      auto seq = std::make_unique<Sequence>(state.get(), i, r, std::move(params),
                                            default_seed + static_cast<uint64_t>(i), im.tokenizer);
      state->sequences.push_back(std::move(seq));
    }
    state->n_unfinished = state->request.n;
    im.incoming.push_back(state);
    ++im.stats.n_waiting;  // counted until the engine thread's next snapshot
  }
  im.cv.notify_all();
  return id;
}

void Engine::Cancel(uint64_t request_id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->cancels.push_back(request_id);
  }
  impl_->cv.notify_all();
}

core::Status Engine::UpdateWeights(std::function<core::Status()> update) {
  auto pending = std::make_shared<WeightUpdate>();
  pending->update = std::move(update);
  std::future<core::Status> done = pending->done.get_future();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) return core::FailedPreconditionError("the engine is shutting down");
    impl_->weight_updates.push_back(pending);
  }
  impl_->cv.notify_all();
  return done.get();
}

EngineStats Engine::Stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

int64_t Engine::max_context_tokens() const { return impl_->max_context; }
int32_t Engine::n_vocab() const { return impl_->n_vocab; }
const tokenizer::Tokenizer& Engine::tokenizer() const { return impl_->tokenizer; }

// ---------------------------------------------------------------------------------------------
// Engine thread.

void Engine::Impl::Loop() {
  std::vector<std::shared_ptr<RequestState>> new_requests;
  std::vector<uint64_t> new_cancels;
  std::vector<std::shared_ptr<WeightUpdate>> new_updates;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu);
      const bool has_work = !running.empty() || !waiting.empty();
      if (!has_work) {
        cv.wait(lock, [&] {
          return stopping || !incoming.empty() || !cancels.empty() || !weight_updates.empty();
        });
      }
      new_requests.swap(incoming);
      new_cancels.swap(cancels);
      new_updates.swap(weight_updates);
      if (stopping) {
        lock.unlock();
        for (auto& r : new_requests) AddRequest(std::move(r));
        for (auto& u : new_updates) {
          u->done.set_value(core::FailedPreconditionError("the engine is shutting down"));
        }
        AbortAll();
        requests.clear();
        done_requests.clear();
        PublishStats();
        return;
      }
    }
    for (auto& r : new_requests) AddRequest(std::move(r));
    new_requests.clear();
    for (uint64_t id : new_cancels) CancelRequest(id);
    new_cancels.clear();
    if (!new_updates.empty()) RunWeightUpdates(new_updates);

    const StepPlan plan = PlanStep();
    if (!plan.entries.empty()) {
      PublishStats();  // admissions leave the queue now, not after the step
      RunStep(plan);
    } else if (!waiting.empty()) {
      // Nothing fits right now (blocks held by sequences being cancelled, ...): do not spin.
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(1));
    }
    for (uint64_t id : done_requests) requests.erase(id);
    done_requests.clear();
    PublishStats();
  }
}

void Engine::Impl::RunWeightUpdates(std::vector<std::shared_ptr<WeightUpdate>>& updates) {
  for (auto& u : updates) {
    u->done.set_value(u->update());
    // Whatever the update returned, it may have changed some weights: forget every prefix. The
    // running sequences go on over the K/V they hold (in-flight updates, as vLLM's), but it is
    // never offered to another request.
    pool.ForgetAllPrefixes();
    if (slots.enabled()) slots.ForgetAll();
    for (Sequence* seq : running) seq->stale_kv = true;
  }
  updates.clear();
}

void Engine::Impl::AddRequest(std::shared_ptr<RequestState> request) {
  Sequence* first = request->sequences[0].get();
  first->order = next_order++;
  waiting.push_back(first);
  for (size_t i = 1; i < request->sequences.size(); ++i) {
    request->sequences[i]->order = first->order;
  }
  prompt_tokens_total += first->n_prompt;
  requests.emplace(request->id, std::move(request));
}

void Engine::Impl::CancelRequest(uint64_t id) {
  auto it = requests.find(id);
  if (it == requests.end()) return;
  std::shared_ptr<RequestState> request = it->second;
  for (auto& seq : request->sequences) {
    if (seq->finished()) continue;
    EngineOutput out;
    Finish(seq.get(), FinishReason::kAbort, &out);
    Emit(seq.get(), out);
  }
}

void Engine::Impl::AbortAll() {
  std::vector<uint64_t> ids;
  for (const auto& [id, request] : requests) ids.push_back(id);
  for (uint64_t id : ids) CancelRequest(id);
}

void Engine::Impl::PublishStats() {
  const kv::BlockPoolStats ps = pool.stats();
  std::lock_guard<std::mutex> lock(mu);
  stats.n_waiting = static_cast<int64_t>(waiting.size() + incoming.size());
  stats.n_running = static_cast<int64_t>(running.size());
  stats.kv_blocks_total = ps.n_blocks;
  stats.kv_blocks_used = ps.n_used;
  stats.kv_blocks_cached = ps.n_cached;
  stats.prefix_queried_tokens = ps.prefix_queried_tokens;
  stats.prefix_hit_tokens = ps.prefix_hit_tokens;
  stats.n_preemptions = n_preemptions;
  stats.n_steps = n_steps;
  stats.prompt_tokens_total = prompt_tokens_total;
  stats.computed_prompt_tokens_total = computed_prompt_total;
  stats.generated_tokens_total = generated_total;
  stats.max_context_tokens = max_context;
  stats.block_size = kv::kBlockSize;
}

}  // namespace arle::runtime
