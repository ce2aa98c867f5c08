// RecurrentSlots: a free list of sequence slots and an LRU map of snapshot slots.
#include "arle/runtime/recurrent_slots.h"

#include "arle/core/check.h"

namespace arle::runtime {

RecurrentSlots::RecurrentSlots(int32_t n_sequence, int32_t n_snapshot)
    : n_sequence_(n_sequence), n_snapshot_(n_snapshot), held_(n_sequence, false) {
  ARLE_CHECK(n_sequence > 0 && n_snapshot >= 0) << n_sequence << " " << n_snapshot;
  for (int32_t s = n_sequence - 1; s >= 0; --s) free_.push_back(s);
  for (int32_t s = n_sequence + n_snapshot - 1; s >= n_sequence; --s) unused_snapshots_.push_back(s);
}

int32_t RecurrentSlots::Acquire() {
  if (free_.empty()) return -1;
  const int32_t slot = free_.back();
  free_.pop_back();
  held_[slot] = true;
  return slot;
}

void RecurrentSlots::Release(int32_t slot) {
  ARLE_CHECK(slot >= 0 && slot < n_sequence_ && held_[slot]) << "slot " << slot;
  held_[slot] = false;
  free_.push_back(slot);
}

int32_t RecurrentSlots::FindSnapshot(kv::BlockHash hash) {
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  lru_.splice(lru_.end(), lru_, it->second);
  return it->second->second;
}

int32_t RecurrentSlots::SnapshotSlotFor(kv::BlockHash hash) {
  if (n_snapshot_ == 0) return -1;
  if (const int32_t held = FindSnapshot(hash); held >= 0) return held;
  int32_t slot;
  if (!unused_snapshots_.empty()) {
    slot = unused_snapshots_.back();
    unused_snapshots_.pop_back();
  } else {
    slot = lru_.front().second;
    by_hash_.erase(lru_.front().first);
    lru_.pop_front();
  }
  lru_.emplace_back(hash, slot);
  by_hash_[hash] = std::prev(lru_.end());
  return slot;
}

void RecurrentSlots::Forget(kv::BlockHash hash) {
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return;
  unused_snapshots_.push_back(it->second->second);
  lru_.erase(it->second);
  by_hash_.erase(it);
}

void RecurrentSlots::ForgetAll() {
  while (!lru_.empty()) Forget(lru_.front().first);
}

}  // namespace arle::runtime
