// `arle bench serve`: closed-loop load against an OpenAI-compatible server. Metrics follow vLLM's
// benchmark_serving: TTFT = request sent -> first chunk with content; ITL = gaps between content
// chunks; TPOT = (e2e - TTFT) / (output_tokens - 1); throughputs divide by the run's wall time.
#include "apps/arle/cmd_bench_serve.h"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "apps/arle/commands.h"
#include "arle/io/http_client.h"
#include "arle/core/random.h"

namespace arle::app {

using io::HttpResponse;
using io::ParseServerUrl;
using io::ServeClient;
using io::ServerErrorMessage;
using io::ServerUrl;
using io::SseEvent;
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::ordered_json;  // the report keeps its keys in reading order

struct ServeBenchOptions {
  std::string url;
  int concurrency = 1;
  int prompt_len = 128;
  int gen_len = 128;
  int requests = 32;
  int sessions = 0;  // > 0 selects the multi-turn sessions mode
  int turns = 4;
  bool token_prompts = false;
  int token_vocab = 512;
  bool no_ignore_eos = false;
  double temperature = 0.0;
  std::string model;
  std::string api_key;
  bool json = false;
  uint64_t seed = 0;
  double timeout_s = 600;
};

// Short, common English words: with a leading space each is one token in the BPE vocabularies of
// the usual model families, so P words make a prompt of about P tokens without a tokenizer.
constexpr const char* kWords[] = {
    "the",   "of",    "and",   "to",    "in",    "is",     "was",   "for",    "on",       "that",
    "with",  "as",    "it",    "by",    "at",    "from",   "his",   "an",     "were",     "are",
    "which", "this",  "be",    "or",    "has",   "had",    "first", "one",    "their",    "its",
    "new",   "after", "but",   "who",   "not",   "they",   "have",  "her",    "she",      "two",
    "been",  "other", "when",  "there", "all",   "during", "into",  "school", "time",     "may",
    "years", "more",  "most",  "only",  "over",  "city",   "some",  "world",  "would",    "where",
    "later", "up",    "such",  "used",  "many",  "can",    "state", "about",  "national", "out",
    "known", "team",  "than",  "film",  "then",  "him",    "also",  "made",   "three",    "game",
    "part",  "well",  "war",   "while", "year",  "below",  "house", "day",    "back",     "water",
    "light", "small", "great", "old",   "high",  "long",   "way",   "life",   "work",     "home",
    "name",  "place", "music", "good",  "right", "book",   "left",  "line",   "word",     "field",
    "open",  "early", "story", "road",  "party", "side",   "power", "young",  "south",    "north",
};
constexpr int kNumWords = static_cast<int>(sizeof(kWords) / sizeof(kWords[0]));

// A seeded stream per (seed, stream id), so prompts do not depend on thread scheduling.
core::Rng StreamRng(uint64_t seed, uint64_t stream) {
  return core::Rng(seed * 0x9e3779b97f4a7c15ull + stream + 1);
}

std::string WordPrompt(core::Rng rng, int n_words) {
  std::string out;
  for (int i = 0; i < n_words; ++i) {
    if (i > 0) out.push_back(' ');
    out += kWords[rng.NextU64() % kNumWords];
  }
  return out;
}

std::vector<int> TokenPrompt(core::Rng rng, int n_tokens, int vocab) {
  std::vector<int> ids(n_tokens);
  for (int& id : ids) id = 1 + static_cast<int>(rng.NextU64() % static_cast<uint64_t>(vocab - 1));
  return ids;
}

std::string Shorten(std::string_view s) {
  return s.size() > 200 ? std::string(s.substr(0, 200)) + "..." : std::string(s);
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// ---- one streamed request --------------------------------------------------------------------

struct RequestResult {
  int turn = 0;             // sessions mode: 0-based turn index
  double ttft = 0;          // seconds; = latency when the answer had no content
  double latency = 0;       // seconds, request sent -> stream end
  std::vector<double> itl;  // seconds between consecutive content chunks
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  bool usage = false;  // token counts came from the server's `usage`
  std::string text;    // the answer's content (the assistant turn in sessions mode)
  std::optional<std::vector<int>> token_ids;  // the generated ids, when the server returned them
};

// Sends one streaming request and times its chunks. `chat` selects /v1/chat/completions deltas.
core::StatusOr<RequestResult> StreamOne(ServeClient& client, const json& body, bool chat,
                                        int64_t fallback_prompt_tokens) {
  const std::string where =
      client.url().ToString() + (chat ? "/v1/chat/completions" : "/v1/completions");
  RequestResult r;
  bool saw_done = false, saw_finish = false, saw_content = false;
  int64_t content_chunks = 0;
  Clock::time_point last{};
  const std::string payload = body.dump();
  const Clock::time_point start = Clock::now();
  auto on_event = [&](const SseEvent& ev) -> core::Status {
    const Clock::time_point now = Clock::now();
    if (ev.event == "error") {
      return core::FailedPreconditionError(
          fmt::format("POST {}: the server reported an error in the stream: {}", where,
                      ServerErrorMessage(ev.data)));
    }
    if (ev.data == "[DONE]") {
      saw_done = true;
      return core::OkStatus();
    }
    json j = json::parse(ev.data, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      return core::DataLossError(fmt::format("POST {}: malformed SSE event (not a JSON object): {}",
                                             where, Shorten(ev.data)),
                                 "is --url an OpenAI-compatible server?");
    }
    if (j.contains("error")) {
      return core::FailedPreconditionError(
          fmt::format("POST {}: the server reported an error in the stream: {}", where,
                      ServerErrorMessage(ev.data)));
    }
    auto choices = j.find("choices");
    if (choices != j.end() && choices->is_array() && !choices->empty() &&
        (*choices)[0].is_object()) {
      const json& c = (*choices)[0];
      std::string content;     // what the conversation keeps
      bool has_piece = false;  // any generated text, reasoning included (it is output too)
      if (chat) {
        auto delta = c.find("delta");
        if (delta != c.end() && delta->is_object()) {
          for (const char* key : {"content", "reasoning_content", "reasoning"}) {
            auto v = delta->find(key);
            if (v != delta->end() && v->is_string() && !v->get_ref<const std::string&>().empty()) {
              has_piece = true;
              if (std::string_view(key) == "content") content = v->get<std::string>();
            }
          }
        }
      } else {
        auto text = c.find("text");
        if (text != c.end() && text->is_string()) {
          content = text->get<std::string>();
          has_piece = !content.empty();
        }
        auto ids = c.find("token_ids");
        if (ids != c.end() && ids->is_array()) {
          if (!r.token_ids) r.token_ids.emplace();
          for (const json& id : *ids) {
            if (!id.is_number_integer()) {
              return core::DataLossError(
                  fmt::format("POST {}: token_ids holds a non-integer: {}", where, Shorten(ev.data)));
            }
            r.token_ids->push_back(id.get<int>());
          }
        }
      }
      if (has_piece) {
        if (!saw_content) {
          r.ttft = Seconds(now - start);
        } else {
          r.itl.push_back(Seconds(now - last));
        }
        saw_content = true;
        last = now;
        ++content_chunks;
        r.text += content;
      }
      auto finish = c.find("finish_reason");
      if (finish != c.end() && finish->is_string()) saw_finish = true;
    }
    auto usage = j.find("usage");
    if (usage != j.end() && usage->is_object()) {
      auto pt = usage->find("prompt_tokens");
      auto ct = usage->find("completion_tokens");
      if (pt != usage->end() && pt->is_number_integer() && ct != usage->end() &&
          ct->is_number_integer()) {
        r.prompt_tokens = pt->get<int64_t>();
        r.output_tokens = ct->get<int64_t>();
        r.usage = true;
      }
    }
    return core::OkStatus();
  };
  ARLE_RETURN_IF_ERROR(
      client.PostStream(chat ? "/v1/chat/completions" : "/v1/completions", payload, on_event));
  r.latency = Seconds(Clock::now() - start);
  if (!saw_done && !saw_finish) {
    return core::DataLossError(
        fmt::format("POST {}: the stream ended without a finish_reason or data: [DONE]", where),
        "the server closed the answer early; check its log");
  }
  if (!saw_content) r.ttft = r.latency;
  if (!r.usage) {
    r.prompt_tokens = fallback_prompt_tokens;
    r.output_tokens = content_chunks;  // one chunk per token is what the servers send
  }
  return r;
}

// ---- statistics ------------------------------------------------------------------------------

// numpy.percentile's default (linear interpolation between closest ranks), as vLLM reports.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

// {"n","mean","p50","p90","p99"} in milliseconds; null values when there are no samples.
json Summary(std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  json out = {{"n", seconds.size()}};
  if (seconds.empty()) {
    for (const char* k : {"mean", "p50", "p90", "p99"}) out[k] = nullptr;
    return out;
  }
  double sum = 0;
  for (double s : seconds) sum += s;
  out["mean"] = 1e3 * sum / static_cast<double>(seconds.size());
  out["p50"] = 1e3 * Percentile(seconds, 50);
  out["p90"] = 1e3 * Percentile(seconds, 90);
  out["p99"] = 1e3 * Percentile(seconds, 99);
  return out;
}

// Prefix-cache counters (tokens) from a Prometheus /metrics page, summed over label sets.
struct PrefixCounters {
  std::string source;  // "arle" or "vllm"
  double queries = 0;
  double hits = 0;
};

std::optional<PrefixCounters> ParsePrefixCounters(std::string_view text) {
  struct Family {
    const char* source;
    const char* queries;
    const char* hits;
  };
  static constexpr Family kFamilies[] = {
      {"arle", "arle_prefix_cache_queries_total", "arle_prefix_cache_hits_total"},
      {"vllm", "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total"},
  };
  for (const Family& f : kFamilies) {
    PrefixCounters c{f.source};
    bool have_queries = false, have_hits = false;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 1;
      if (line.empty() || line[0] == '#') continue;
      const size_t name_end = line.find_first_of("{ \t");
      if (name_end == std::string_view::npos) continue;
      const std::string_view name = line.substr(0, name_end);
      const bool is_q = name == f.queries, is_h = name == f.hits;
      if (!is_q && !is_h) continue;
      std::string_view rest = line.substr(name_end);
      if (rest[0] == '{') {
        const size_t close = rest.rfind('}');
        if (close == std::string_view::npos) continue;
        rest = rest.substr(close + 1);
      }
      const size_t v0 = rest.find_first_not_of(" \t");
      if (v0 == std::string_view::npos) continue;
      rest = rest.substr(v0);
      const std::string value(rest.substr(0, rest.find_first_of(" \t\r")));
      char* parse_end = nullptr;
      const double v = std::strtod(value.c_str(), &parse_end);
      if (parse_end == value.c_str()) continue;
      (is_q ? c.queries : c.hits) += v;
      (is_q ? have_queries : have_hits) = true;
    }
    if (have_queries && have_hits) return c;
  }
  return std::nullopt;
}

// nullopt when the server has no /metrics or no prefix-cache counters; errors only when the
// server cannot be reached at all.
core::StatusOr<std::optional<PrefixCounters>> SamplePrefixCounters(ServeClient& client) {
  ARLE_ASSIGN_OR_RETURN(HttpResponse res, client.Get("/metrics"));
  if (res.status != 200) return std::optional<PrefixCounters>();
  return ParsePrefixCounters(res.body);
}

core::StatusOr<std::string> FirstModelId(ServeClient& client) {
  ARLE_ASSIGN_OR_RETURN(HttpResponse res, client.Get("/v1/models"));
  const std::string where = "GET " + client.url().ToString() + "/v1/models";
  if (res.status != 200) {
    return core::FailedPreconditionError(
        fmt::format("{}: server answered {}: {}", where, res.status, ServerErrorMessage(res.body)),
        res.status == 401 || res.status == 403 ? "pass the server's key with --api-key"
                                               : "pass the model name with --model");
  }
  json j = json::parse(res.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
      j["data"][0].is_object() && j["data"][0].contains("id") && j["data"][0]["id"].is_string()) {
    return j["data"][0]["id"].get<std::string>();
  }
  return core::DataLossError(
      fmt::format("{}: no model id in the answer: {}", where, Shorten(res.body)),
      "pass the model name with --model");
}

// ---- the two load shapes ---------------------------------------------------------------------

// The first real error wins; the other workers are cancelled and their "cancelled" is dropped.
class FirstError {
 public:
  void Set(core::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (status_.ok()) status_ = std::move(s);
    stop_.store(true);
  }
  core::Status Get() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  const std::atomic<bool>* stop() const { return &stop_; }
  bool stopped() const { return stop_.load(); }

 private:
  std::mutex mu_;
  core::Status status_;
  std::atomic<bool> stop_{false};
};

json BaseBody(const ServeBenchOptions& o, const std::string& model) {
  json body = {{"model", model},
               {"max_tokens", o.gen_len},
               {"temperature", o.temperature},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (!o.no_ignore_eos) body["ignore_eos"] = true;  // vLLM/arle extension; others ignore it
  return body;
}

std::chrono::milliseconds Timeout(const ServeBenchOptions& o) {
  return std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
}

core::StatusOr<std::vector<RequestResult>> RunCompletions(const ServeBenchOptions& o,
                                                          const ServerUrl& url,
                                                          const std::string& model) {
  // Bodies are built before the clock starts, as vLLM samples its dataset up front.
  std::vector<json> bodies(o.requests);
  for (int i = 0; i < o.requests; ++i) {
    bodies[i] = BaseBody(o, model);
    if (o.token_prompts) {
      bodies[i]["prompt"] = TokenPrompt(StreamRng(o.seed, i), o.prompt_len, o.token_vocab);
    } else {
      bodies[i]["prompt"] = WordPrompt(StreamRng(o.seed, i), o.prompt_len);
    }
  }
  std::vector<RequestResult> results(o.requests);
  std::atomic<int> next{0};
  FirstError error;
  auto worker = [&] {
    ServeClient client(url, o.api_key, Timeout(o), error.stop());
    while (!error.stopped()) {
      const int i = next.fetch_add(1);
      if (i >= o.requests) break;
      auto r = StreamOne(client, bodies[i], /*chat=*/false, o.prompt_len);
      if (!r.ok()) {
        error.Set(r.status());
        break;
      }
      results[i] = std::move(*r);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::min(o.concurrency, o.requests); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  ARLE_RETURN_IF_ERROR(error.Get());
  return results;
}

// The growing context of one chat session: each turn adds a user message of about P words; the
// answer's text becomes the next assistant message.
class ChatHistory {
 public:
  static constexpr bool kChat = true;
  ChatHistory(const ServeBenchOptions& o, const std::string& model) : o_(o), model_(model) {}
  json Next(uint64_t stream) {
    messages_.push_back(
        {{"role", "user"}, {"content", WordPrompt(StreamRng(o_.seed, stream), o_.prompt_len)}});
    words_ += o_.prompt_len;
    json body = BaseBody(o_, model_);
    body["messages"] = messages_;
    return body;
  }
  int64_t PromptEstimate() const { return words_; }
  core::Status Add(const RequestResult& r, const ServerUrl&) {
    messages_.push_back({{"role", "assistant"}, {"content", r.text}});
    // The answer is part of the next prompt (the estimate is used when a server sends no usage).
    bool in_word = false;
    for (const char c : r.text) {
      const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
      words_ += !space && !in_word;
      in_word = !space;
    }
    return core::OkStatus();
  }

 private:
  const ServeBenchOptions& o_;
  const std::string& model_;
  json messages_ = json::array();
  int64_t words_ = 0;
};

// The growing context of one token session (/v1/completions, token-id prompts,
// return_token_ids): each turn adds P random ids; the ids the server generated are appended as
// they are. Unlike chat sessions, the history is exactly what the server computed, so a prefix
// cache can serve all of it (a chat answer re-rendered as text may tokenize differently, above
// all with random-weight models).
class TokenHistory {
 public:
  static constexpr bool kChat = false;
  TokenHistory(const ServeBenchOptions& o, const std::string& model) : o_(o), model_(model) {}
  json Next(uint64_t stream) {
    const std::vector<int> user =
        TokenPrompt(StreamRng(o_.seed, stream), o_.prompt_len, o_.token_vocab);
    ids_.insert(ids_.end(), user.begin(), user.end());
    json body = BaseBody(o_, model_);
    body["prompt"] = ids_;
    body["return_token_ids"] = true;
    return body;
  }
  int64_t PromptEstimate() const { return static_cast<int64_t>(ids_.size()); }
  core::Status Add(const RequestResult& r, const ServerUrl& url) {
    if (!r.token_ids) {
      return core::FailedPreconditionError(
          fmt::format("{}/v1/completions returned no token_ids for return_token_ids: true",
                      url.ToString()),
          "token sessions need a server that returns generated token ids (arle; vLLM >= "
          "0.10.2); run sessions without --token-prompts");
    }
    ids_.insert(ids_.end(), r.token_ids->begin(), r.token_ids->end());
    return core::OkStatus();
  }

 private:
  const ServeBenchOptions& o_;
  const std::string& model_;
  std::vector<int> ids_;
};

// S sessions run concurrently; each sends T turns in order, its context (History) growing by the
// previous answer plus about P new tokens per turn.
template <typename History>
core::StatusOr<std::vector<RequestResult>> RunSessions(const ServeBenchOptions& o,
                                                       const ServerUrl& url,
                                                       const std::string& model) {
  std::vector<RequestResult> results(static_cast<size_t>(o.sessions) * o.turns);
  FirstError error;
  auto session = [&](int s) {
    ServeClient client(url, o.api_key, Timeout(o), error.stop());
    History history(o, model);
    for (int t = 0; t < o.turns && !error.stopped(); ++t) {
      const uint64_t stream = static_cast<uint64_t>(s) * o.turns + t;
      const json body = history.Next(stream);
      auto r = StreamOne(client, body, History::kChat, history.PromptEstimate());
      core::Status added = r.ok() ? history.Add(*r, url) : r.status();
      if (!added.ok()) {
        error.Set(std::move(added));
        return;
      }
      r->turn = t;
      results[stream] = std::move(*r);
    }
  };
  std::vector<std::thread> threads;
  for (int s = 0; s < o.sessions; ++s) threads.emplace_back(session, s);
  for (auto& t : threads) t.join();
  ARLE_RETURN_IF_ERROR(error.Get());
  return results;
}

// ---- report ----------------------------------------------------------------------------------

json MakeReport(const ServeBenchOptions& o, const ServerUrl& url, const std::string& model,
                const std::vector<RequestResult>& results, double wall,
                const std::optional<PrefixCounters>& before,
                const std::optional<PrefixCounters>& after) {
  std::vector<double> ttft, tpot, itl, e2el;
  int64_t prompt_tokens = 0, output_tokens = 0;
  bool all_usage = true;
  for (const RequestResult& r : results) {
    ttft.push_back(r.ttft);
    e2el.push_back(r.latency);
    itl.insert(itl.end(), r.itl.begin(), r.itl.end());
    if (r.output_tokens > 1) {
      tpot.push_back((r.latency - r.ttft) / static_cast<double>(r.output_tokens - 1));
    }
    prompt_tokens += r.prompt_tokens;
    output_tokens += r.output_tokens;
    all_usage = all_usage && r.usage;
  }
  const double n = static_cast<double>(results.size());
  json rep = {
      {"mode", o.sessions > 0 ? "sessions" : "completions"},
      {"url", url.ToString()},
      {"model", model},
      {"concurrency", o.sessions > 0 ? o.sessions : std::min(o.concurrency, o.requests)},
      {"prompt_len", o.prompt_len},
      {"gen_len", o.gen_len},
      {"token_prompts", o.token_prompts},
      {"ignore_eos", !o.no_ignore_eos},
      {"temperature", o.temperature},
      {"seed", o.seed},
      {"completed", results.size()},
      {"duration_s", wall},
      {"prompt_tokens", prompt_tokens},
      {"completion_tokens", output_tokens},
      {"usage_reported", all_usage},
      {"request_throughput", n / wall},
      {"output_throughput", static_cast<double>(output_tokens) / wall},
      {"total_token_throughput", static_cast<double>(prompt_tokens + output_tokens) / wall},
      {"ttft_ms", Summary(ttft)},
      {"tpot_ms", Summary(tpot)},
      {"itl_ms", Summary(itl)},
      {"e2el_ms", Summary(e2el)},
  };
  if (before && after) {
    const double q = after->queries - before->queries, h = after->hits - before->hits;
    rep["prefix_cache"] = {{"source", after->source},
                           {"queries", q},
                           {"hits", h},
                           {"hit_ratio", q > 0 ? json(h / q) : json(nullptr)}};
  } else {
    rep["prefix_cache"] = nullptr;
  }
  if (o.sessions > 0) {
    rep["sessions"] = o.sessions;
    rep["turns"] = o.turns;
    json per_turn = json::array();
    for (int t = 0; t < o.turns; ++t) {
      std::vector<double> turn_ttft;
      int64_t turn_prompt = 0;
      for (const RequestResult& r : results) {
        if (r.turn != t) continue;
        turn_ttft.push_back(r.ttft);
        turn_prompt += r.prompt_tokens;
      }
      const json s = Summary(turn_ttft);
      per_turn.push_back(
          {{"turn", t + 1},
           {"requests", turn_ttft.size()},
           {"prompt_tokens_mean", turn_ttft.empty() ? 0.0
                                                    : static_cast<double>(turn_prompt) /
                                                          static_cast<double>(turn_ttft.size())},
           {"ttft_ms_p50", s["p50"]},
           {"ttft_ms_mean", s["mean"]}});
    }
    rep["per_turn"] = per_turn;
  } else {
    rep["requests"] = o.requests;
  }
  return rep;
}

std::string Ms(const json& v) { return v.is_null() ? "-" : fmt::format("{:.2f}", v.get<double>()); }

void PrintReport(const json& rep) {
  const bool sessions = rep["mode"] == "sessions";
  const double completed = rep["completed"].get<double>();
  fmt::print("arle bench serve: {}  model {}\n", rep["url"].get<std::string>(),
             rep["model"].get<std::string>());
  if (sessions) {
    const bool tokens = rep["token_prompts"].get<bool>();
    fmt::print("{:<24}{} sessions x {} turns ({}), {}{} tokens per user message\n", "load",
               rep["sessions"].get<int>(), rep["turns"].get<int>(),
               tokens ? "completions, token ids" : "chat", tokens ? "" : "~",
               rep["prompt_len"].get<int>());
  } else {
    fmt::print("{:<24}{} requests (completions), concurrency {}, ~{} prompt tokens\n", "load",
               rep["requests"].get<int>(), rep["concurrency"].get<int>(),
               rep["prompt_len"].get<int>());
  }
  const char* counted = rep["usage_reported"].get<bool>() ? "from usage" : "estimated";
  fmt::print("{:<24}{}\n", "completed requests", rep["completed"].get<int64_t>());
  fmt::print("{:<24}{:.3f} s\n", "duration", rep["duration_s"].get<double>());
  fmt::print("{:<24}{} ({:.1f} / request, {})\n", "prompt tokens",
             rep["prompt_tokens"].get<int64_t>(), rep["prompt_tokens"].get<double>() / completed,
             counted);
  fmt::print("{:<24}{} ({:.1f} / request, {})\n", "generated tokens",
             rep["completion_tokens"].get<int64_t>(),
             rep["completion_tokens"].get<double>() / completed, counted);
  fmt::print("{:<24}{:.3f} req/s\n", "request throughput", rep["request_throughput"].get<double>());
  fmt::print("{:<24}{:.2f} tok/s\n", "output throughput", rep["output_throughput"].get<double>());
  fmt::print("{:<24}{:.2f} tok/s\n", "total throughput",
             rep["total_token_throughput"].get<double>());
  const json& pc = rep["prefix_cache"];
  if (pc.is_null() || pc["hit_ratio"].is_null()) {
    fmt::print("{:<24}n/a\n", "prefix cache hit ratio");
  } else {
    fmt::print("{:<24}{:.3f} ({:.0f} of {:.0f} prompt tokens, {} /metrics)\n",
               "prefix cache hit ratio", pc["hit_ratio"].get<double>(), pc["hits"].get<double>(),
               pc["queries"].get<double>(), pc["source"].get<std::string>());
  }
  fmt::print("\n{:<12}{:>10}{:>10}{:>10}{:>10}\n", "metric (ms)", "mean", "p50", "p90", "p99");
  for (const auto& [key, label] : {std::pair{"ttft_ms", "TTFT"}, std::pair{"tpot_ms", "TPOT"},
                                   std::pair{"itl_ms", "ITL"}, std::pair{"e2el_ms", "E2E"}}) {
    const json& s = rep[key];
    fmt::print("{:<12}{:>10}{:>10}{:>10}{:>10}\n", label, Ms(s["mean"]), Ms(s["p50"]), Ms(s["p90"]),
               Ms(s["p99"]));
  }
  if (sessions) {
    fmt::print("\n{:>5}{:>10}{:>16}{:>16}{:>16}\n", "turn", "requests", "prompt tokens",
               "TTFT p50 (ms)", "TTFT mean (ms)");
    for (const json& t : rep["per_turn"]) {
      fmt::print("{:>5}{:>10}{:>16.1f}{:>16}{:>16}\n", t["turn"].get<int>(),
                 t["requests"].get<int>(), t["prompt_tokens_mean"].get<double>(),
                 Ms(t["ttft_ms_p50"]), Ms(t["ttft_ms_mean"]));
    }
  }
  std::fflush(stdout);
}

int BenchServe(ServeBenchOptions o) {
  auto url = ParseServerUrl(o.url);
  if (!url.ok()) return ReportError(url.status());
  if (o.api_key.empty()) {
    if (const char* env = std::getenv("OPENAI_API_KEY")) o.api_key = env;
  }
  ServeClient probe(*url, o.api_key, Timeout(o));
  std::string model = o.model;
  if (model.empty()) {
    auto id = FirstModelId(probe);
    if (!id.ok()) return ReportError(id.status());
    model = *id;
  }
  auto before = SamplePrefixCounters(probe);
  if (!before.ok()) return ReportError(before.status());

  const Clock::time_point start = Clock::now();
  auto results = o.sessions == 0    ? RunCompletions(o, *url, model)
                 : o.token_prompts ? RunSessions<TokenHistory>(o, *url, model)
                                   : RunSessions<ChatHistory>(o, *url, model);
  const double wall = Seconds(Clock::now() - start);
  if (!results.ok()) return ReportError(results.status());

  auto after = SamplePrefixCounters(probe);
  const json rep = MakeReport(o, *url, model, *results, wall, *before,
                              after.ok() ? *after : std::optional<PrefixCounters>());
  if (o.json) {
    fmt::print("{}\n", rep.dump(2));
    std::fflush(stdout);
  } else {
    PrintReport(rep);
  }
  return kExitOk;
}

}  // namespace

void RegisterBenchServeCommand(CLI::App& bench, int& exit_code) {
  CLI::App* cmd = bench.add_subcommand(
      "serve", "Load-test an OpenAI-compatible server (arle, vLLM, llama.cpp): TTFT/TPOT/ITL");
  static ServeBenchOptions o;
  cmd->add_option("--url", o.url, "Server, http://HOST:PORT[/base]")->required();
  auto* concurrency =
      cmd->add_option("-c,--concurrency", o.concurrency, "Requests in flight at once")
          ->check(CLI::Range(1, 4096))
          ->capture_default_str();
  cmd->add_option("-p,--prompt-len", o.prompt_len,
                  "Prompt tokens per request (per user message in sessions mode; about, for text)")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  cmd->add_option("-n,--gen-len", o.gen_len, "max_tokens per request")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  auto* requests = cmd->add_option("-r,--requests", o.requests, "Requests in total")
                       ->check(CLI::Range(1, 1 << 24))
                       ->capture_default_str();
  auto* sessions = cmd->add_option("--sessions", o.sessions,
                                   "Multi-turn mode: this many concurrent chat sessions")
                       ->check(CLI::Range(1, 4096));
  cmd->add_option("--turns", o.turns, "Turns per session (sessions mode)")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  cmd->add_flag("--token-prompts", o.token_prompts,
                    "Send prompts as token-id arrays of exactly --prompt-len ids (arle, vLLM); with "
                    "--sessions, continue each turn on the returned token_ids");
  cmd->add_option("--token-vocab", o.token_vocab,
                  "With --token-prompts: ids are drawn from [1, N); keep N <= the model's vocab")
      ->check(CLI::Range(2, 1 << 30))
      ->capture_default_str();
  cmd->add_flag("--no-ignore-eos", o.no_ignore_eos,
                "Do not send ignore_eos: true (answers may stop before --gen-len)");
  cmd->add_option("--temperature", o.temperature, "Sampling temperature")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  cmd->add_option("--model", o.model, "Model name (default: the first id from GET /v1/models)");
  cmd->add_option("--api-key", o.api_key, "Bearer key (default: $OPENAI_API_KEY when set)");
  cmd->add_flag("--json", o.json, "Print the report as JSON");
  cmd->add_option("--seed", o.seed, "Seed for the random prompts")->capture_default_str();
  cmd->add_option("--timeout", o.timeout_s, "Seconds to wait for a connection or the next bytes")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  sessions->excludes(requests);
  sessions->excludes(concurrency);
  cmd->callback([&exit_code] { exit_code = BenchServe(o); });
}

}  // namespace arle::app
