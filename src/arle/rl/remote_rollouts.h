// Rollouts from other processes: `arle train grpo --rollout-url URL` (repeatable) samples from
// running `arle serve --accept-weights` servers instead of the in-process engine, and pushes the
// trainer's weights to them after every update (POST /v1/admin/weights, server/admin_weights.h).
// This is how RL scales past one machine: many rollout servers, one trainer.
//
// Each prompt's samples are one /v1/completions request (token-id prompt, n samples, seed,
// `logprobs_mode: tempered_logprobs`, `return_token_ids`), as Rollouts sends them to the engine,
// so a rollout server with the trainer's weights returns exactly the tokens, log-probs and texts
// of the in-process engine (its --accept-weights mode multiplies f32 weights in the trainer's
// order over an f32 K/V cache). Prompts go to the servers in turn (prompt i to server i mod N),
// all in flight at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "arle/core/status.h"
#include "arle/io/http_client.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/llama/llama_weights.h"
#include "arle/rl/rollout.h"

namespace arle::rl {

struct RemoteRolloutOptions {
  std::vector<std::string> urls;  // http://host:port of each server
  std::string api_key;            // the servers' --api-key (their weight route needs one)
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};  // per request's wait for bytes
};

class RemoteRollouts final : public RolloutGenerator {
 public:
  // Parses the URLs and asks each server for its model (GET /v1/models). Errors: InvalidArgument
  // for a malformed or repeated URL or none at all, the client's error naming the URL for a
  // server that does not answer.
  static core::StatusOr<std::unique_ptr<RemoteRollouts>> Create(RemoteRolloutOptions options);

  // RolloutGenerator: the same contract as Rollouts::Run. Errors name the server and prompt.
  core::StatusOr<std::vector<std::vector<RolloutSample>>> Run(
      const std::vector<std::vector<int32_t>>& prompts, const RolloutParams& params,
      const std::vector<uint64_t>& seeds) override;

  // Sends `weights` (every tensor by Hugging Face name, as f32) with `config` to every server, in
  // parallel, and returns once all have swapped them in. Errors: the first server's refusal
  // (its message: a config that does not match, read-only weights, a wrong key), naming it.
  core::Status PushWeights(const models::llama::LlamaConfig& config,
                           const models::llama::ModelWeights& weights, int64_t step);

  size_t n_servers() const { return servers_.size(); }

 private:
  struct Server {
    io::ServerUrl url;
    std::string model;  // its served model name
  };
  explicit RemoteRollouts(RemoteRolloutOptions options) : options_(std::move(options)) {}

  RemoteRolloutOptions options_;
  std::vector<Server> servers_;
};

}  // namespace arle::rl
