#include "arle/eval/openai_backend.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "arle/eval/engine_backend.h"

namespace arle::eval {
namespace {

using Json = nlohmann::json;

core::StatusOr<Json> PostJson(io::ServeClient& client, std::string_view path, const Json& body) {
  ARLE_ASSIGN_OR_RETURN(io::HttpResponse res, client.Post(path, body.dump()));
  if (res.status != 200) {
    return core::FailedPreconditionError(client.url().ToString() + std::string(path) +
                                         " answered " + std::to_string(res.status) + ": " +
                                         io::ServerErrorMessage(res.body));
  }
  Json j = Json::parse(res.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return core::DataLossError(client.url().ToString() + std::string(path) +
                               " answered something that is not a JSON object");
  }
  return j;
}

core::StatusOr<std::vector<int32_t>> Tokenize(io::ServeClient& client, const std::string& model,
                                              const std::string& text, bool add_special) {
  ARLE_ASSIGN_OR_RETURN(
      Json j, PostJson(client, "/tokenize",
                       {{"model", model}, {"prompt", text}, {"add_special_tokens", add_special}}));
  if (!j.contains("tokens") || !j["tokens"].is_array()) {
    return core::DataLossError("/tokenize answered without a `tokens` array");
  }
  std::vector<int32_t> ids;
  for (const Json& t : j["tokens"]) {
    if (!t.is_number_integer()) return core::DataLossError("/tokenize gave a non-integer token");
    ids.push_back(t.get<int32_t>());
  }
  return ids;
}

}  // namespace

core::StatusOr<std::unique_ptr<OpenAiBackend>> OpenAiBackend::Connect(
    OpenAiBackendOptions options) {
  ARLE_ASSIGN_OR_RETURN(io::ServerUrl url, io::ParseServerUrl(options.url));
  io::ServeClient client(url, options.api_key, options.timeout);
  std::string model = options.model;
  if (model.empty()) {
    ARLE_ASSIGN_OR_RETURN(io::HttpResponse res, client.Get("/v1/models"));
    const Json j = Json::parse(res.body, nullptr, false);
    if (res.status != 200 || j.is_discarded() || !j.contains("data") || !j["data"].is_array() ||
        j["data"].empty() || !j["data"][0].contains("id")) {
      return core::FailedPreconditionError(
          url.ToString() + "/v1/models did not name a model (" + std::to_string(res.status) + ")",
          "pass --served-model NAME");
    }
    model = j["data"][0]["id"].get<std::string>();
  }
  ARLE_ASSIGN_OR_RETURN(io::HttpResponse res,
                        client.Post("/tokenize", Json{{"model", model}, {"prompt", "a"}}.dump()));
  const Json j = Json::parse(res.body, nullptr, false);
  if (res.status != 200 || j.is_discarded() || !j.contains("tokens")) {
    return core::FailedPreconditionError(url.ToString() + "/tokenize answered " +
                                             std::to_string(res.status) +
                                             "; evaluation needs the server's tokenizer",
                                         "arle serve and vLLM have POST /tokenize");
  }
  const int64_t max_len = j.value("max_model_len", int64_t{0});
  return std::unique_ptr<OpenAiBackend>(
      new OpenAiBackend(std::move(options), std::move(url), std::move(model), max_len));
}

OpenAiBackend::OpenAiBackend(OpenAiBackendOptions options, io::ServerUrl url, std::string model,
                             int64_t max_model_len)
    : options_(std::move(options)),
      url_(std::move(url)),
      model_(std::move(model)),
      max_model_len_(max_model_len) {}

std::string OpenAiBackend::Describe() const { return url_.ToString() + " (" + model_ + ")"; }

core::Status OpenAiBackend::ForEachGroup(
    const std::vector<std::vector<size_t>>& groups,
    const std::function<core::Status(size_t, io::ServeClient&)>& work, const ProgressFn& progress) {
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  core::Status first_error;
  int64_t done = 0;
  auto worker = [&] {
    io::ServeClient client(url_, options_.api_key, options_.timeout, &stop);
    while (!stop.load()) {
      const size_t g = next.fetch_add(1);
      if (g >= groups.size()) return;
      for (const size_t i : groups[g]) {
        core::Status s = work(i, client);
        std::lock_guard<std::mutex> lock(mu);
        if (!s.ok()) {
          if (first_error.ok()) first_error = std::move(s);
          stop = true;
          return;
        }
        ++done;
        if (progress) progress(done);
      }
    }
  };
  const int n = std::max(1, std::min<int>(options_.concurrency, static_cast<int>(groups.size())));
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  return first_error;
}

core::StatusOr<std::vector<LoglikelihoodResult>> OpenAiBackend::Loglikelihood(
    std::span<const LoglikelihoodRequest> requests, const ProgressFn& progress) {
  // Tokenize (several connections) then score: the context/continuation split needs the
  // tokens, the requests need ids.
  io::ServeClient probe(url_, options_.api_key, options_.timeout);
  ARLE_ASSIGN_OR_RETURN(std::vector<int32_t> bos, Tokenize(probe, model_, "", true));
  ARLE_ASSIGN_OR_RETURN(std::vector<int32_t> eos_probe, Tokenize(probe, model_, "", false));
  // The prefix of an empty context: the BOS the tokenizer adds, if any. A server gives no EOS
  // id here; a tokenizer without BOS then cannot score an empty context.
  const std::optional<int32_t> prefix =
      bos.size() > eos_probe.size() ? std::optional<int32_t>(bos.front()) : std::nullopt;
  // The window: the prompt and the one generated token must fit.
  const int64_t window = max_model_len_ > 1 ? max_model_len_ - 1 : int64_t{1} << 40;
  std::vector<EncodedPair> pairs(requests.size());
  std::vector<std::vector<size_t>> singles(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) singles[i] = {i};
  ARLE_RETURN_IF_ERROR(ForEachGroup(
      singles,
      [&](size_t i, io::ServeClient& client) -> core::Status {
        if (requests[i].context.empty() && !prefix.has_value()) {
          return core::FailedPreconditionError(
              "an empty context needs the tokenizer's BOS token, which this server's tokenizer "
              "does not add");
        }
        const EncodeFn encode = [&](const std::string& text) {
          return Tokenize(client, model_, text, options_.add_bos);
        };
        ARLE_ASSIGN_OR_RETURN(pairs[i],
                              EncodePair(encode, requests[i], prefix.value_or(0), window));
        return core::OkStatus();
      },
      nullptr));
  // Questions: consecutive requests with the same context, scored in order on one connection.
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const bool same =
        !groups.empty() && pairs[groups.back()[0]].score_from == pairs[i].score_from &&
        std::equal(pairs[i].tokens.begin(), pairs[i].tokens.begin() + pairs[i].score_from,
                   pairs[groups.back()[0]].tokens.begin());
    if (same) {
      groups.back().push_back(i);
    } else {
      groups.push_back({i});
    }
  }
  std::vector<LoglikelihoodResult> results(requests.size());
  ARLE_RETURN_IF_ERROR(ForEachGroup(
      groups,
      [&](size_t i, io::ServeClient& client) -> core::Status {
        const EncodedPair& p = pairs[i];
        ARLE_ASSIGN_OR_RETURN(Json j, PostJson(client, "/v1/completions",
                                               {{"model", model_},
                                                {"prompt", p.tokens},
                                                {"max_tokens", 1},
                                                {"temperature", 0},
                                                {"logprobs", 1},
                                                {"echo", true}}));
        const Json* lp = nullptr;
        if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty() &&
            j["choices"][0].contains("logprobs")) {
          lp = &j["choices"][0]["logprobs"];
        }
        const size_t n = p.tokens.size();
        if (lp == nullptr || !lp->is_object() || !(*lp)["token_logprobs"].is_array() ||
            (*lp)["token_logprobs"].size() < n || !(*lp)["top_logprobs"].is_array() ||
            (*lp)["top_logprobs"].size() < n) {
          return core::DataLossError(
              "/v1/completions with echo and logprobs did not return the prompt's log-probs");
        }
        LoglikelihoodResult& r = results[i];
        r.is_greedy = true;
        for (size_t t = static_cast<size_t>(p.score_from); t < n; ++t) {
          const Json& v = (*lp)["token_logprobs"][t];
          if (!v.is_number())
            return core::DataLossError("a prompt token's logprob is not a number");
          // Servers compute log-probs in f32 and print them as the shortest decimal that reads
          // back as the same float: reading it as a float recovers the value the engine summed,
          // so a server and the in-process engine give identical sums.
          const double logprob = static_cast<float>(v.get<double>());
          r.logprob += logprob;
          // The harness's test: the token's logprob is the largest of the top alternatives.
          const Json& top = (*lp)["top_logprobs"][t];
          if (top.is_object()) {
            for (const auto& [tok, alt] : top.items()) {
              if (alt.is_number() && static_cast<float>(alt.get<double>()) > logprob) {
                r.is_greedy = false;
              }
            }
          }
        }
        r.n_tokens = static_cast<int64_t>(n) - p.score_from;
        return core::OkStatus();
      },
      progress));
  return results;
}

core::StatusOr<std::vector<GenerationResult>> OpenAiBackend::Generate(
    std::span<const GenerationRequest> requests, const ProgressFn& progress) {
  std::vector<GenerationResult> results(requests.size());
  std::vector<std::vector<size_t>> singles(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) singles[i] = {i};
  ARLE_RETURN_IF_ERROR(ForEachGroup(
      singles,
      [&](size_t i, io::ServeClient& client) -> core::Status {
        const GenerationRequest& g = requests[i];
        Json body = {
            {"model", model_},  {"max_tokens", g.max_tokens}, {"temperature", g.temperature},
            {"top_p", g.top_p}, {"n", std::max(1, g.n)},      {"seed", g.seed}};
        if (!g.until.empty()) body["stop"] = g.until;
        std::string path;
        if (g.chat) {
          path = "/v1/chat/completions";
          body["messages"] = Json::array({{{"role", "user"}, {"content", g.prompt}}});
          if (g.enable_thinking.has_value()) {
            body["chat_template_kwargs"] = {{"enable_thinking", *g.enable_thinking}};
          }
        } else {
          path = "/v1/completions";
          ARLE_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                                Tokenize(client, model_, g.prompt, options_.add_bos));
          if (max_model_len_ > 0) {
            const int64_t room = std::max<int64_t>(1, max_model_len_ - g.max_tokens);
            if (static_cast<int64_t>(ids.size()) > room) ids.erase(ids.begin(), ids.end() - room);
          }
          body["prompt"] = ids;
        }
        ARLE_ASSIGN_OR_RETURN(Json j, PostJson(client, path, body));
        if (!j.contains("choices") || !j["choices"].is_array()) {
          return core::DataLossError(path + " answered without choices");
        }
        results[i].texts.assign(static_cast<size_t>(std::max(1, g.n)), "");
        for (const Json& c : j["choices"]) {
          const size_t k = c.value("index", size_t{0});
          if (k >= results[i].texts.size()) continue;
          if (g.chat) {
            if (c.contains("message") && c["message"].contains("content") &&
                c["message"]["content"].is_string()) {
              results[i].texts[k] = c["message"]["content"].get<std::string>();
            }
          } else if (c.contains("text") && c["text"].is_string()) {
            results[i].texts[k] = c["text"].get<std::string>();
          }
        }
        return core::OkStatus();
      },
      progress));
  return results;
}

}  // namespace arle::eval
