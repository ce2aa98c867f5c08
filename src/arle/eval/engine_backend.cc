#include "arle/eval/engine_backend.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>

namespace arle::eval {

core::StatusOr<EncodedPair> EncodePair(const EncodeFn& encode, const LoglikelihoodRequest& request,
                                       int32_t prefix_token, int64_t max_tokens) {
  // lm-evaluation-harness's _encode_pair: trailing whitespace of the context (Python's rstrip)
  // belongs to the continuation, and the continuation's tokens are the tail of the whole text's
  // encoding, so a token spanning the boundary counts as the continuation's.
  const std::string context = PythonRStrip(request.context);
  const std::string continuation = request.context.substr(context.size()) + request.continuation;
  EncodedPair out;
  int64_t n_context = 0;
  if (context.empty()) {
    ARLE_ASSIGN_OR_RETURN(std::vector<int32_t> cont, encode(continuation));
    out.tokens.push_back(prefix_token);
    out.tokens.insert(out.tokens.end(), cont.begin(), cont.end());
    n_context = 1;
  } else {
    ARLE_ASSIGN_OR_RETURN(std::vector<int32_t> whole, encode(context + continuation));
    ARLE_ASSIGN_OR_RETURN(std::vector<int32_t> ctx, encode(context));
    n_context = std::min<int64_t>(static_cast<int64_t>(ctx.size()), whole.size());
    out.tokens = std::move(whole);
  }
  const int64_t n_total = static_cast<int64_t>(out.tokens.size());
  if (n_total - n_context < 1) {
    return core::InvalidArgumentError("the continuation \"" + request.continuation +
                                      "\" encodes to no token of its own");
  }
  // Too long: keep the last max_tokens tokens (the harness truncates on the left too).
  if (n_total > max_tokens) {
    const int64_t drop = n_total - max_tokens;
    out.tokens.erase(out.tokens.begin(), out.tokens.begin() + drop);
    n_context = std::max<int64_t>(1, n_context - drop);
  }
  out.score_from = n_context;
  return out;
}

EngineBackend::EngineBackend(runtime::Engine& engine, const tokenizer::ChatSetup* chat,
                             runtime::StopParams default_stop, EngineBackendOptions options)
    : engine_(engine),
      chat_(chat),
      default_stop_(std::move(default_stop)),
      options_(std::move(options)) {}

core::StatusOr<std::vector<int32_t>> EngineBackend::Encode(const std::string& text) const {
  tokenizer::EncodeOptions o;
  o.add_special_tokens = options_.add_bos;
  return engine_.tokenizer().Encode(text, o);
}

namespace {

// Runs a list of engine requests with at most `max_in_flight` unfinished, in an order given by
// `ready` (indices); `after[i]` are released into the front of the queue when i finishes.
class Dispatcher {
 public:
  Dispatcher(runtime::Engine& engine, int max_in_flight)
      : engine_(engine), max_in_flight_(std::max(1, max_in_flight)) {}

  // `make(i)` builds request i; `on_event(i, out)` runs on the engine thread for each event.
  core::Status Run(size_t n, std::deque<size_t> ready,
                   const std::vector<std::vector<size_t>>& after,
                   const std::function<runtime::EngineRequest(size_t)>& make,
                   const std::function<void(size_t, const runtime::EngineOutput&)>& on_event,
                   const ProgressFn& progress) {
    size_t finished = 0;
    int in_flight = 0;
    std::vector<uint64_t> ids;
    while (finished < n) {
      std::unique_lock<std::mutex> lock(mu_);
      while (in_flight < max_in_flight_ && !ready.empty()) {
        const size_t i = ready.front();
        ready.pop_front();
        lock.unlock();
        runtime::EngineRequest request = make(i);
        const int n_samples = request.n;
        auto id = engine_.Submit(std::move(request),
                                 [this, i, n_samples, &on_event](const runtime::EngineOutput& out) {
                                   on_event(i, out);
                                   if (out.finish_reason == runtime::FinishReason::kNone) return;
                                   std::lock_guard<std::mutex> l(mu_);
                                   if (out.finish_reason == runtime::FinishReason::kAbort) {
                                     aborted_ = true;
                                   }
                                   if (++samples_done_[i] == n_samples) done_.push_back(i);
                                   cv_.notify_all();
                                 });
        lock.lock();
        if (!id.ok()) {
          lock.unlock();
          for (uint64_t other : ids) engine_.Cancel(other);
          return id.status();
        }
        ids.push_back(*id);
        ++in_flight;
      }
      cv_.wait(lock, [&] { return !done_.empty(); });
      while (!done_.empty()) {
        const size_t i = done_.front();
        done_.pop_front();
        --in_flight;
        ++finished;
        for (auto it = after[i].rbegin(); it != after[i].rend(); ++it) ready.push_front(*it);
      }
      if (aborted_) {
        lock.unlock();
        for (uint64_t other : ids) engine_.Cancel(other);
        return core::InternalError("the engine aborted an evaluation request (see the log)");
      }
      lock.unlock();
      if (progress) progress(static_cast<int64_t>(finished));
    }
    return core::OkStatus();
  }

  void Prepare(size_t n) { samples_done_.assign(n, 0); }

 private:
  runtime::Engine& engine_;
  const int max_in_flight_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<size_t> done_;
  std::vector<int> samples_done_;
  bool aborted_ = false;
};

}  // namespace

core::StatusOr<std::vector<LoglikelihoodResult>> EngineBackend::Loglikelihood(
    std::span<const LoglikelihoodRequest> requests, const ProgressFn& progress) {
  const tokenizer::Tokenizer& tok = engine_.tokenizer();
  // The harness's prefix_token_id: BOS, else EOS (the end-of-text token).
  const std::optional<int32_t> prefix = tok.bos_id().has_value() ? tok.bos_id() : tok.eos_id();
  const EncodeFn encode = [this](const std::string& text) { return Encode(text); };
  std::vector<EncodedPair> pairs;
  pairs.reserve(requests.size());
  for (const LoglikelihoodRequest& r : requests) {
    if (r.context.empty() && !prefix.has_value()) {
      return core::FailedPreconditionError("the tokenizer has neither a BOS nor an EOS token",
                                           "an empty context needs one of them as its prefix");
    }
    ARLE_ASSIGN_OR_RETURN(EncodedPair p,
                          EncodePair(encode, r, prefix.value_or(0), engine_.max_context_tokens()));
    pairs.push_back(std::move(p));
  }
  // Requests with the same context tokens as the one before them wait for it (its context is
  // then in the prefix cache).
  std::deque<size_t> ready;
  std::vector<std::vector<size_t>> after(pairs.size());
  size_t leader = pairs.size();
  for (size_t i = 0; i < pairs.size(); ++i) {
    const EncodedPair& a = pairs[i];
    if (leader < pairs.size() && a.score_from == pairs[leader].score_from &&
        std::equal(a.tokens.begin(), a.tokens.begin() + a.score_from,
                   pairs[leader].tokens.begin())) {
      after[leader].push_back(i);
    } else {
      leader = i;
      ready.push_back(i);
    }
  }
  std::vector<LoglikelihoodResult> results(pairs.size());
  const runtime::StopParams stop = [&] {
    runtime::StopParams s = default_stop_;
    s.max_tokens = 0;
    return s;
  }();
  Dispatcher dispatcher(engine_, options_.max_in_flight);
  dispatcher.Prepare(pairs.size());
  auto make = [&](size_t i) {
    runtime::EngineRequest r;
    r.prompt_tokens = pairs[i].tokens;
    r.stop = stop;
    r.prompt_logprobs = runtime::PromptLogprobsParams{
        .from = pairs[i].score_from, .top_logprobs = 0, .on_logits = {}};
    return r;
  };
  auto on_event = [&](size_t i, const runtime::EngineOutput& out) {
    if (out.prompt_logprobs.empty()) return;
    LoglikelihoodResult& res = results[i];
    res.is_greedy = true;
    for (const runtime::PromptTokenLogprob& t : out.prompt_logprobs) {
      res.logprob += t.logprob;
      res.is_greedy = res.is_greedy && t.is_argmax;
    }
    res.n_tokens = static_cast<int64_t>(out.prompt_logprobs.size());
  };
  ARLE_RETURN_IF_ERROR(
      dispatcher.Run(pairs.size(), std::move(ready), after, make, on_event, progress));
  return results;
}

core::StatusOr<std::vector<GenerationResult>> EngineBackend::Generate(
    std::span<const GenerationRequest> requests, const ProgressFn& progress) {
  std::vector<std::vector<int32_t>> prompts;
  for (const GenerationRequest& g : requests) {
    std::vector<int32_t> tokens;
    if (g.chat) {
      if (chat_ == nullptr) return core::FailedPreconditionError("no chat template is loaded");
      nlohmann::ordered_json messages = nlohmann::ordered_json::array();
      messages.push_back({{"role", "user"}, {"content", g.prompt}});
      nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
      if (g.enable_thinking.has_value()) kwargs["enable_thinking"] = *g.enable_thinking;
      ARLE_ASSIGN_OR_RETURN(std::string text,
                            tokenizer::RenderChat(*chat_, messages, nullptr, true, kwargs));
      tokenizer::EncodeOptions o;
      o.add_special_tokens = false;  // the template writes its own
      tokens = engine_.tokenizer().Encode(text, o);
    } else {
      ARLE_ASSIGN_OR_RETURN(tokens, Encode(g.prompt));
    }
    if (tokens.empty()) return core::InvalidArgumentError("a generation prompt encodes to nothing");
    // Keep room for the answer: the harness truncates the prompt on the left the same way.
    const int64_t room = std::max<int64_t>(1, engine_.max_context_tokens() - g.max_tokens);
    if (static_cast<int64_t>(tokens.size()) > room) {
      tokens.erase(tokens.begin(), tokens.end() - room);
    }
    prompts.push_back(std::move(tokens));
  }
  std::vector<GenerationResult> results(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    results[i].texts.resize(static_cast<size_t>(std::max(1, requests[i].n)));
  }
  std::deque<size_t> ready;
  for (size_t i = 0; i < requests.size(); ++i) ready.push_back(i);
  const std::vector<std::vector<size_t>> after(requests.size());
  Dispatcher dispatcher(engine_, options_.max_in_flight);
  dispatcher.Prepare(requests.size());
  auto make = [&](size_t i) {
    const GenerationRequest& g = requests[i];
    runtime::EngineRequest r;
    r.prompt_tokens = prompts[i];
    r.sampling.temperature = g.temperature;
    r.sampling.top_p = g.top_p;
    r.sampling.seed = g.seed;
    r.stop = default_stop_;
    r.stop.max_tokens = g.max_tokens;
    r.stop_strings = g.until;
    r.n = std::max(1, g.n);
    return r;
  };
  auto on_event = [&](size_t i, const runtime::EngineOutput& out) {
    results[i].texts[static_cast<size_t>(out.index)] += out.text;
  };
  ARLE_RETURN_IF_ERROR(
      dispatcher.Run(requests.size(), std::move(ready), after, make, on_event, progress));
  return results;
}

}  // namespace arle::eval
