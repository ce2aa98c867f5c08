#include "arle/rl/policy.h"

#include <cmath>
#include <span>
#include <utility>

#include "arle/runtime/sampler.h"

namespace arle::rl {

core::StatusOr<std::unique_ptr<Policy>> Policy::Create(const models::llama::LlamaConfig& config,
                                                       models::llama::ModelWeights weights,
                                                       const tokenizer::Tokenizer& tokenizer,
                                                       const PolicyOptions& options) {
  std::unique_ptr<Policy> p(new Policy());
  p->train_pool_ = std::make_unique<core::ThreadPool>(options.n_threads);
  p->train_ctx_ = std::make_unique<kernels::Context>(
      kernels::Context::Cpu(kernels::Backend::kCpu, *p->train_pool_));
  ARLE_ASSIGN_OR_RETURN(p->trainer_, train::LlamaTrainer::Create(config, std::move(weights),
                                                                 *p->train_ctx_, options.lora));
  models::LoadOptions load;
  load.n_threads = options.n_threads;
  load.backend = kernels::Backend::kCpu;
  load.float_matmul = kernels::FloatMatMul::kGemm;
  // The engine's model reads the trainer's tensors (merged ones under LoRA) in place.
  ARLE_ASSIGN_OR_RETURN(
      p->model_, models::llama::LlamaModel::FromWeights(config, p->trainer_->weights(), load));
  runtime::EngineOptions engine = options.engine;
  engine.kv_dtype = core::DType::kF32;
  ARLE_ASSIGN_OR_RETURN(p->engine_, runtime::Engine::Create(*p->model_, tokenizer, engine));
  return p;
}

Policy::~Policy() {
  engine_.reset();  // before the model and the weights it reads
  model_.reset();
}

core::StatusOr<TokenScores> Policy::Score(const train::Batch& batch, float temperature) {
  return ScoreBatch(*trainer_, batch, temperature);
}

core::StatusOr<TokenScores> ScoreBatch(train::LlamaTrainer& trainer, const train::Batch& batch,
                                       float temperature) {
  TokenScores out;
  std::vector<float> scratch;
  ARLE_RETURN_IF_ERROR(trainer.ForwardLogits(batch, [&](std::span<const int64_t> positions,
                                                        const core::Tensor& logits) {
    const int64_t v = logits.dim(1);
    const float* data = logits.data_as<float>();
    for (size_t r = 0; r < positions.size(); ++r) {
      const std::span<const float> row(data + static_cast<int64_t>(r) * v, static_cast<size_t>(v));
      const int32_t target = batch.targets[positions[r]];
      out.logprob.push_back(
          runtime::TemperedTokenLogprobs(row, target, temperature, 0, &scratch).logprob);
      // Entropy of softmax(row / T) in double: lse - sum p u.
      const std::span<const float> u =
          temperature == 1.0f || temperature < runtime::kGreedyTemperature
              ? row
              : std::span<const float>(scratch);
      double max = -INFINITY;
      for (const float x : u) max = std::max(max, static_cast<double>(x));
      double sum = 0, weighted = 0;
      for (const float x : u) {
        const double e = std::exp(x - max);
        sum += e;
        weighted += e * x;
      }
      out.entropy.push_back(static_cast<float>(max + std::log(sum) - weighted / sum));
    }
  }));
  return out;
}

core::Status Policy::Update(const std::function<core::Status()>& update) {
  return engine_->UpdateWeights([&]() -> core::Status {
    ARLE_RETURN_IF_ERROR(update());
    trainer_->MergeLora();
    return core::OkStatus();
  });
}

}  // namespace arle::rl
