// The per-layer state contract between a model and the engine: what each layer keeps for every
// sequence between steps (paged attention K/V, or a recurrent state slot for linear-attention
// layers), one sequence's part of a step, and the storage the engine hands back every step.
//
// Attention layers keep one K/V row per token in fixed-size blocks found through the sequence's
// block table; a prefix of full blocks can be shared between sequences (the prefix cache).
// Recurrent layers keep a fixed-size state per sequence in a slot; their state after a prefix is
// not a set of rows, so a prefix can only be reused where a snapshot of the state was taken at
// that prefix's end. A step therefore may ask the model to copy a sequence's state into another
// slot after a given token (StateSnapshot): the engine asks for it at block boundaries and restores
// the snapshot (ModelState::CopySlot) when a later sequence's prefix match ends there
// (docs/architecture.md, "Per-layer state").
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "arle/core/dtype.h"

namespace arle::models {

enum class LayerStateKind {
  kAttention,  // paged K/V rows
  kRecurrent,  // a fixed-size f32 state per sequence (conv window, linear-attention recurrence)
};

// What one layer keeps for each sequence between steps.
struct LayerStateSpec {
  LayerStateKind kind = LayerStateKind::kAttention;
  int64_t n_head_kv = 0;     // attention: K (and V) heads of a row
  int64_t head_dim = 0;      // attention
  int64_t state_floats = 0;  // recurrent: f32 values of one sequence's state
};

struct StateSpec {
  std::vector<LayerStateSpec> layers;  // one per layer, in order

  bool has_attention() const;
  bool has_recurrent() const;
  // Bytes one block of block_size rows takes over all attention layers (K and V).
  int64_t KvBytesPerBlock(int64_t block_size, core::DType kv_dtype) const;
  // Bytes of one sequence's state over all recurrent layers.
  int64_t RecurrentBytesPerSlot() const;
};

// After the sequence's token at `position` (one of this step's), copy its recurrent state (every
// recurrent layer) into slot `slot`.
struct StateSnapshot {
  int64_t position = 0;
  int32_t slot = 0;
};

// One sequence's part of a forward step: tokens[token_begin, token_begin + n_tokens) at positions
// n_past .. n_past + n_tokens - 1, where n_past rows of the sequence are already in its state.
struct StepSequence {
  int64_t token_begin = 0;
  int64_t n_tokens = 0;
  int64_t n_past = 0;
  // Attention layers: must cover rows 0 .. n_past + n_tokens - 1.
  std::span<const int32_t> block_table;
  // Recurrent layers: the sequence's slot (-1 for models without recurrent layers). When n_past
  // is 0 the model starts from a zero state; otherwise the slot holds the state after n_past rows.
  int32_t state_slot = -1;
  // Recurrent layers: snapshots to take during this step, positions ascending.
  std::span<const StateSnapshot> snapshots;
  // Logits of this sequence's last n_logits tokens of the step, in order (0 = none, 1 = the last
  // token's: what sampling needs; more: prompt log-probs); in [0, n_tokens].
  int64_t n_logits = 0;
};

// Sizes of the state storage the engine asks for.
struct StateSizes {
  int64_t n_blocks = 0;    // paged K/V blocks (attention layers)
  int64_t block_size = 16;
  core::DType kv_dtype = core::DType::kF32;
  int32_t n_slots = 0;     // recurrent slots (sequences and snapshots), 0 without recurrent layers
};

// The storage of every sequence's state, made by Model::NewState and passed to each Forward. Which
// block and which slot belongs to which sequence is the engine's business. Thread safety: used by
// one thread (the engine's) at a time.
class ModelState {
 public:
  virtual ~ModelState() = default;
  // Copies the first n_rows rows of block src into block dst in every attention layer (a sequence
  // forking in the middle of a block). REQUIRES: valid blocks, 0 <= n_rows <= block_size.
  virtual void CopyBlockRows(int32_t src, int32_t dst, int64_t n_rows) = 0;
  // Copies slot src into slot dst in every recurrent layer (forks, snapshot restores).
  // REQUIRES: valid slots.
  virtual void CopySlot(int32_t src, int32_t dst) = 0;
};

}  // namespace arle::models
