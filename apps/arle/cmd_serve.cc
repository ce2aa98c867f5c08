// `arle serve`: the OpenAI-compatible HTTP server (server/OpenAiService over runtime/Engine) for one
// model, with graceful shutdown on SIGINT/SIGTERM.
#include <fmt/core.h>
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "apps/arle/commands.h"
#include "apps/arle/model_source.h"
#include "apps/arle/train_control.h"
#include "apps/arle/version.h"
#include "arle/core/dtype.h"
#include "arle/models/registry.h"
#include "arle/runtime/engine.h"
#include "arle/server/admin_weights.h"
#include "arle/server/http_server.h"
#include "arle/server/openai_service.h"
#include "arle/tokenizer/chat_prompt.h"

namespace arle::app {
namespace {

struct ServeOptions {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  int64_t max_batch_tokens = 512;
  int64_t kv_cache_mb = 0;
  std::string kv_dtype = "f32";
  int max_seqs = 64;
  int max_queue = 1024;
  std::string served_model_name;
  int threads = 0;
  int io_threads = 2;
  std::string chat_template;
  bool no_prefix_cache = false;
  std::string train_control_url;  // proxied under /v1/train/ (train_control.h)
  bool accept_weights = false;    // POST /v1/admin/weights (admin_weights.h)
};

// Running requests get this long to finish after SIGINT/SIGTERM; then they are cancelled (their
// streams end with finish_reason "abort") and the server closes what is left.
constexpr auto kShutdownGrace = std::chrono::seconds(3);
constexpr auto kShutdownDeadline = std::chrono::seconds(5);

// The name clients pass as `model`: the built-in model's name, a Hugging Face ORG/NAME as given,
// else the directory's basename or the GGUF file's stem.
std::string DefaultServedName(const std::string& spec, const ModelLocation& location) {
  if (location.kind == ModelLocation::Kind::kBuiltin) return "stories260K";
  std::error_code ec;
  if (!spec.empty() && !std::filesystem::exists(spec, ec)) return spec;  // resolved in the HF cache
  std::filesystem::path p(location.path);
  if (location.kind == ModelLocation::Kind::kGguf) return p.stem().string();
  if (!p.has_filename()) p = p.parent_path();  // "dir/"
  return p.filename().string();
}

int Serve(const ServeOptions& o) {
  // Validate what CLI11 cannot before the (slow) model load.
  const std::optional<core::DType> kv_dtype = core::DTypeFromName(o.kv_dtype);
  if (!kv_dtype || (*kv_dtype != core::DType::kF32 && *kv_dtype != core::DType::kBF16 &&
                    *kv_dtype != core::DType::kF16)) {
    return ReportError(core::InvalidArgumentError(
        fmt::format("--kv-dtype must be f32, bf16 or f16, got '{}'", o.kv_dtype)));
  }
  if (o.accept_weights && o.api_key.empty()) {
    return ReportError(core::InvalidArgumentError(
        "--accept-weights needs --api-key: anyone who can reach the port could replace the model",
        "pass --api-key KEY and give the trainer the same key"));
  }
  if (o.accept_weights && *kv_dtype != core::DType::kF32) {
    return ReportError(core::InvalidArgumentError(
        fmt::format("--accept-weights keeps the K/V cache in f32 (so sampled tokens' log-probs are "
                    "the trainer's), got --kv-dtype {}",
                    o.kv_dtype)));
  }
  if (o.max_batch_tokens < o.max_seqs) {
    return ReportError(core::InvalidArgumentError(
        fmt::format("--max-batch-tokens ({}) must be at least --max-seqs ({})", o.max_batch_tokens,
                    o.max_seqs),
        "every running sequence needs one token of each step"));
  }

  // Block the shutdown signals before any thread starts (compute pool, engine, I/O), so they are
  // delivered only to sigwait() below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Before the model load, so a bad URL fails fast; after the mask, as the proxy has a thread.
  // Declared before `http`, so it outlives the server's handlers.
  auto train_proxy = TrainControlProxy::Create(o.train_control_url);
  if (!train_proxy.ok()) return ReportError(train_proxy.status());

  models::LoadOptions load;
  load.n_threads = o.threads;
  if (o.accept_weights) {
    // A rollout server: weights a trainer can replace, multiplied in the trainer's order so the
    // log-probs it reports for sampled tokens are the ones the trainer recomputes.
    load.writable_weights = true;
    load.float_matmul = kernels::FloatMatMul::kGemm;
  }
  auto loaded = LoadModel(o.model, load);
  if (!loaded.ok()) return ReportError(loaded.status());
  models::Model& model = *loaded->model;
  const tokenizer::Tokenizer& tok = *loaded->tokenizer;
  auto setup = tokenizer::LoadChatSetup(loaded->location, tok, o.chat_template, loaded->gguf.get());
  if (!setup.ok()) return ReportError(setup.status());
  const tokenizer::ChatSetup chat = std::move(setup).value();

  runtime::EngineOptions engine_options;
  engine_options.kv_cache_bytes = o.kv_cache_mb << 20;
  engine_options.kv_dtype = *kv_dtype;
  engine_options.max_batch_tokens = o.max_batch_tokens;
  engine_options.max_seqs = o.max_seqs;
  engine_options.max_queue = o.max_queue;
  engine_options.enable_prefix_cache = !o.no_prefix_cache;
  auto engine = runtime::Engine::Create(model, tok, engine_options);
  if (!engine.ok()) return ReportError(engine.status());

  const std::string served_name = o.served_model_name.empty()
                                      ? DefaultServedName(o.model, loaded->location)
                                      : o.served_model_name;
  server::OpenAiServiceOptions service_options;
  service_options.served_model_name = served_name;
  // A fallback template is not the model's own: its output gets no family-specific parsing.
  if (!chat.is_fallback) service_options.chat_format = models::ChatFormatFor(model.info().architecture);
  service_options.default_stop = runtime::DefaultStopParams(model, tok);
  service_options.system_fingerprint = fmt::format("arle-{}", kVersion);
  service_options.render_chat = [&chat](std::string_view messages, std::string_view tools,
                                        bool add_generation_prompt,
                                        std::string_view kwargs) -> core::StatusOr<std::string> {
    using Json = nlohmann::ordered_json;
    // The service produced these texts; a parse failure here would be a bug, reported as such.
    Json m = Json::parse(messages, nullptr, false);
    Json t = tools.empty() ? Json(nullptr) : Json::parse(tools, nullptr, false);
    Json k = Json::parse(kwargs, nullptr, false);
    if (m.is_discarded() || t.is_discarded() || k.is_discarded()) {
      return core::InternalError("the chat renderer got invalid JSON");
    }
    return tokenizer::RenderChat(chat, m, t, add_generation_prompt, k);
  };
  auto service = std::make_unique<server::OpenAiService>(**engine, std::move(service_options));

  server::HttpServerOptions http_options;
  http_options.host = o.host;
  http_options.port = o.port;
  http_options.api_key = o.api_key;
  http_options.n_io_threads = o.io_threads;
  server::HttpServer http(http_options);
  service->RegisterRoutes(http);
  (*train_proxy)->RegisterRoutes(http);
  if (o.accept_weights) {
    server::RegisterAdminWeightsRoute(http, **engine, model,
                                      server::AdminWeightsBodyLimit(model.info().n_params));
  }
  if (core::Status st = http.Start(); !st.ok()) return ReportError(st);

  const std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  fmt::print(stderr, "arle serve: listening on http://{}:{} (model {})\n", host, http.port(),
             served_name);
  std::fflush(stderr);

  int sig = 0;
  sigwait(&signals, &sig);
  fmt::print(stderr, "arle serve: {} received, shutting down (in-flight requests: {})\n",
             sig == SIGINT ? "SIGINT" : "SIGTERM", service->n_active());
  service->StopAccepting();
  // Stop() stops accepting at once and waits for in-flight responses; meanwhile give running
  // requests the grace period, then cancel them so their streams end cleanly ("abort").
  std::thread stopper([&http] { http.Stop(kShutdownDeadline); });
  const auto grace_end = std::chrono::steady_clock::now() + kShutdownGrace;
  while (service->n_active() > 0 && std::chrono::steady_clock::now() < grace_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  service->CancelAll();
  stopper.join();
  // No handler or OnClose runs any more; the engine aborts whatever is left and stops its thread.
  engine->reset();
  service.reset();
  fmt::print(stderr, "arle serve: stopped\n");
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  static ServeOptions o;
  cmd->add_option("-m,--model", o.model,
                  "Hugging Face directory, .gguf file or ORG/NAME (default: built-in stories260K)");
  cmd->add_option("--host", o.host, "Address to bind")->capture_default_str();
  cmd->add_option("--port", o.port, "Port to bind (0 = any free port, printed when ready)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", o.api_key,
                  "Require 'Authorization: Bearer KEY' on the API routes (not /health, /metrics)");
  cmd->add_option("--max-batch-tokens", o.max_batch_tokens,
                  "Tokens per engine step (decodes + prefill chunks)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--kv-cache-mb", o.kv_cache_mb,
                  "KV cache size in MiB (default: a quarter of the available RAM, capped)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--kv-dtype", o.kv_dtype, "KV cache element type: f32, bf16 or f16")
      ->capture_default_str();
  cmd->add_option("--max-seqs", o.max_seqs, "Sequences running at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-queue", o.max_queue,
                  "Requests waiting at most; beyond it requests get 503 with Retry-After")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--served-model-name", o.served_model_name,
                  "The `model` name clients use (default: stories260K, the directory's basename, "
                  "the GGUF file's stem, or ORG/NAME as given)");
  cmd->add_option("-t,--threads", o.threads, "Compute threads (default: physical cores)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--io-threads", o.io_threads, "HTTP I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--chat-template", o.chat_template, "Chat template file overriding the model's");
  cmd->add_flag("--no-prefix-cache", o.no_prefix_cache,
                "Recompute every prompt in full (for benchmarking the prefix cache)");
  cmd->add_flag("--accept-weights", o.accept_weights,
                "Serve as an RL rollout server: accept new weights from a trainer on POST "
                "/v1/admin/weights (needs --api-key). Weights are held as writable f32 copies "
                "and multiplied in the trainer's order, so reported log-probs are the trainer's");
  cmd->add_option("--train-control-url", o.train_control_url,
                  "Proxy /v1/train/* to a run's `arle train --control-port` "
                  "(e.g. http://127.0.0.1:9100)");
  cmd->callback([&exit_code] { exit_code = Serve(o); });
}

}  // namespace arle::app
