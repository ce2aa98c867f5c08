// OpenAiBackend: evaluation against any OpenAI-compatible server (`arle eval --url`): arle serve,
// vLLM, or another server with the same routes. Text is tokenized by the server's /tokenize (so
// the split of context and continuation is the harness's, on the server's own tokenizer) and sent
// as token ids; log-likelihoods come from /v1/completions with echo, logprobs 1 and max_tokens 1
// (the harness's local-completions request: the prompt's log-probs, the one generated token
// ignored); generation from /v1/completions (token ids) or /v1/chat/completions. Several
// connections work at once; the choices of one question go one after another on one connection,
// so the server's prefix cache serves their shared context.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "arle/eval/backend.h"
#include "arle/io/http_client.h"

namespace arle::eval {

struct OpenAiBackendOptions {
  std::string url;       // http://host:port[/v1]
  std::string api_key;   // "" = none
  std::string model;     // "" = the first of /v1/models
  int concurrency = 8;   // connections at once
  bool add_bos = false;  // tokenize with the tokenizer's special prefix (BOS)
  std::chrono::milliseconds timeout{600000};
};

class OpenAiBackend final : public Backend {
 public:
  // Connects, reads the model id and the context length (/v1/models, /tokenize). Errors: a bad
  // URL (InvalidArgument), an unreachable server (IoError), a server without /tokenize
  // (FailedPrecondition naming the route).
  static core::StatusOr<std::unique_ptr<OpenAiBackend>> Connect(OpenAiBackendOptions options);

  core::StatusOr<std::vector<LoglikelihoodResult>> Loglikelihood(
      std::span<const LoglikelihoodRequest> requests, const ProgressFn& progress) override;
  core::StatusOr<std::vector<GenerationResult>> Generate(
      std::span<const GenerationRequest> requests, const ProgressFn& progress) override;
  std::string Describe() const override;

 private:
  OpenAiBackend(OpenAiBackendOptions options, io::ServerUrl url, std::string model,
                int64_t max_model_len);
  // Runs work(i, client) for i in groups (each group in order on one connection), on
  // `concurrency` threads; the first error stops the rest.
  core::Status ForEachGroup(const std::vector<std::vector<size_t>>& groups,
                            const std::function<core::Status(size_t, io::ServeClient&)>& work,
                            const ProgressFn& progress);

  OpenAiBackendOptions options_;
  io::ServerUrl url_;
  std::string model_;
  int64_t max_model_len_ = 0;
};

}  // namespace arle::eval
