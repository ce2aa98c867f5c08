// Running a planned step: one batched forward, then per sequence the prefix-cache registration of
// newly full blocks, sampling, stop checks, incremental detokenization and the callback.
#include <algorithm>

#include "arle/core/logging.h"
#include "arle/runtime/engine_internal.h"

namespace arle::runtime {

void Engine::Impl::RunStep(const StepPlan& plan) {
  step_tokens.clear();
  step_sequences.clear();
  step_snapshots.clear();
  step_snapshot_hashes.clear();
  // Snapshots are planned first: step_sequences point into step_snapshots, which must not grow
  // after that.
  step_snapshots.reserve(plan.entries.size());
  for (const StepPlan::Entry& e : plan.entries) {
    Sequence* seq = e.seq;
    models::StepSequence bs;
    bs.token_begin = static_cast<int64_t>(step_tokens.size());
    bs.n_tokens = e.n_tokens;
    bs.n_past = seq->n_computed;
    bs.block_table = std::span<const int32_t>(seq->blocks);
    bs.state_slot = seq->slot;
    const size_t n_before = step_snapshots.size();
    if (slots.enabled() && options.enable_prefix_cache) PlanSnapshot(seq, e.n_tokens);
    bs.snapshots = std::span<const models::StateSnapshot>(step_snapshots.data() + n_before,
                                                          step_snapshots.size() - n_before);
    bs.n_logits = LogitRows(seq, e.n_tokens);
    step_tokens.insert(step_tokens.end(), seq->tokens.begin() + seq->n_computed,
                       seq->tokens.begin() + seq->n_computed + e.n_tokens);
    step_sequences.push_back(bs);
  }
  const core::Status status =
      model->Forward(step_tokens, step_sequences, *state, &step_logits);
  if (!status.ok()) {
    for (const kv::BlockHash hash : step_snapshot_hashes) slots.Forget(hash);
    ARLE_LOG_ERROR("engine: step of {} tokens failed: {}", step_tokens.size(), status.ToString());
    for (const StepPlan::Entry& e : plan.entries) {
      if (e.seq->finished()) continue;
      EngineOutput out;
      Finish(e.seq, FinishReason::kAbort, &out);
      Emit(e.seq, out);
    }
    return;
  }
  ++n_steps;
  // Scored prompt rows first (all sequences, in parallel), then sampling: a sequence's first event
  // carries its prompt's scores.
  int64_t row = 0;
  step_scores.clear();
  step_sample_rows.assign(plan.entries.size(), nullptr);
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    Sequence* seq = plan.entries[i].seq;
    const int64_t end = seq->n_computed + plan.entries[i].n_tokens;
    seq->n_computed = end;
    if (options.enable_prefix_cache) RegisterFullBlocks(seq);
    const int64_t n_rows = step_sequences[i].n_logits;
    if (n_rows == 0) continue;
    const float* rows = step_logits.data() + row * n_vocab;  // positions first .. end - 1
    const int64_t first = end - n_rows;
    row += n_rows;
    if (seq->finished()) continue;
    for (int64_t p = std::max(seq->score_next, end - n_rows); p < std::min(end, seq->score_end);
         ++p) {
      step_scores.push_back({seq, p, rows + (p - first) * n_vocab, {}});
    }
    if (end == static_cast<int64_t>(seq->tokens.size())) {
      step_sample_rows[i] = rows + (end - 1 - first) * n_vocab;
    }
  }
  ScorePromptRows();
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    Sequence* seq = plan.entries[i].seq;
    if (step_sample_rows[i] == nullptr || seq->finished()) continue;
    if (seq->stop.max_tokens() == 0) {
      // Prompt scoring only: the prompt is done, nothing is sampled.
      EngineOutput out;
      Finish(seq, FinishReason::kLength, &out);
      Emit(seq, out);
      continue;
    }
    const std::span<const float> logits(step_sample_rows[i], n_vocab);
    if (seq->index == 0 && !seq->request->forked && seq->request->sequences.size() > 1) {
      Fork(seq, logits);
    } else {
      SampleAndEmit(seq, logits);
    }
  }
}

int64_t Engine::Impl::LogitRows(const Sequence* seq, int64_t n_tokens) const {
  const int64_t begin = seq->n_computed, end = begin + n_tokens;
  int64_t first = end;                                                   // no row
  if (end == static_cast<int64_t>(seq->tokens.size())) first = end - 1;  // the sampling row
  if (seq->scoring()) {
    const int64_t s = std::max(begin, seq->score_next);
    // The scored rows run to the chunk's end or to score_end, which is the sampling row's
    // position minus one: either way the rows needed are a tail of the chunk.
    if (s < std::min(end, seq->score_end)) first = std::min(first, s);
  }
  return end - first;
}

void Engine::Impl::ScorePromptRows() {
  if (step_scores.empty()) return;
  // Each row's log-softmax (an exp per vocabulary entry) is independent of the others: the
  // compute pool shares them out (the engine thread would otherwise do them alone while the pool
  // waits); the results do not depend on which worker computed them.
  auto score = [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      StepScore& s = step_scores[static_cast<size_t>(k)];
      const PromptLogprobsParams& params = *s.seq->request->request.prompt_logprobs;
      const int32_t id = s.seq->tokens[static_cast<size_t>(s.position + 1)];
      s.scored = RawTokenLogprobs(std::span<const float>(s.row, static_cast<size_t>(n_vocab)), id,
                                  std::max(1, params.top_logprobs));
    }
  };
  const kernels::Context* ctx = model->context();
  if (ctx != nullptr && step_scores.size() > 1) {
    ctx->pool().ParallelFor(static_cast<int64_t>(step_scores.size()), n_vocab, score);
  } else {
    score(0, static_cast<int64_t>(step_scores.size()));
  }
  // Delivered in order, on this thread (the callbacks accumulate).
  for (StepScore& s : step_scores) {
    const PromptLogprobsParams& params = *s.seq->request->request.prompt_logprobs;
    PromptTokenLogprob out;
    out.id = s.scored.id;
    out.logprob = s.scored.logprob;
    out.is_argmax = s.scored.top_logprobs.front().first == s.scored.id;
    out.top_logprobs = std::move(s.scored.top_logprobs);
    out.top_logprobs.resize(static_cast<size_t>(params.top_logprobs));
    s.seq->request->prompt_logprobs.push_back(std::move(out));
    if (params.on_logits) {
      params.on_logits(s.position + 1, std::span<const float>(s.row, static_cast<size_t>(n_vocab)));
    }
    s.seq->score_next = s.position + 1;
  }
}

void Engine::Impl::PlanSnapshot(const Sequence* seq, int64_t n_tokens) {
  // The last block boundary inside (n_computed, n_computed + n_tokens]: the state after the token
  // at boundary - 1 is the state of the prefix of `boundary` tokens.
  if (seq->stale_kv) return;
  const int64_t end = seq->n_computed + n_tokens;
  const int64_t boundary = end / kv::kBlockSize * kv::kBlockSize;
  if (boundary <= seq->n_computed || boundary == 0) return;
  kv::BlockHash hash = 0;
  for (int64_t b = 0; b < boundary / kv::kBlockSize; ++b) {
    hash = b < static_cast<int64_t>(seq->hashes.size())
               ? seq->hashes[b]
               : kv::HashBlock(hash, std::span<const int32_t>(seq->tokens.data() + b * kv::kBlockSize,
                                                              kv::kBlockSize));
  }
  const int32_t slot = slots.SnapshotSlotFor(hash);
  if (slot < 0) return;
  step_snapshots.push_back({boundary - 1, slot});
  step_snapshot_hashes.push_back(hash);
}

void Engine::Impl::RegisterFullBlocks(Sequence* seq) {
  if (seq->stale_kv) return;
  const size_t n_full = static_cast<size_t>(seq->n_computed / kv::kBlockSize);
  while (seq->hashes.size() < n_full) {
    const size_t b = seq->hashes.size();
    const kv::BlockHash parent = b == 0 ? 0 : seq->hashes[b - 1];
    const std::span<const int32_t> tokens(seq->tokens.data() + b * kv::kBlockSize, kv::kBlockSize);
    seq->hashes.push_back(pool.Register(seq->blocks[b], parent, tokens));
  }
}

void Engine::Impl::Fork(Sequence* first, std::span<const float> logits) {
  RequestState* request = first->request;
  request->forked = true;
  const int64_t n_full = first->n_prompt / kv::kBlockSize;
  const int64_t n_rest = first->n_prompt % kv::kBlockSize;
  for (size_t i = 1; i < request->sequences.size(); ++i) {
    Sequence* child = request->sequences[i].get();
    if (child->finished()) continue;
    child->n_cached_prompt = first->n_cached_prompt;
    // Share the prompt's full blocks; copy the partly filled last one, and the recurrent state.
    std::vector<kv::BlockId> copy;
    const int32_t slot = slots.enabled() ? slots.Acquire() : -1;
    const bool have_slot = !slots.enabled() || slot >= 0;
    if (have_slot && (n_rest == 0 || pool.Allocate(1, &copy))) {
      if (slot >= 0) {
        state->CopySlot(first->slot, slot);
        child->slot = slot;
      }
      for (int64_t b = 0; b < n_full; ++b) {
        pool.Acquire(first->blocks[b]);
        child->blocks.push_back(first->blocks[b]);
      }
      if (n_rest > 0) {
        state->CopyBlockRows(first->blocks[n_full], copy[0], n_rest);
        child->blocks.push_back(copy[0]);
      }
      child->stale_kv = first->stale_kv;
      child->hashes.assign(first->hashes.begin(),
                           first->hashes.begin() + std::min<int64_t>(n_full, first->hashes.size()));
      child->n_computed = first->n_prompt;
      AddRunning(child);
    } else {
      // No block or slot for the copy: the sample recomputes its prompt later (mostly from the
      // cache).
      if (slot >= 0) slots.Release(slot);
      waiting.push_front(child);
    }
    SampleAndEmit(child, logits);
  }
  SampleAndEmit(first, logits);
}

void Engine::Impl::SampleAndEmit(Sequence* seq, std::span<const float> logits) {
  SampledToken token =
      seq->sampler.Sample(logits, seq->tokens, static_cast<size_t>(seq->n_prompt));
  seq->tokens.push_back(token.id);
  ++generated_total;
  FinishReason reason = seq->stop.Append(token.id);
  std::string decoded = seq->decoder.Push(token.id);
  if (reason != FinishReason::kNone) decoded += seq->decoder.Flush();
  StopStringMatcher::Result matched = seq->matcher.Feed(decoded);
  EngineOutput out;
  out.index = seq->index;
  out.text = std::move(matched.text);
  out.tokens.push_back(std::move(token));
  if (matched.stopped) {
    if (reason == FinishReason::kNone) seq->stop.FinishWithStopString();
    reason = FinishReason::kStop;
    out.stop_string = seq->matcher.matched();
  } else if (reason != FinishReason::kNone) {
    out.text += seq->matcher.Flush();
    out.stop_token_id = seq->stop.stop_token_id();
  }
  if (reason != FinishReason::kNone) Finish(seq, reason, &out);
  Emit(seq, out);
}

void Engine::Impl::Finish(Sequence* seq, FinishReason reason, EngineOutput* out) {
  seq->finish = reason;
  if (seq->running) {
    ReleaseBlocks(seq);
    std::erase(running, seq);
    seq->running = false;
  } else {
    std::erase(waiting, seq);
    ReleaseBlocks(seq);  // a fork fallback may hold none; harmless
  }
  out->index = seq->index;
  out->finish_reason = reason;
  out->n_prompt_tokens = seq->n_prompt;
  out->n_cached_prompt_tokens = seq->n_cached_prompt;
  out->n_generated_tokens = seq->n_generated();
  // Publish before the final event goes out: a client that reads the stats (/metrics) right after
  // its response ends must see its own tokens and freed blocks, not the previous step's snapshot.
  PublishStats();
}

void Engine::Impl::Emit(Sequence* seq, EngineOutput& out) {
  RequestState* request = seq->request;
  if (!request->sent_first_event) {
    request->sent_first_event = true;
    out.prompt_logprobs = std::move(request->prompt_logprobs);
  }
  request->callback(out);
  if (out.finish_reason != FinishReason::kNone && --request->n_unfinished == 0) {
    // Destroyed by the loop once the step is over: pointers to its sequences may still be in use.
    done_requests.push_back(request->id);
  }
}

}  // namespace arle::runtime
