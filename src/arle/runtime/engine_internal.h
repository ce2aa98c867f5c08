// Internal state of the engine (engine.cc: public API and thread; scheduler.cc: planning a step;
// engine_step.cc: running it). Not part of the runtime's public interface.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "arle/kv/block_pool.h"
#include "arle/models/model.h"
#include "arle/runtime/engine.h"
#include "arle/runtime/recurrent_slots.h"
#include "arle/runtime/stop_strings.h"
#include "arle/tokenizer/incremental_decoder.h"

namespace arle::runtime {

struct RequestState;

// A weight update waiting for the engine thread (Engine::UpdateWeights).
struct WeightUpdate {
  std::function<core::Status()> update;
  std::promise<core::Status> done;
};

// One sample of a request: the unit the scheduler runs.
struct Sequence {
  RequestState* request = nullptr;
  int index = 0;                 // sample index within the request
  uint64_t order = 0;            // admission priority: lower runs first, is preempted last
  std::vector<int32_t> tokens;   // prompt + generated
  int64_t n_prompt = 0;
  int64_t n_computed = 0;        // tokens whose K/V are in `blocks`
  std::vector<int32_t> blocks;   // block table
  std::vector<kv::BlockHash> hashes;  // chain hashes of the blocks registered so far
  // Its K/V was (partly) computed with weights replaced since (Engine::UpdateWeights): its blocks
  // are never registered for reuse. Cleared when its blocks are released or it is readmitted.
  bool stale_kv = false;
  int32_t slot = -1;             // recurrent state slot (models with recurrent layers)
  bool running = false;          // holds blocks (else waiting)
  FinishReason finish = FinishReason::kNone;
  int64_t n_cached_prompt = 0;   // prompt tokens attached from the prefix cache on admission
  // Prompt scoring (sample 0 of a request with prompt_logprobs): the logits rows of positions
  // score_next .. score_end - 1 are still to be delivered (each predicts the token after it).
  int64_t score_next = 0, score_end = 0;
  bool scoring() const { return score_next < score_end; }
  Sampler sampler;
  StopChecker stop;
  tokenizer::IncrementalDecoder decoder;
  StopStringMatcher matcher;

  Sequence(RequestState* r, int i, const EngineRequest& req, SamplingParams params,
           uint64_t default_seed, const tokenizer::Tokenizer& tok);
  int64_t n_generated() const { return static_cast<int64_t>(tokens.size()) - n_prompt; }
  // Tokens still to run through the model before the next sample.
  int64_t n_pending() const { return static_cast<int64_t>(tokens.size()) - n_computed; }
  bool finished() const { return finish != FinishReason::kNone; }
};

struct RequestState {
  uint64_t id = 0;
  EngineRequest request;
  EngineCallback callback;
  std::vector<std::unique_ptr<Sequence>> sequences;
  int n_unfinished = 0;
  bool forked = false;  // samples > 0 have been given the prompt (until then they wait)
  std::vector<PromptTokenLogprob> prompt_logprobs;  // scored so far; sent with the first event
  bool sent_first_event = false;
};

// A planned step: which sequences run how many tokens.
struct StepPlan {
  struct Entry {
    Sequence* seq;
    int64_t n_tokens;
  };
  std::vector<Entry> entries;  // decodes first, then prefill chunks
  int64_t n_tokens = 0;
};

struct Engine::Impl {
  Impl(models::Model* m, std::unique_ptr<models::Model> owned, const tokenizer::Tokenizer& t,
       EngineOptions o, int32_t n_blocks);

  // --- engine thread only ---
  void Loop();
  void AddRequest(std::shared_ptr<RequestState> request);
  void CancelRequest(uint64_t id);
  void AbortAll();
  // scheduler.cc
  StepPlan PlanStep();
  bool TryAdmit(Sequence* seq, int64_t* budget, StepPlan* plan);
  bool EnsureDecodeBlock(Sequence* seq, const StepPlan& plan);
  Sequence* PickVictim(const Sequence* except, const StepPlan& plan);
  void Preempt(Sequence* seq);
  // Marks seq running and inserts it into `running`, kept sorted by order.
  void AddRunning(Sequence* seq);
  void ReleaseBlocks(Sequence* seq);
  // Recurrent models: the prefix a sequence may reuse ends at a state snapshot; cuts `matched` to
  // the longest such prefix and returns the snapshot slot (-1: nothing reusable).
  int32_t CutToSnapshot(const Sequence* seq, std::vector<kv::BlockId>* matched);
  // engine_step.cc
  void RunStep(const StepPlan& plan);
  void RegisterFullBlocks(Sequence* seq);
  // Recurrent models: asks the step to snapshot the state of `seq` at the last block boundary its
  // chunk of n_tokens crosses (appended to step_snapshots; its hash to step_snapshot_hashes).
  void PlanSnapshot(const Sequence* seq, int64_t n_tokens);
  void SampleAndEmit(Sequence* seq, std::span<const float> logits);
  // Scores the prompt tokens of step_scores (each from its logits row, the one before it) and
  // hands them to their requests in order.
  void ScorePromptRows();
  // The logits rows a step entry needs (the last n of its chunk): the scored positions and the
  // row sampling reads.
  int64_t LogitRows(const Sequence* seq, int64_t n_tokens) const;
  void Fork(Sequence* first, std::span<const float> logits);
  void Finish(Sequence* seq, FinishReason reason, EngineOutput* out);
  void Emit(Sequence* seq, EngineOutput& out);
  void PublishStats();
  // Runs the queued weight updates (between steps) and forgets every prefix computed before.
  void RunWeightUpdates(std::vector<std::shared_ptr<WeightUpdate>>& updates);

  models::Model* model = nullptr;
  std::unique_ptr<models::Model> owned_model;  // when the engine owns it
  std::unique_ptr<models::ModelState> state;
  RecurrentSlots slots;  // enabled for models with recurrent layers
  const tokenizer::Tokenizer& tokenizer;
  EngineOptions options;
  int64_t max_context = 0;
  int32_t n_vocab = 0;
  kv::BlockPool pool;

  std::deque<Sequence*> waiting;   // admission order; preempted sequences go to the front
  std::vector<Sequence*> running;  // sorted by order
  std::unordered_map<uint64_t, std::shared_ptr<RequestState>> requests;
  std::vector<uint64_t> done_requests;  // every sample finished; erased after the step
  uint64_t next_order = 0;
  std::vector<int32_t> step_tokens;
  std::vector<models::StepSequence> step_sequences;
  std::vector<models::StateSnapshot> step_snapshots;  // one per sequence at most, by entry
  std::vector<kv::BlockHash> step_snapshot_hashes;
  std::vector<float> step_logits;
  // Prompt rows the step scores: the token after `position` of `seq`, from `row`.
  struct StepScore {
    Sequence* seq;
    int64_t position;
    const float* row;
    SampledToken scored;
  };
  std::vector<StepScore> step_scores;
  std::vector<const float*> step_sample_rows;  // per plan entry: its sampling row, or null
  int64_t n_preemptions = 0, n_steps = 0, prompt_tokens_total = 0, computed_prompt_total = 0,
          generated_total = 0;

  // --- shared, guarded by mu ---
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<std::shared_ptr<RequestState>> incoming;
  std::vector<uint64_t> cancels;
  std::vector<std::shared_ptr<WeightUpdate>> weight_updates;
  bool stopping = false;
  uint64_t next_id = 1;
  int64_t n_queued_requests = 0;  // submitted, not yet admitted (for max_queue)
  EngineStats stats;
  uint64_t seed_counter = 0;

  std::thread thread;
};

}  // namespace arle::runtime
