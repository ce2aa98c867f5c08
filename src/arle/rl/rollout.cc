#include "arle/rl/rollout.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>

#include "arle/agent/engine_model.h"
#include "arle/io/model_location.h"

namespace arle::rl {

core::StatusOr<PromptRenderer> PromptRenderer::Create(const std::string& model_dir,
                                                      const tokenizer::Tokenizer& tokenizer,
                                                      bool chat,
                                                      const std::string& enable_thinking) {
  PromptRenderer r;
  r.tokenizer_ = &tokenizer;
  r.chat_ = chat;
  const io::ModelLocation location{io::ModelLocation::Kind::kHfDirectory, model_dir, model_dir};
  ARLE_ASSIGN_OR_RETURN(r.setup_, tokenizer::LoadChatSetup(location, tokenizer, ""));
  ARLE_ASSIGN_OR_RETURN(nlohmann::ordered_json kwargs, tokenizer::ThinkingKwargs(enable_thinking));
  r.kwargs_ = std::make_shared<const nlohmann::ordered_json>(std::move(kwargs));
  return r;
}

core::StatusOr<std::vector<int32_t>> PromptRenderer::Render(const RlTask& task) const {
  const std::string where = task.where.empty() ? "task " + task.id : task.where;
  std::vector<int32_t> ids;
  if (task.is_chat() || chat_) {
    std::vector<agent::AgentMessage> messages = task.messages;
    if (!task.is_chat()) messages.push_back({.role = "user", .content = task.prompt});
    auto text = agent::RenderForGeneration(setup_, messages, nullptr, *kwargs_);
    if (!text.ok()) {
      return core::InvalidArgumentError(
          where + ": the chat template cannot render it: " + text.status().message());
    }
    ids = tokenizer_->Encode(*text, {.add_special_tokens = false, .parse_special = true});
  } else {
    ids = tokenizer_->Encode(task.prompt, {.add_special_tokens = true, .parse_special = false});
  }
  if (ids.empty()) return core::InvalidArgumentError(where + ": the prompt is empty");
  return ids;
}

std::vector<SampleBlock> SampleBlocks(int n) {
  std::vector<SampleBlock> blocks;
  for (int first = 0; first < n; first += runtime::kMaxSamples) {
    blocks.push_back({first, std::min(runtime::kMaxSamples, n - first)});
  }
  return blocks;
}

Rollouts::Rollouts(runtime::Engine& engine, const models::Model& model)
    : engine_(engine), stop_(runtime::DefaultStopParams(model, engine.tokenizer())) {}

core::StatusOr<std::vector<std::vector<RolloutSample>>> Rollouts::Run(
    const std::vector<std::vector<int32_t>>& prompts, const RolloutParams& params,
    const std::vector<uint64_t>& seeds) {
  std::vector<std::vector<RolloutSample>> out(prompts.size());
  for (auto& samples : out) samples.resize(static_cast<size_t>(params.n));
  std::mutex mu;
  std::condition_variable cv;
  int64_t open_samples = 0;
  bool aborted = false;
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (const SampleBlock& block : SampleBlocks(params.n)) {
      const int first = block.first, n = block.n;
      runtime::EngineRequest r;
      r.prompt_tokens = prompts[i];
      r.n = n;
      r.sampling.temperature = params.temperature;
      r.sampling.top_p = params.top_p;
      r.sampling.seed = seeds[i] + static_cast<uint64_t>(first);
      r.sampling.logprobs = true;
      r.sampling.logprobs_mode = runtime::LogprobsMode::kTempered;
      r.stop = stop_;
      r.stop.max_tokens = params.max_tokens;
      {
        std::lock_guard<std::mutex> lock(mu);
        open_samples += n;
      }
      RolloutSample* base = out[i].data() + first;
      auto id = engine_.Submit(std::move(r), [&, base](const runtime::EngineOutput& e) {
        RolloutSample& s = base[e.index];
        for (const runtime::SampledToken& t : e.tokens) {
          s.ids.push_back(t.id);
          s.logprobs.push_back(t.logprob);
        }
        s.text += e.text;
        if (e.finish_reason == runtime::FinishReason::kNone) return;
        s.finish = e.finish_reason;
        std::lock_guard<std::mutex> lock(mu);
        aborted |= e.finish_reason == runtime::FinishReason::kAbort;
        if (--open_samples == 0) cv.notify_all();
      });
      if (!id.ok()) {
        // Let what was submitted finish before the callbacks' captures go away.
        std::unique_lock<std::mutex> lock(mu);
        open_samples -= n;
        cv.wait(lock, [&] { return open_samples == 0; });
        return core::Status(id.status().code(),
                            "rollout prompt " + std::to_string(i) + ": " + id.status().message());
      }
    }
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return open_samples == 0; });
  if (aborted) return core::FailedPreconditionError("the engine stopped during the rollouts");
  return out;
}

}  // namespace arle::rl
