// `arle run`: one completion from a prompt, streamed to stdout (or one JSON object with --json).
// In chat mode with tools (the default for chat models) it runs the agent loop once instead
// (run_agent.h).
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "apps/arle/commands.h"
#include "arle/models/registry.h"
#include "apps/arle/generation_flags.h"
#include "apps/arle/model_source.h"
#include "apps/arle/run_agent.h"
#include "arle/runtime/engine.h"
#include "arle/runtime/request_stream.h"
#include "arle/runtime/output_parser.h"
#include "arle/tokenizer/chat_prompt.h"

namespace arle::app {
namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  bool from_stdin = false;
  GenerationFlags gen;
  bool json = false;
  int threads = 0;
  std::string dump_dir;
  // Chat: render the prompt through the model's template. Unset = when the model has one.
  bool chat_on = false;   // --chat
  bool chat_off = false;  // --no-chat
  std::string system;
  std::string chat_template;
  std::string enable_thinking;
  // Agent (chat mode): tools on unless --no-tools.
  AgentRunSettings agent;
};


int Run(const RunOptions& o) {
  std::string prompt = o.prompt;
  std::optional<tokenizer::ChatSetup> chat_setup;  // kept for the agent
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
  if (o.from_stdin) {
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  const std::string user_text = prompt;  // before any chat rendering
  models::LoadOptions load;
  load.n_threads = o.threads;
  load.dump_dir = o.dump_dir;
  auto loaded = LoadModel(o.model, load);
  if (!loaded.ok()) return ReportError(loaded.status());
  models::Model& model = *loaded->model;
  const tokenizer::Tokenizer& tok = *loaded->tokenizer;

  runtime::EngineRequest request;
  bool chat = false;
  runtime::OutputParserOptions parser_options;
  if (!o.chat_off || !o.system.empty() || !o.chat_template.empty()) {
    auto setup =
        tokenizer::LoadChatSetup(loaded->location, tok, o.chat_template, loaded->gguf.get());
    if (!setup.ok()) return ReportError(setup.status());
    chat_setup = *setup;
    // Default: chat only when the model ships a template; --chat forces it (fallback template).
    chat = o.chat_on || !o.system.empty() || (!o.chat_off && !setup->is_fallback);
    if (chat) {
      nlohmann::ordered_json messages = nlohmann::ordered_json::array();
      if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
      messages.push_back({{"role", "user"}, {"content", prompt}});
      auto thinking = tokenizer::ThinkingKwargs(o.enable_thinking);
      if (!thinking.ok()) return ReportError(thinking.status());
      kwargs = std::move(thinking).value();
      auto rendered = tokenizer::RenderChat(*setup, messages, nullptr, true, kwargs);
      if (!rendered.ok()) return ReportError(rendered.status());
      prompt = std::move(rendered).value();
      parser_options.start_in_reasoning = runtime::PromptEndsInsideReasoning(prompt);
    }
  }
  tokenizer::EncodeOptions encode_options;
  encode_options.add_special_tokens = !chat;  // the template writes its own special tokens
  request.prompt_tokens = tok.Encode(prompt, encode_options);
  if (request.prompt_tokens.empty()) {
    return ReportError(core::InvalidArgumentError(
        "the prompt is empty and this model's tokenizer adds no BOS token",
        "pass --prompt TEXT or --stdin"));
  }
  ApplyGenerationFlags(o.gen, model, tok, &request.sampling, &request.stop, &request.stop_strings);
  request.sampling.logprobs = o.json;
  request.default_seed =
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  if (chat && o.agent.tools) {
    // The agent loop: the user message is the prompt text, rendered anew (with the tools) on
    // every model call.
    runtime::EngineRequest agent_request;
    agent_request.sampling = request.sampling;
    agent_request.sampling.logprobs = false;
    agent_request.stop = request.stop;
    agent_request.stop_strings = request.stop_strings;
    agent_request.default_seed = request.default_seed;
    AgentRunSettings settings = o.agent;
    settings.json = o.json;
    settings.system = o.system;
    return RunAgentOnce(*loaded, *chat_setup, kwargs, agent_request, user_text, settings);
  }

  auto parser = runtime::CreateOutputParser(
      chat ? models::ChatFormatFor(model.info().architecture).output_parser : "plain",
      parser_options);
  if (!parser.ok()) return ReportError(parser.status());
  std::vector<runtime::OutputDelta> deltas;

  // One request on the engine: a batch of one, the same path as the server's.
  runtime::EngineOptions engine_options;
  engine_options.max_seqs = 1;
  auto engine = runtime::Engine::Create(model, tok, engine_options);
  if (!engine.ok()) return ReportError(engine.status());
  using Clock = runtime::RequestStream::Clock;
  const std::vector<int32_t> prompt_tokens = request.prompt_tokens;
  const int64_t n_prompt = static_cast<int64_t>(prompt_tokens.size());
  auto stream = runtime::RequestStream::Submit(**engine, std::move(request));
  if (!stream.ok()) return ReportError(stream.status());
  struct {
    std::vector<int32_t> tokens;
    std::vector<runtime::SampledToken> sampled;
    std::string text;
    std::optional<std::string> stop_string;
    runtime::FinishReason finish_reason = runtime::FinishReason::kNone;
  } result;
  while (std::optional<runtime::EngineOutput> out = (*stream)->Next()) {
    for (runtime::SampledToken& t : out->tokens) {
      result.tokens.push_back(t.id);
      result.sampled.push_back(std::move(t));
    }
    result.text += out->text;
    (*parser)->Feed(out->text, &deltas);
    if (!o.json) {
      std::fwrite(out->text.data(), 1, out->text.size(), stdout);
      std::fflush(stdout);
    }
    if (out->finish_reason != runtime::FinishReason::kNone) {
      result.finish_reason = out->finish_reason;
      result.stop_string = out->stop_string;
    }
  }
  // Engine-side times: the reader may lag behind the engine.
  const Clock::time_point start = (*stream)->submitted();
  const Clock::time_point end = (*stream)->finished().value_or(Clock::now());
  const std::optional<Clock::time_point> first_token = (*stream)->first_token();
  (*parser)->Flush(&deltas);
  const runtime::ParsedOutput& parsed = (*parser)->result();
  const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const int64_t n_generated = static_cast<int64_t>(result.tokens.size());
  // Prefill: up to the first token (the prompt's forward and one sample); decode: the rest.
  const double ttft = first_token ? seconds(*first_token - start) : seconds(end - start);
  const double decode_seconds = first_token ? seconds(end - *first_token) : 0;
  const double decode_tps = decode_seconds > 0 && n_generated > 1 ? (n_generated - 1) / decode_seconds : 0;
  const double prefill_tps = ttft > 0 ? n_prompt / ttft : 0;
  if (o.json) {
    nlohmann::json out;
    out["model"] = loaded->location.description;
    out["text"] = result.text;
    out["chat"] = chat;
    out["content"] = parsed.content;
    out["reasoning_content"] = parsed.reasoning;
    nlohmann::json calls = nlohmann::json::array();
    for (const auto& c : parsed.tool_calls) {
      calls.push_back({{"id", c.id}, {"type", c.type},
                       {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    out["tool_calls"] = calls;
    out["malformed_output"] = parsed.malformed;
    out["prompt_tokens"] = prompt_tokens;
    out["tokens"] = result.tokens;
    nlohmann::json logprobs = nlohmann::json::array();
    for (const auto& s : result.sampled) logprobs.push_back(s.logprob);
    out["logprobs"] = logprobs;
    out["finish_reason"] = std::string(runtime::FinishReasonName(result.finish_reason));
    out["stop_string"] = result.stop_string ? nlohmann::json(*result.stop_string) : nullptr;
    out["usage"] = {{"prompt_tokens", n_prompt},
                    {"completion_tokens", n_generated},
                    {"total_tokens", n_prompt + n_generated}};
    out["timings"] = {{"prefill_seconds", ttft},
                      {"ttft_seconds", ttft},
                      {"decode_seconds", decode_seconds},
                      {"total_seconds", seconds(end - start)},
                      {"prefill_tokens_per_second", prefill_tps},
                      {"decode_tokens_per_second", decode_tps}};
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    std::fputc('\n', stdout);
    std::fflush(stdout);  // the summary goes to stderr: keep it after the text
    fmt::print(stderr, "[{}: prompt {} tokens at {:.1f} tok/s, generated {} tokens at {:.1f} tok/s, "
               "finish_reason {}]\n",
               loaded->location.description, n_prompt, prefill_tps, n_generated, decode_tps,
               runtime::FinishReasonName(result.finish_reason));
  }
  return kExitOk;
}

}  // namespace

void RegisterRunCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "run", "Generate a completion for a prompt (chat models: run the agent with its tools once)");
  static RunOptions o;
  auto* prompt = cmd->add_option("-p,--prompt", o.prompt, "Prompt text (default: empty, i.e. BOS only)");
  auto* from_stdin = cmd->add_flag("--stdin", o.from_stdin, "Read the prompt from stdin");
  prompt->excludes(from_stdin);
  cmd->add_option("-m,--model", o.model,
                  "Hugging Face directory, .gguf file or ORG/NAME (default: built-in stories260K)");
  AddGenerationFlags(cmd, o.gen);
  cmd->add_flag("--json", o.json, "Print one JSON object: text, token ids, finish reason, timings");
  cmd->add_option("-t,--threads", o.threads, "Compute threads (default: physical cores)");
  auto* chat_on = cmd->add_flag(
      "--chat", o.chat_on, "Render the prompt through the model's chat template (default: when it has one)");
  auto* chat_off = cmd->add_flag("--no-chat", o.chat_off, "Use the prompt as raw text");
  chat_on->excludes(chat_off);
  cmd->add_option("--system", o.system, "System message (implies --chat)");
  cmd->add_option("--chat-template", o.chat_template, "Chat template file overriding the model's");
  cmd->add_option("--enable-thinking", o.enable_thinking, "true | false (Qwen3 templates)");
  cmd->add_option("--dump-dir", o.dump_dir,
                  "Debug: write every named activation (blk.N.attn_norm, ...) of each forward as "
                  "<name>.f32 plus manifest.json into DIR (also ARLE_DUMP_DIR)");
  AddAgentOptions(cmd, o.agent);
  cmd->callback([&exit_code] { exit_code = Run(o); });
}

}  // namespace arle::app
