// Step planning: running decodes first, then prefill chunks of admitted sequences, then new
// admissions while KV blocks and the token budget allow; preemption (by recompute) of the least
// advanced sequence when a decode needs a block and none is free.
#include <algorithm>

#include "arle/core/logging.h"
#include "arle/runtime/engine_internal.h"

namespace arle::runtime {
namespace {

bool InPlan(const StepPlan& plan, const Sequence* seq) {
  for (const StepPlan::Entry& e : plan.entries) {
    if (e.seq == seq) return true;
  }
  return false;
}

int64_t BlocksFor(int64_t n_tokens) { return (n_tokens + kv::kBlockSize - 1) / kv::kBlockSize; }

}  // namespace

StepPlan Engine::Impl::PlanStep() {
  StepPlan plan;
  int64_t budget = options.max_batch_tokens;
  // 1. Decodes, oldest first. A copy: preemption edits `running`.
  const std::vector<Sequence*> snapshot = running;
  for (Sequence* seq : snapshot) {
    if (budget == 0) break;
    if (!seq->running || seq->n_pending() != 1) continue;
    if (!EnsureDecodeBlock(seq, plan)) continue;
    plan.entries.push_back({seq, 1});
    plan.n_tokens += 1;
    budget -= 1;
  }
  // 2. Prefill chunks of sequences admitted earlier (their blocks are already allocated).
  for (Sequence* seq : std::vector<Sequence*>(running)) {
    if (budget == 0) break;
    if (!seq->running || seq->n_pending() <= 1 || InPlan(plan, seq)) continue;
    const int64_t chunk = std::min(seq->n_pending(), budget);
    plan.entries.push_back({seq, chunk});
    plan.n_tokens += chunk;
    budget -= chunk;
  }
  // 3. Admissions in arrival order (preempted sequences come back first); stop at the first that
  // does not fit so a large prompt is not overtaken forever by small ones.
  while (!waiting.empty() && budget > 0 &&
         static_cast<int64_t>(running.size()) < options.max_seqs) {
    Sequence* seq = waiting.front();
    if (BlocksFor(static_cast<int64_t>(seq->tokens.size())) > pool.n_blocks()) {
      // Grew (then was preempted) past what the whole cache holds: it can never run again.
      EngineOutput out;
      out.text = seq->matcher.Feed(seq->decoder.Flush()).text + seq->matcher.Flush();
      Finish(seq, FinishReason::kLength, &out);  // removes it from `waiting`
      Emit(seq, out);
      continue;
    }
    if (!TryAdmit(seq, &budget, &plan)) break;
    waiting.pop_front();
  }
  return plan;
}

bool Engine::Impl::TryAdmit(Sequence* seq, int64_t* budget, StepPlan* plan) {
  const int64_t n_tokens = static_cast<int64_t>(seq->tokens.size());
  // A model with recurrent layers needs a state slot for the sequence.
  int32_t slot = -1;
  if (slots.enabled()) {
    slot = slots.Acquire();
    if (slot < 0) return false;
  }
  std::vector<kv::BlockId> matched;
  int32_t snapshot = -1;
  if (options.enable_prefix_cache) {
    // All but the last token: the model must run at least one token to give the next logits. A
    // scored prompt reuses only the blocks before its first scored position: those rows' logits
    // must be computed.
    const int64_t n_lookup =
        seq->scoring() ? std::min(n_tokens - 1, seq->score_next) : n_tokens - 1;
    const std::span<const int32_t> lookup(seq->tokens.data(), n_lookup);
    const bool count = seq->n_generated() == 0;
    matched = pool.Match(lookup, /*count_stats=*/false);
    if (slots.enabled()) snapshot = CutToSnapshot(seq, &matched);
    if (count) {
      pool.CountLookup(static_cast<int64_t>(lookup.size()),
                       static_cast<int64_t>(matched.size()) * kv::kBlockSize);
    }
  }
  for (kv::BlockId id : matched) pool.Acquire(id);
  const int64_t need = BlocksFor(n_tokens) - static_cast<int64_t>(matched.size());
  // Keep a little room for running decodes to grow into their next block.
  const int64_t watermark = running.empty() ? 0 : std::max<int64_t>(1, pool.n_blocks() / 100);
  std::vector<kv::BlockId> fresh;
  if (pool.n_available() < need + watermark ||
      !pool.Allocate(static_cast<int32_t>(need), &fresh)) {
    pool.ReleaseAll(matched);
    if (slot >= 0) slots.Release(slot);
    return false;
  }
  seq->slot = slot;
  // The cached prefix's recurrent state: its snapshot, copied into the sequence's own slot.
  if (snapshot >= 0) state->CopySlot(snapshot, slot);
  seq->blocks = std::move(matched);
  seq->blocks.insert(seq->blocks.end(), fresh.begin(), fresh.end());
  seq->hashes.clear();
  seq->stale_kv = false;
  seq->n_computed = static_cast<int64_t>(seq->blocks.size() - fresh.size()) * kv::kBlockSize;
  if (seq->n_generated() == 0) {
    seq->n_cached_prompt = std::min(seq->n_computed, seq->n_prompt);
    computed_prompt_total += seq->n_prompt - seq->n_cached_prompt;
  }
  AddRunning(seq);
  const int64_t chunk = std::min(seq->n_pending(), *budget);
  plan->entries.push_back({seq, chunk});
  plan->n_tokens += chunk;
  *budget -= chunk;
  return true;
}

bool Engine::Impl::EnsureDecodeBlock(Sequence* seq, const StepPlan& plan) {
  const int64_t need = BlocksFor(static_cast<int64_t>(seq->tokens.size()));
  while (static_cast<int64_t>(seq->blocks.size()) < need) {
    std::vector<kv::BlockId> got;
    if (pool.Allocate(1, &got)) {
      seq->blocks.push_back(got[0]);
      continue;
    }
    if (Sequence* victim = PickVictim(seq, plan); victim != nullptr) {
      Preempt(victim);
      continue;
    }
    if (plan.entries.empty() && running.size() == 1) {
      // Alone and still no room: the cache cannot hold this sequence's context.
      ARLE_LOG_WARN("engine: the KV cache is full with one sequence of {} tokens; ending it",
                    seq->tokens.size());
      EngineOutput out;
      out.text = seq->matcher.Feed(seq->decoder.Flush()).text + seq->matcher.Flush();
      Finish(seq, FinishReason::kLength, &out);
      Emit(seq, out);
      return false;
    }
    Preempt(seq);
    return false;
  }
  return true;
}

Sequence* Engine::Impl::PickVictim(const Sequence* except, const StepPlan& plan) {
  Sequence* victim = nullptr;
  for (Sequence* s : running) {
    if (s == except || InPlan(plan, s)) continue;
    // Least advanced: fewest generated tokens; among equals the latest to arrive.
    if (victim == nullptr || s->n_generated() < victim->n_generated() ||
        (s->n_generated() == victim->n_generated() && s->order > victim->order)) {
      victim = s;
    }
  }
  return victim;
}

void Engine::Impl::AddRunning(Sequence* seq) {
  seq->running = true;
  running.insert(std::upper_bound(running.begin(), running.end(), seq,
                                  [](const Sequence* a, const Sequence* b) {
                                    return a->order < b->order;
                                  }),
                 seq);
}

void Engine::Impl::Preempt(Sequence* seq) {
  ARLE_LOG_DEBUG("engine: preempting request {} sample {} ({} tokens)", seq->request->id,
                 seq->index, seq->tokens.size());
  ReleaseBlocks(seq);
  std::erase(running, seq);
  seq->running = false;
  waiting.push_front(seq);
  ++n_preemptions;
}

void Engine::Impl::ReleaseBlocks(Sequence* seq) {
  pool.ReleaseAll(seq->blocks);
  seq->blocks.clear();
  seq->hashes.clear();
  seq->stale_kv = false;
  seq->n_computed = 0;
  if (seq->slot >= 0) {
    slots.Release(seq->slot);
    seq->slot = -1;
  }
}

int32_t Engine::Impl::CutToSnapshot(const Sequence* seq, std::vector<kv::BlockId>* matched) {
  // The chain hashes of the matched blocks, as RegisterFullBlocks computed them.
  std::vector<kv::BlockHash> chain;
  kv::BlockHash parent = 0;
  for (size_t b = 0; b < matched->size(); ++b) {
    parent = kv::HashBlock(parent, std::span<const int32_t>(seq->tokens.data() + b * kv::kBlockSize,
                                                            kv::kBlockSize));
    chain.push_back(parent);
  }
  for (size_t k = matched->size(); k > 0; --k) {
    const int32_t snapshot = slots.FindSnapshot(chain[k - 1]);
    if (snapshot >= 0) {
      matched->resize(k);
      return snapshot;
    }
  }
  matched->clear();
  return -1;
}

}  // namespace arle::runtime
