// Rendering through chat_prompt.h; generation through a runtime::RequestStream read on the
// agent's thread.
#include "arle/agent/engine_model.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>

#include "arle/runtime/request_stream.h"

namespace arle::agent {

EngineAgentModel::EngineAgentModel(runtime::Engine& engine, const tokenizer::ChatSetup& setup,
                                   std::string parser_family, runtime::EngineRequest request,
                                   nlohmann::ordered_json kwargs)
    : engine_(engine),
      setup_(setup),
      parser_family_(std::move(parser_family)),
      request_(std::move(request)),
      kwargs_(std::make_unique<const nlohmann::ordered_json>(std::move(kwargs))) {}

EngineAgentModel::~EngineAgentModel() = default;

core::StatusOr<std::string> RenderForGeneration(const tokenizer::ChatSetup& setup,
                                                const std::vector<AgentMessage>& messages,
                                                const nlohmann::ordered_json& tools,
                                                const nlohmann::ordered_json& kwargs) {
  const nlohmann::ordered_json m = nlohmann::ordered_json::parse(MessagesToJson(messages));
  return tokenizer::RenderChat(setup, m, tools, /*add_generation_prompt=*/true, kwargs);
}

core::StatusOr<std::string> EngineAgentModel::Render(const std::vector<AgentMessage>& messages,
                                                     const std::string& tools_json) {
  const nlohmann::ordered_json tools =
      tools_json.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json::parse(tools_json);
  return RenderForGeneration(setup_, messages, tools, *kwargs_);
}

core::StatusOr<Completion> EngineAgentModel::Generate(
    const std::string& prompt, const std::function<bool(std::string_view)>& on_text) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  runtime::EngineRequest request = request_;
  // Each generation of a seeded conversation draws its own reproducible stream.
  if (request.sampling.seed) *request.sampling.seed += n_generations_;
  ++n_generations_;
  tokenizer::EncodeOptions encode;
  encode.add_special_tokens = false;  // the template writes its own special tokens
  request.prompt_tokens = engine_.tokenizer().Encode(prompt, encode);
  if (request.prompt_tokens.empty()) return core::InvalidArgumentError("agent: empty prompt");
  Completion completion;
  completion.prompt_tokens = request.prompt_tokens;

  // The engine thread only queues; this thread streams, so on_text may be slow (a terminal).
  auto stream = runtime::RequestStream::Submit(engine_, std::move(request));
  if (!stream.ok()) return stream.status();
  bool cancelled = false;
  while (std::optional<runtime::EngineOutput> out = (*stream)->Next()) {
    if (completion.tokens.empty() && !out->tokens.empty()) {
      completion.ttft_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    }
    for (const runtime::SampledToken& t : out->tokens) {
      completion.tokens.push_back(t.id);
      if (request_.sampling.logprobs) completion.logprobs.push_back(t.logprob);
    }
    if (!out->text.empty() && !cancelled && !on_text(out->text)) {
      cancelled = true;
      (*stream)->Cancel();  // its final event (abort) still comes and ends the loop
    }
    if (out->finish_reason != runtime::FinishReason::kNone) {
      completion.finish_reason = std::string(runtime::FinishReasonName(out->finish_reason));
      completion.n_cached_prompt_tokens = out->n_cached_prompt_tokens;
    }
  }
  if (cancelled) completion.finish_reason = "abort";
  completion.total_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return completion;
}

}  // namespace arle::agent
