// FakeHybrid: a model family made only for tests, shaped like Qwen3.5's hybrids: its layers mix
// recurrent layers (a per-sequence state in a slot, like Gated DeltaNet) and attention layers
// (paged K/V rows). It lives in its own folder and enters through one registry line
// (models::RegisterFamily(FakeHybridFamily())), with no change to the engine: the proof that a
// new family plugs into the per-layer state contract (models/state.h).
//
// Its arithmetic is exact in f32 (integers below 2^24), so the engine's result can be compared
// bit for bit with NextLogits over the plain token history:
//   - recurrent layer r keeps (a, b); each token t updates a = (a * 31 + t + 1 + r) mod 524287 and
//     b = (b * 17 + 3 t + 7) mod 524287 (so a wrong, stale or restored-at-the-wrong-place state
//     changes the output);
//   - attention layer keeps the row (t, position) per token; the logits read every row back
//     through the block table (so a wrong block or row changes the output);
//   - the logits of the next token are a hash of every layer's state and rows.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "arle/core/file_util.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/context.h"
#include "arle/kernels/paged_attention.h"
#include "arle/models/registry.h"
#include "arle/models/standard_state.h"

namespace arle::testing::fake_hybrid {

inline constexpr float kModulus = 524287.0f;

inline void UpdateRecurrent(float* ab, int32_t token, int64_t layer) {
  ab[0] = std::fmod(ab[0] * 31.0f + static_cast<float>(token + 1 + layer), kModulus);
  ab[1] = std::fmod(ab[1] * 17.0f + static_cast<float>(3 * token + 7), kModulus);
}

// The order-sensitive hash the logits are made from, one value at a time.
class Mixer {
 public:
  void Mix(uint64_t v) {
    h_ ^= v + 0x9e3779b97f4a7c15ull;
    h_ *= 1099511628211ull;
    h_ ^= h_ >> 29;
  }
  // n_vocab pseudo-random logits in [0, 8) fixed by the hash.
  void Logits(int32_t n_vocab, float* logits) const {
    for (int32_t v = 0; v < n_vocab; ++v) {
      uint64_t x = h_ + 0xbf58476d1ce4e5b9ull * static_cast<uint64_t>(v + 1);
      x ^= x >> 31;
      x *= 0x94d049bb133111ebull;
      x ^= x >> 29;
      logits[v] = static_cast<float>(x >> 40) / static_cast<float>(1 << 24) * 8.0f;
    }
  }

 private:
  uint64_t h_ = 1469598103934665603ull;
};

// The logits after `history` for a model whose layers are `kinds` ('R' recurrent, 'A' attention):
// the reference the engine's output must equal.
inline void NextLogits(const std::string& kinds, std::span<const int32_t> history, int32_t n_vocab,
                       float* logits) {
  Mixer mix;
  for (size_t l = 0; l < kinds.size(); ++l) {
    if (kinds[l] == 'R') {
      float ab[2] = {0, 0};
      for (int32_t t : history) UpdateRecurrent(ab, t, static_cast<int64_t>(l));
      mix.Mix(static_cast<uint64_t>(ab[0]));
      mix.Mix(static_cast<uint64_t>(ab[1]));
    } else {
      for (size_t p = 0; p < history.size(); ++p) {
        mix.Mix(static_cast<uint64_t>(history[p]));
        mix.Mix(p);
      }
    }
  }
  mix.Logits(n_vocab, logits);
}

class FakeHybridModel final : public models::Model {
 public:
  // step_delay_us: each Forward sleeps this long first (tests that need a request to be running).
  FakeHybridModel(std::string kinds, int32_t n_vocab, int64_t n_ctx, int step_delay_us = 0)
      : kinds_(std::move(kinds)), step_delay_us_(step_delay_us) {
    info_.family = "fake_hybrid";
    info_.architecture = "FakeHybridForCausalLM";
    info_.n_vocab = n_vocab;
    info_.n_ctx_train = n_ctx;
    info_.n_layer = static_cast<int64_t>(kinds_.size());
    for (char k : kinds_) {
      spec_.layers.push_back(k == 'R' ? models::LayerStateSpec{models::LayerStateKind::kRecurrent,
                                                               0, 0, 2}
                                      : models::LayerStateSpec{models::LayerStateKind::kAttention,
                                                               1, 2, 0});
    }
  }
  const std::string& kinds() const { return kinds_; }

  const models::ModelInfo& info() const override { return info_; }
  const models::StateSpec& state_spec() const override { return spec_; }
  const kernels::Context* context() const override { return &ctx_; }
  core::StatusOr<std::unique_ptr<models::ModelState>> NewState(
      const models::StateSizes& sizes) const override {
    ARLE_ASSIGN_OR_RETURN(auto state, models::StandardState::Create(spec_, sizes, ctx_));
    return std::unique_ptr<models::ModelState>(std::move(state));
  }

  core::Status Forward(std::span<const int32_t> tokens, std::span<const models::StepSequence> seqs,
                       models::ModelState& model_state, std::vector<float>* logits) override {
    if (step_delay_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(step_delay_us_));
    auto& state = static_cast<models::StandardState&>(model_state);
    const int32_t n_vocab = static_cast<int32_t>(info_.n_vocab);
    logits->clear();
    for (const models::StepSequence& q : seqs) {
      if (q.state_slot < 0) return core::InvalidArgumentError("no recurrent slot");
      size_t next_snapshot = 0;
      for (size_t l = 0; l < kinds_.size(); ++l) {
        if (kinds_[l] == 'R' && q.n_past == 0) {
          float* ab = Ab(state, l, q.state_slot);
          ab[0] = ab[1] = 0;
        }
      }
      for (int64_t i = 0; i < q.n_tokens; ++i) {
        const int32_t t = tokens[q.token_begin + i];
        const int64_t pos = q.n_past + i;
        for (size_t l = 0; l < kinds_.size(); ++l) {
          if (kinds_[l] == 'R') {
            UpdateRecurrent(Ab(state, l, q.state_slot), t, static_cast<int64_t>(l));
          } else {
            float* row = Row(state, l, q, pos);
            row[0] = static_cast<float>(t);
            row[1] = static_cast<float>(pos);
          }
        }
        if (next_snapshot < q.snapshots.size() && q.snapshots[next_snapshot].position == pos) {
          state.CopySlot(q.state_slot, q.snapshots[next_snapshot++].slot);
        }
      }
      if (next_snapshot != q.snapshots.size()) {
        return core::InvalidArgumentError("a snapshot outside the step");
      }
      if (q.n_logits > 1) {
        return core::InvalidArgumentError("the fake hybrid gives only the last token's logits");
      }
      if (q.n_logits == 0) continue;
      // The same hash as NextLogits, over what the state holds: the recurrent states as they
      // are, and the attention rows (token, position) read back through the block table.
      const int64_t n_rows = q.n_past + q.n_tokens;
      Mixer mix;
      for (size_t l = 0; l < kinds_.size(); ++l) {
        if (kinds_[l] == 'R') {
          mix.Mix(static_cast<uint64_t>(Ab(state, l, q.state_slot)[0]));
          mix.Mix(static_cast<uint64_t>(Ab(state, l, q.state_slot)[1]));
        } else {
          for (int64_t p = 0; p < n_rows; ++p) {
            const float* row = Row(state, l, q, p);
            mix.Mix(static_cast<uint64_t>(row[0]));
            mix.Mix(static_cast<uint64_t>(row[1]));
          }
        }
      }
      logits->resize(logits->size() + n_vocab);
      mix.Logits(n_vocab, logits->data() + logits->size() - n_vocab);
    }
    return core::OkStatus();
  }

 private:
  static float* Ab(models::StandardState& state, size_t layer, int32_t slot) {
    return state.slots(static_cast<int64_t>(layer)).Row(slot).data_as<float>();
  }
  // K row of `pos` in layer `layer` through the sequence's block table (f32 storage).
  static float* Row(models::StandardState& state, size_t layer, const models::StepSequence& q,
                    int64_t pos) {
    const kernels::PagedKvLayer& kv = state.kv_layer(static_cast<int64_t>(layer));
    const int64_t block = q.block_table[pos / kv.block_size];
    return static_cast<float*>(kv.k) +
           kernels::PagedKvElement(block, pos % kv.block_size, 0, kv.n_head_kv, kv.block_size,
                                   kv.head_dim);
  }

  std::string kinds_;
  int step_delay_us_ = 0;
  models::ModelInfo info_;
  models::StateSpec spec_;
  core::ThreadPool pool_{1};
  kernels::Context ctx_ = kernels::Context::Cpu(kernels::Backend::kCpu, pool_);
};

// The family's registry entry: config.json {"architectures": ["FakeHybridForCausalLM"],
// "layers": "RAR", "vocab_size": N, "max_position_embeddings": C, "step_delay_us": D}.
inline models::FamilyEntry FakeHybridFamily() {
  models::FamilyEntry family;
  family.name = "fake_hybrid";
  models::ChatFormat chat;
  chat.output_parser = "plain";
  family.architectures = {{"FakeHybridForCausalLM", "fake_hybrid", chat}};
  family.load_hf = [](const std::string& dir,
                      const models::LoadOptions&) -> core::StatusOr<std::unique_ptr<models::Model>> {
    ARLE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(core::JoinPath(dir, "config.json")));
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("layers") || !j["layers"].is_string()) {
      return core::InvalidArgumentError(dir + ": config.json needs \"layers\"");
    }
    return std::unique_ptr<models::Model>(std::make_unique<FakeHybridModel>(
        j["layers"].get<std::string>(), j.value("vocab_size", 90),
        j.value("max_position_embeddings", 512), j.value("step_delay_us", 0)));
  };
  return family;
}

}  // namespace arle::testing::fake_hybrid
