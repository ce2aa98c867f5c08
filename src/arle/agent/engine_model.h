// The agent's model on the in-process engine (the one `arle serve` runs): conversations rendered
// with the model's chat template, generations submitted to runtime::Engine and streamed back, so
// a turn's prompt reuses the previous turns' KV blocks through the prefix cache.
#pragma once

#include <nlohmann/json_fwd.hpp>  // declarations only

#include <memory>
#include <string>

#include "arle/agent/agent.h"
#include "arle/runtime/engine.h"
#include "arle/tokenizer/chat_prompt.h"

namespace arle::agent {

// `messages` rendered with the chat template, the generation prompt appended: the text a model
// continues from (EngineAgentModel::Render's; RL rollouts render their prompts with it too).
// `tools`: an array or null; `kwargs`: extra template variables.
core::StatusOr<std::string> RenderForGeneration(const tokenizer::ChatSetup& setup,
                                                const std::vector<AgentMessage>& messages,
                                                const nlohmann::ordered_json& tools,
                                                const nlohmann::ordered_json& kwargs);

class EngineAgentModel : public AgentModel {
 public:
  // `engine` and `setup` must outlive this. `request` is the template of every generation
  // (sampling, stop params; its prompt is ignored): with a seed, the k-th generation (from 0)
  // samples with seed + k. With sampling.logprobs, each Completion carries its tokens'
  // log-probs. `kwargs`: extra template variables.
  EngineAgentModel(runtime::Engine& engine, const tokenizer::ChatSetup& setup,
                   std::string parser_family, runtime::EngineRequest request,
                   nlohmann::ordered_json kwargs);
  ~EngineAgentModel() override;

  core::StatusOr<std::string> Render(const std::vector<AgentMessage>& messages,
                                     const std::string& tools_json) override;
  core::StatusOr<Completion> Generate(
      const std::string& prompt, const std::function<bool(std::string_view)>& on_text) override;
  std::string ParserFamily() const override { return parser_family_; }

 private:
  runtime::Engine& engine_;
  const tokenizer::ChatSetup& setup_;
  std::string parser_family_;
  runtime::EngineRequest request_;
  uint64_t n_generations_ = 0;
  std::unique_ptr<const nlohmann::ordered_json> kwargs_;  // keeps json.hpp out of this header
};

}  // namespace arle::agent
