// arle_scripted_server: a test-only server (never shipped) that serves the real OpenAiService and
// HttpServer over a real Engine whose model is a ScriptedBatchModel (scripted_model.h), so the
// end-to-end tests can make the "model" emit tool calls, reasoning and exact stop strings.
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/arle/model_source.h"
#include "arle/models/registry.h"
#include "arle/runtime/engine.h"
#include "arle/server/http_server.h"
#include "arle/server/openai_service.h"
#include "arle/tokenizer/chat_prompt.h"
#include "arle/tokenizer/tokenizer.h"
#include "tests/e2e/openai/scripted_model.h"

namespace arle::e2e {
namespace {

struct Flags {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string api_key;
  std::string served_model_name = "scripted";
  std::string tokenizer_dir = ARLE_SOURCE_DIR "/assets/tokenizers/qwen3";
  int max_queue = 1024;
  int max_seqs = 64;
  int64_t max_batch_tokens = 512;
  int kv_blocks = 512;
  int64_t context = 4096;
  int step_delay_ms = 0;
  int64_t max_body_bytes = 1 << 20;
};

int Fail(const core::Status& status) {
  std::fprintf(stderr, "arle_scripted_server: error: %s\n", status.ToString().c_str());
  return 1;
}

int Serve(const Flags& flags) {
  auto tok = tokenizer::LoadTokenizerForModelDir(flags.tokenizer_dir);
  if (!tok.ok()) return Fail(tok.status());
  io::ModelLocation location;
  location.kind = io::ModelLocation::Kind::kHfDirectory;
  location.path = flags.tokenizer_dir;
  location.description = flags.tokenizer_dir;
  auto setup = tokenizer::LoadChatSetup(location, **tok, /*override_file=*/"");
  if (!setup.ok()) return Fail(setup.status());
  if (setup->is_fallback) {
    return Fail(core::InvalidArgumentError(flags.tokenizer_dir + " has no chat template"));
  }
  const tokenizer::ChatSetup chat_setup = std::move(setup).value();

  auto model = std::make_unique<ScriptedBatchModel>(**tok, flags.context, flags.step_delay_ms);
  const int32_t eos_id = model->eos_id();
  runtime::EngineOptions engine_options;
  engine_options.kv_cache_bytes =
      static_cast<int64_t>(flags.kv_blocks) * model->kv_bytes_per_block(core::DType::kF32);
  engine_options.max_batch_tokens = flags.max_batch_tokens;
  engine_options.max_seqs = flags.max_seqs;
  engine_options.max_queue = flags.max_queue;
  engine_options.max_context_tokens = flags.context;
  auto created = runtime::Engine::Create(std::move(model), **tok, engine_options);
  if (!created.ok()) return Fail(created.status());
  std::unique_ptr<runtime::Engine> engine = std::move(created).value();

  server::OpenAiServiceOptions service_options;
  service_options.served_model_name = flags.served_model_name;
  service_options.chat_format = models::ChatFormatFor("Qwen3ForCausalLM");
  service_options.default_stop.eos_token_ids = {eos_id};
  if (auto endoftext = (*tok)->TokenToId("<|endoftext|>")) {
    service_options.default_stop.eos_token_ids.push_back(*endoftext);
  }
  service_options.default_stop.max_context_tokens = engine->max_context_tokens();
  service_options.render_chat = [&chat_setup](
                                    std::string_view messages_json, std::string_view tools_json,
                                    bool add_generation_prompt,
                                    std::string_view kwargs_json) -> core::StatusOr<std::string> {
    using Json = nlohmann::ordered_json;
    const Json messages = Json::parse(messages_json, nullptr, false);
    const Json tools = tools_json.empty() ? Json() : Json::parse(tools_json, nullptr, false);
    const Json kwargs =
        kwargs_json.empty() ? Json::object() : Json::parse(kwargs_json, nullptr, false);
    if (messages.is_discarded() || tools.is_discarded() || kwargs.is_discarded()) {
      return core::InvalidArgumentError("the chat renderer got malformed JSON");
    }
    return tokenizer::RenderChat(chat_setup, messages, tools, add_generation_prompt, kwargs);
  };
  auto service = std::make_unique<server::OpenAiService>(*engine, std::move(service_options));

  server::HttpServerOptions http_options;
  http_options.host = flags.host;
  http_options.port = flags.port;
  http_options.api_key = flags.api_key;
  http_options.max_body_bytes = static_cast<size_t>(flags.max_body_bytes);
  http_options.n_io_threads = 2;
  server::HttpServer http(http_options);
  service->RegisterRoutes(http);
  if (core::Status st = http.Start(); !st.ok()) return Fail(st);
  // The line the tests (and `arle serve`) print; the test helper parses it.
  std::fprintf(stderr, "arle serve: listening on http://%s:%d (model %s)\n", flags.host.c_str(),
               http.port(), flags.served_model_name.c_str());
  std::fflush(stderr);

  // SIGINT/SIGTERM were blocked before any thread started; wait for one here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::fprintf(stderr, "arle serve: shutting down (signal %d)\n", signal_number);
  // As `arle serve` does: stop accepting, cancel what still runs, stop the HTTP server, then the
  // engine (its last kAbort events reach closed writers), then the service.
  service->StopAccepting();
  service->CancelAll();
  http.Stop(std::chrono::seconds(3));
  engine.reset();
  service.reset();
  std::fprintf(stderr, "arle serve: stopped\n");
  return 0;
}

}  // namespace
}  // namespace arle::e2e

int main(int argc, char** argv) {
  // Block the shutdown signals in every thread (threads inherit the mask); main waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  arle::e2e::Flags flags;
  CLI::App app{"Test-only OpenAI server over a scripted model (tests/e2e/openai/scripted_model.h)"};
  app.add_option("--host", flags.host)->capture_default_str();
  app.add_option("--port", flags.port, "0 = any free port")->capture_default_str();
  app.add_option("--api-key", flags.api_key);
  app.add_option("--served-model-name", flags.served_model_name)->capture_default_str();
  app.add_option("--tokenizer-dir", flags.tokenizer_dir,
                 "tokenizer.json(.gz) + tokenizer_config.json")
      ->capture_default_str();
  app.add_option("--max-queue", flags.max_queue)
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-seqs", flags.max_seqs)->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--max-batch-tokens", flags.max_batch_tokens)
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--kv-blocks", flags.kv_blocks)
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--context", flags.context, "context length in tokens")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 20));
  app.add_option("--step-delay-ms", flags.step_delay_ms, "sleep per engine step")
      ->capture_default_str()
      ->check(CLI::Range(0, 10000));
  app.add_option("--max-body-bytes", flags.max_body_bytes)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return arle::e2e::Serve(flags);
}
