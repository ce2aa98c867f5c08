#include "arle/rl/remote_rollouts.h"

#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "arle/core/thread_pool.h"
#include "arle/models/weight_update.h"
#include "arle/runtime/engine.h"
#include "arle/runtime/sampler.h"

namespace arle::rl {
namespace {

using Json = nlohmann::json;

// server/admin_weights.h's route (rl sits beside server, not above it).
constexpr const char* kAdminWeightsPath = "/v1/admin/weights";

runtime::FinishReason ParseFinish(const Json& v) {
  if (!v.is_string()) return runtime::FinishReason::kNone;
  const std::string s = v.get<std::string>();
  if (s == "stop") return runtime::FinishReason::kStop;
  if (s == "length") return runtime::FinishReason::kLength;
  if (s == "abort") return runtime::FinishReason::kAbort;
  return runtime::FinishReason::kNone;
}

// The samples of one /v1/completions answer into out[0 .. n): token ids, tempered log-probs,
// text and finish reason of each choice (by its index).
core::Status ParseCompletion(const std::string& body, int n, RolloutSample* out) {
  const Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("choices") || !j["choices"].is_array()) {
    return core::DataLossError("the answer is not a completion object with choices");
  }
  std::vector<bool> seen(static_cast<size_t>(n), false);
  for (const Json& c : j["choices"]) {
    const Json* index = c.contains("index") ? &c["index"] : nullptr;
    if (index == nullptr || !index->is_number_integer() || index->get<int64_t>() < 0 ||
        index->get<int64_t>() >= n || seen[index->get<size_t>()]) {
      return core::DataLossError("a choice has a missing, repeated or out-of-range index");
    }
    const size_t k = index->get<size_t>();
    seen[k] = true;
    RolloutSample& s = out[k];
    const Json& ids = c.value("token_ids", Json());
    const Json& lp = c.contains("logprobs") && c["logprobs"].is_object()
                         ? c["logprobs"].value("token_logprobs", Json())
                         : Json();
    if (!ids.is_array() || !lp.is_array() || ids.size() != lp.size() ||
        !c.value("text", Json()).is_string()) {
      return core::DataLossError(
          "a choice lacks text, token_ids or logprobs.token_logprobs of the same length (is the "
          "server an arle serve?)");
    }
    for (size_t t = 0; t < ids.size(); ++t) {
      if (!ids[t].is_number_integer() || !lp[t].is_number()) {
        return core::DataLossError("a choice's token_ids or token_logprobs are not numbers");
      }
      s.ids.push_back(ids[t].get<int32_t>());
      s.logprobs.push_back(lp[t].get<float>());
    }
    s.text = c["text"].get<std::string>();
    s.finish = ParseFinish(c.value("finish_reason", Json()));
    if (s.finish == runtime::FinishReason::kAbort) {
      return core::FailedPreconditionError("the server aborted the request (shutting down?)");
    }
  }
  if (std::find(seen.begin(), seen.end(), false) != seen.end()) {
    return core::DataLossError(fmt::format("the answer has fewer than {} choices", n));
  }
  return core::OkStatus();
}

}  // namespace

core::StatusOr<std::unique_ptr<RemoteRollouts>> RemoteRollouts::Create(
    RemoteRolloutOptions options) {
  if (options.urls.empty()) {
    return core::InvalidArgumentError("rollout servers: no URL given").WithField("rollout_url");
  }
  std::unique_ptr<RemoteRollouts> r(new RemoteRollouts(std::move(options)));
  std::set<std::string> unique;
  for (const std::string& u : r->options_.urls) {
    ARLE_ASSIGN_OR_RETURN(io::ServerUrl url, io::ParseServerUrl(u));
    if (!unique.insert(url.ToString()).second) {
      return core::InvalidArgumentError("--rollout-url " + u + " is given twice")
          .WithField("rollout_url");
    }
    io::ServeClient client(url, r->options_.api_key, std::chrono::seconds(30));
    ARLE_ASSIGN_OR_RETURN(io::HttpResponse models, client.Get("/v1/models"));
    const Json j = Json::parse(models.body, nullptr, false);
    if (models.status != 200 || j.is_discarded() || !j.contains("data") || !j["data"].is_array() ||
        j["data"].empty() || !j["data"][0].value("id", Json()).is_string()) {
      return core::FailedPreconditionError(
          fmt::format("rollout server {}: GET /v1/models answered {}: {}", url.ToString(),
                      models.status, io::ServerErrorMessage(models.body)));
    }
    r->servers_.push_back({url, j["data"][0]["id"].get<std::string>()});
  }
  return r;
}

core::StatusOr<std::vector<std::vector<RolloutSample>>> RemoteRollouts::Run(
    const std::vector<std::vector<int32_t>>& prompts, const RolloutParams& params,
    const std::vector<uint64_t>& seeds) {
  std::vector<std::vector<RolloutSample>> out(prompts.size());
  for (auto& samples : out) samples.resize(static_cast<size_t>(params.n));
  // One request per prompt and sample block, as Rollouts submits them.
  struct Request {
    size_t prompt;
    int first;
    int n;
  };
  std::vector<Request> requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (const SampleBlock& b : SampleBlocks(params.n)) requests.push_back({i, b.first, b.n});
  }
  const bool greedy = params.temperature < runtime::kGreedyTemperature;
  ARLE_RETURN_IF_ERROR(core::RunOnThreads(requests.size(), [&](size_t k) -> core::Status {
    const Request& q = requests[k];
    const Server& server = servers_[q.prompt % servers_.size()];
    Json body = {{"model", server.model},
                 {"prompt", prompts[q.prompt]},
                 {"n", q.n},
                 {"temperature", greedy ? 0.0f : params.temperature},
                 {"top_p", params.top_p},
                 {"max_tokens", params.max_tokens},
                 // OpenAI's seed is a signed 64-bit integer: the same bits.
                 {"seed", static_cast<int64_t>(seeds[q.prompt] + q.first)},
                 {"logprobs", 0},
                 {"logprobs_mode", "tempered_logprobs"},
                 {"return_token_ids", true}};
    io::ServeClient client(server.url, options_.api_key, options_.timeout);
    const auto where = [&] {
      return fmt::format("rollout server {}, prompt {}", server.url.ToString(), q.prompt);
    };
    auto answer = client.Post("/v1/completions", body.dump());
    if (!answer.ok()) return answer.status().WithContext(where());
    if (answer->status != 200) {
      return core::FailedPreconditionError(fmt::format("{}: HTTP {}: {}", where(), answer->status,
                                                       io::ServerErrorMessage(answer->body)));
    }
    return ParseCompletion(answer->body, q.n, out[q.prompt].data() + q.first).WithContext(where());
  }));
  return out;
}

core::Status RemoteRollouts::PushWeights(const models::llama::LlamaConfig& config,
                                         const models::llama::ModelWeights& weights, int64_t step) {
  std::vector<models::NamedWeight> tensors;
  models::llama::ForEachWeight(weights, [&](const std::string& name, const core::Tensor& t) {
    tensors.push_back({name, t});
  });
  ARLE_ASSIGN_OR_RETURN(
      const std::string body,
      models::EncodeWeightUpdate(tensors, models::llama::ToHfConfigJson(config), step));
  return core::RunOnThreads(servers_.size(), [&](size_t k) -> core::Status {
    const Server& server = servers_[k];
    io::ServeClient client(server.url, options_.api_key, options_.timeout);
    auto answer = client.Post(kAdminWeightsPath, body, "application/octet-stream");
    if (!answer.ok()) {
      return answer.status().WithContext("pushing weights to " + server.url.ToString());
    }
    if (answer->status != 200) {
      return core::FailedPreconditionError(
          fmt::format("rollout server {} refused the weights (HTTP {}): {}", server.url.ToString(),
                      answer->status, io::ServerErrorMessage(answer->body)),
          // 404: the route is only there with --accept-weights; 409: read-only weights.
          answer->status == 404 || answer->status == 409
              ? "start it with arle serve --accept-weights --api-key KEY"
              : "");
    }
    return core::OkStatus();
  });
}

}  // namespace arle::rl
