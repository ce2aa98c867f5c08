// LlamaTrainer::EstimateMemory against what a trainer really allocates: every buffer, for full
// training and LoRA, on configs that switch on each optional tensor (biases, q/k norm, an untied
// head). The weights come from convert's HfWeightSpecs, a list written apart from the trainer's.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "arle/convert/model_init.h"
#include "arle/core/buffer.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/context.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/llama/llama_weights.h"
#include "arle/train/llama_train.h"
#include "arle/train/optimizer.h"

namespace arle::train {
namespace {

using models::llama::LlamaConfig;

LlamaConfig Config(const std::string& json) {
  auto c = models::llama::ParseHfConfig(json, "test");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

// A llama: tied head, no biases. Heads of 8: q 4 x 8, kv 2 x 8.
const char* kLlama = R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 97,
  "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
  "intermediate_size": 44, "tie_word_embeddings": true})";
// Every optional tensor of the llama family: attention and MLP biases, an untied head.
const char* kLlamaBiases = R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 50,
  "hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 1,
  "intermediate_size": 40, "attention_bias": true, "mlp_bias": true,
  "tie_word_embeddings": false})";
// Qwen3: q/k norm, head_dim apart from hidden / heads.
const char* kQwen3 = R"({"architectures": ["Qwen3ForCausalLM"], "vocab_size": 120,
  "hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
  "head_dim": 16, "intermediate_size": 36, "tie_word_embeddings": true})";

// Random f32 weights for `c`, owned, as the trainer takes them.
models::llama::ModelWeights RandomWeights(const LlamaConfig& c) {
  std::map<std::string, core::Buffer> buffers;
  std::map<std::string, std::vector<int64_t>> shapes;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-0.1f, 0.1f);
  for (const convert::WeightSpec& spec : convert::HfWeightSpecs(c)) {
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    core::Buffer b(static_cast<size_t>(n) * 4);
    for (int64_t i = 0; i < n; ++i) b.as<float>()[i] = u(rng);
    buffers.emplace(spec.name, std::move(b));
    shapes[spec.name] = spec.shape;
  }
  auto bound = models::llama::BindWeights(
      c,
      [&](const std::string& name) -> core::StatusOr<core::Tensor> {
        auto it = buffers.find(name);
        if (it == buffers.end()) return core::NotFoundError(name);
        return it->second.AsTensor(core::DType::kF32, shapes[name]);
      },
      "test");
  EXPECT_TRUE(bound.ok()) << bound.status().ToString();
  auto owned = models::llama::OwnedF32Copy(*bound);
  EXPECT_TRUE(owned.ok()) << owned.status().ToString();
  return std::move(owned).value();
}

// Trains one micro-batch of n_seq x seq_len and compares every field with the estimate.
void ExpectEstimateIsAllocation(const LlamaConfig& c, const LoraOptions& lora, int64_t n_seq,
                                int64_t seq_len) {
  core::ThreadPool pool(2);
  const kernels::Context ctx = kernels::Context::Cpu(kernels::Backend::kCpu, pool);
  auto trainer = LlamaTrainer::Create(c, RandomWeights(c), ctx, lora);
  ASSERT_TRUE(trainer.ok()) << trainer.status().ToString();
  std::vector<int32_t> inputs, targets;
  for (int64_t i = 0; i < n_seq * seq_len; ++i) {
    inputs.push_back(static_cast<int32_t>((i * 7 + 3) % c.n_vocab));
    targets.push_back(static_cast<int32_t>((i * 5 + 1) % c.n_vocab));
  }
  ASSERT_TRUE(
      (*trainer)
          ->ForwardBackward(
              {.inputs = inputs, .targets = targets, .n_seq = n_seq, .seq_len = seq_len}, 0.01)
          .ok());

  auto est = LlamaTrainer::EstimateMemory(c, n_seq * seq_len, lora);
  ASSERT_TRUE(est.ok()) << est.status().ToString();
  const TrainMemory got = (*trainer)->AllocatedMemory();
  EXPECT_EQ(est->weights, got.weights);
  EXPECT_EQ(est->gradients, got.gradients);
  EXPECT_EQ(est->activations, got.activations);
  EXPECT_EQ(est->attention_lse, got.attention_lse);
  EXPECT_EQ(est->grad_workspace, got.grad_workspace);
  EXPECT_EQ(est->loss_head, got.loss_head);
  EXPECT_EQ(est->head_chunk_rows, got.head_chunk_rows);
  EXPECT_EQ(est->trainable_params, got.trainable_params);
  EXPECT_GT(est->activations, 0);

  // AdamW's state, as RunTraining makes it over the trainer's parameters.
  std::vector<ParamRef> refs;
  for (const TrainParam& p : (*trainer)->params()) refs.push_back({p.name, *p.value, *p.grad});
  auto adam = MakeAdamW(refs, AdamWOptions{});
  ASSERT_TRUE(adam.ok());
  int64_t state = 0;
  (*adam)->ForEachState([&](const std::string&, core::Tensor t) { state += t.nbytes(); });
  EXPECT_EQ(est->optimizer, state);
  EXPECT_EQ(est->total(), est->weights + est->gradients + est->optimizer + est->activations +
                              est->attention_lse + est->grad_workspace + est->loss_head +
                              est->lora_merge);
}

TEST(TrainMemory, FullTrainingEstimateIsTheAllocation) {
  ExpectEstimateIsAllocation(Config(kLlama), {}, 2, 8);
  ExpectEstimateIsAllocation(Config(kLlamaBiases), {}, 3, 5);
  ExpectEstimateIsAllocation(Config(kQwen3), {}, 1, 13);
}

TEST(TrainMemory, LoraEstimateIsTheAllocation) {
  LoraOptions lora;
  lora.rank = 4;
  lora.alpha = 8;
  lora.targets = {"q_proj", "v_proj", "down_proj"};
  ExpectEstimateIsAllocation(Config(kLlama), lora, 2, 8);
  lora.targets = {"all-linear"};
  lora.rank = 3;  // views that are not multiples of 16 floats
  ExpectEstimateIsAllocation(Config(kLlamaBiases), lora, 2, 7);
  ExpectEstimateIsAllocation(Config(kQwen3), lora, 1, 9);
}

TEST(TrainMemory, LoraTrainsOnlyTheAdapters) {
  const LlamaConfig c = Config(kLlama);
  LoraOptions lora;
  lora.rank = 2;
  lora.alpha = 4;
  lora.targets = {"q_proj"};
  auto full = LlamaTrainer::EstimateMemory(c, 16, {});
  auto adapted = LlamaTrainer::EstimateMemory(c, 16, lora);
  ASSERT_TRUE(full.ok() && adapted.ok());
  // q_proj is [32, 32] here: A [2, 32] + B [32, 2] per layer, two layers.
  EXPECT_EQ(adapted->trainable_params, 2 * (2 * 32 + 32 * 2));
  EXPECT_EQ(adapted->gradients, adapted->trainable_params * 4);
  EXPECT_EQ(adapted->optimizer, 2 * adapted->trainable_params * 4);
  EXPECT_EQ(adapted->lora_merge, 32 * 32 * 4);
  EXPECT_EQ(full->gradients, full->weights);
  EXPECT_LT(adapted->optimizer, full->optimizer);
}

TEST(TrainMemory, RejectsWhatCreateRejects) {
  const LlamaConfig c = Config(kLlama);
  LoraOptions lora;
  lora.rank = 4;
  lora.alpha = 8;
  lora.targets = {"qkv"};
  EXPECT_EQ(LlamaTrainer::EstimateMemory(c, 8, lora).status().code(),
            core::StatusCode::kInvalidArgument);
  lora.targets = {"k_proj"};
  lora.rank = 17;  // k_proj is [16, 32]
  EXPECT_EQ(LlamaTrainer::EstimateMemory(c, 8, lora).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(LlamaTrainer::EstimateMemory(c, 0, {}).status().code(),
            core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace arle::train
