// RecurrentSlots: the engine's bookkeeping for models with recurrent layers (models/state.h):
// which state slot each running sequence holds, and which slots hold snapshots of a state at a
// block boundary, keyed by the prefix cache's chain hash of the tokens up to that boundary, so a
// later sequence whose cached prefix ends there starts from the snapshot instead of token 0.
// Snapshot slots are reused least recently used first. Engine thread only.
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "arle/kv/block_pool.h"

namespace arle::runtime {

class RecurrentSlots {
 public:
  // No recurrent layers: no slots.
  RecurrentSlots() = default;
  // Slots [0, n_sequence) for sequences, [n_sequence, n_sequence + n_snapshot) for snapshots.
  RecurrentSlots(int32_t n_sequence, int32_t n_snapshot);

  bool enabled() const { return n_sequence_ > 0; }
  // Slots the model state must hold.
  int32_t n_slots() const { return n_sequence_ + n_snapshot_; }
  int32_t n_snapshot_slots() const { return n_snapshot_; }

  // A free sequence slot, or -1 when every one is held.
  int32_t Acquire();
  // Returns a sequence slot. REQUIRES: held.
  void Release(int32_t slot);

  // The snapshot slot holding the state after the chain ending in `hash`, or -1; a hit becomes the
  // most recently used.
  int32_t FindSnapshot(kv::BlockHash hash);
  // The slot the state after the chain ending in `hash` is to be written into this step: the one
  // already holding it, else the least recently used snapshot slot (its old snapshot forgotten).
  // -1 when there are no snapshot slots.
  int32_t SnapshotSlotFor(kv::BlockHash hash);
  // Forgets the snapshot of `hash` (its step failed before writing it).
  void Forget(kv::BlockHash hash);
  // Forgets every snapshot (after a weight update).
  void ForgetAll();

 private:
  int32_t n_sequence_ = 0, n_snapshot_ = 0;
  std::vector<int32_t> free_;  // free sequence slots
  std::vector<bool> held_;
  // Snapshot slots in use order, least recently used first, with the hash each holds.
  std::list<std::pair<kv::BlockHash, int32_t>> lru_;
  std::unordered_map<kv::BlockHash, std::list<std::pair<kv::BlockHash, int32_t>>::iterator> by_hash_;
  std::vector<int32_t> unused_snapshots_;
};

}  // namespace arle::runtime
