#include "arle/rl/episodes.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <semaphore>

#include "arle/agent/engine_model.h"
#include "arle/agent/tools.h"
#include "arle/core/random.h"
#include "arle/core/thread_pool.h"
#include "arle/rl/grpo_objective.h"
#include "arle/runtime/sampler.h"

namespace arle::rl {

uint64_t MixSeed(uint64_t a, uint64_t b) {
  return core::Rng(a ^ (b + 0x9E3779B97F4A7C15ULL + (a << 6) + (a >> 2))).NextU64();
}

namespace {

// One episode on the calling thread: the task's conversation through a fresh agent.
core::StatusOr<Episode> RunOneEpisode(runtime::Engine& engine, const PromptRenderer& renderer,
                                      const std::string& parser_family, const RlTask& task,
                                      runtime::EngineRequest request, const EpisodeOptions& o,
                                      std::counting_semaphore<>& tool_slots) {
  agent::EngineAgentModel model(engine, renderer.setup(), parser_family, std::move(request),
                                renderer.kwargs());
  std::unique_ptr<agent::TempWorkdir> workdir;
  agent::SandboxOptions sandbox;
  sandbox.limits = o.limits;
  sandbox.unsafe_no_sandbox = o.unsafe_no_sandbox;
  if (o.tools) {
    ARLE_ASSIGN_OR_RETURN(workdir, agent::TempWorkdir::Create("arle-rl-episode"));
    sandbox.workdir = workdir->path();
  }
  agent::AgentOptions options;
  options.max_turns = o.max_turns;
  options.tools = o.tools;
  options.limits = o.limits;
  agent::Agent agent(
      model,
      [&](std::string_view tool, std::string_view code) {
        tool_slots.acquire();
        auto result = agent::RunTool(tool, code, sandbox);
        tool_slots.release();
        return result;
      },
      options);
  std::string user = task.prompt;
  if (task.is_chat()) {
    // Everything before the last user message is history; the loop appends the last one.
    std::vector<agent::AgentMessage> history = task.messages;
    const auto last_user =
        std::find_if(history.rbegin(), history.rend(),
                     [](const agent::AgentMessage& m) { return m.role == "user"; });
    if (last_user == history.rend()) {
      return core::InvalidArgumentError(task.where + ": a multi-turn task needs a user message");
    }
    user = last_user->content;
    history.erase(std::next(last_user).base(), history.end());
    agent.set_messages(std::move(history));
  }
  ARLE_ASSIGN_OR_RETURN(agent::TurnResult trace, agent.RunTurn(user, {}));
  Episode e;
  e.answer = trace.content;
  e.malformed.assign(trace.completions.size(), 0);
  for (size_t k = 0; k < trace.completions.size(); ++k) {
    e.malformed[k] = trace.completions[k].n_problems;
  }
  for (const agent::ToolExchange& ex : trace.tools) {
    ++e.n_tool_calls;
    if (ex.ran && ex.call.name == "python") ++e.n_python_calls;
    if (!ex.ran) ++e.malformed[static_cast<size_t>(ex.model_call)];
  }
  e.trace = std::move(trace);
  return e;
}

}  // namespace

core::StatusOr<std::vector<std::vector<Episode>>> RunEpisodes(
    runtime::Engine& engine, const models::Model& model, const PromptRenderer& renderer,
    const std::string& parser_family, const std::vector<const RlTask*>& tasks, int n,
    const std::vector<uint64_t>& seeds, const EpisodeOptions& o) {
  if (o.tools && !o.unsafe_no_sandbox) {
    if (const agent::SandboxState& s = agent::ProbeSandbox(); !s.available) {
      return core::FailedPreconditionError(
          "multi-turn episodes run tools in the sandbox, which is unavailable here (" + s.detail +
              ")",
          "install bubblewrap (apt-get install bubblewrap), or pass --unsafe-no-sandbox");
    }
  }
  runtime::EngineRequest request;
  request.sampling.temperature = o.temperature;
  request.sampling.top_p = o.top_p;
  request.sampling.logprobs = true;
  request.sampling.logprobs_mode = runtime::LogprobsMode::kTempered;
  request.stop = runtime::DefaultStopParams(model, engine.tokenizer());
  request.stop.max_tokens = o.max_tokens;

  const size_t per_task = static_cast<size_t>(n);
  std::vector<std::vector<Episode>> out(tasks.size(), std::vector<Episode>(per_task));
  std::counting_semaphore<> tool_slots(std::max(1, o.max_parallel_tools));
  ARLE_RETURN_IF_ERROR(core::RunOnThreads(tasks.size() * per_task, [&](size_t k) -> core::Status {
    const size_t i = k / per_task, g = k % per_task;
    runtime::EngineRequest r = request;
    r.sampling.seed = MixSeed(seeds[i], g);
    auto e = RunOneEpisode(engine, renderer, parser_family, *tasks[i], std::move(r), o, tool_slots);
    if (!e.ok()) {
      const RlTask& task = *tasks[i];
      return e.status().WithContext("episode of " + (task.where.empty() ? task.id : task.where));
    }
    out[i][g] = std::move(e).value();
    return core::OkStatus();
  }));
  return out;
}

core::StatusOr<EpisodeTrajectories> TraceTrajectories(
    const std::vector<agent::Completion>& completions) {
  EpisodeTrajectories out;
  for (size_t k = 0; k < completions.size(); ++k) {
    const agent::Completion& c = completions[k];
    if (c.tokens.empty() || c.logprobs.size() != c.tokens.size() || c.prompt_tokens.empty()) {
      return core::InvalidArgumentError(fmt::format(
          "model call {}: {} tokens with {} log-probs after a {}-token prompt (each call needs "
          "tokens, one log-prob per token, and a prompt)",
          k, c.tokens.size(), c.logprobs.size(), c.prompt_tokens.size()));
    }
    Trajectory* t = out.trajectories.empty() ? nullptr : &out.trajectories.back();
    const bool continues = t != nullptr && c.prompt_tokens.size() > t->tokens.size() &&
                           std::equal(t->tokens.begin(), t->tokens.end(), c.prompt_tokens.begin());
    if (continues) {
      t->AddContext(std::vector<int32_t>(
          c.prompt_tokens.begin() + static_cast<std::ptrdiff_t>(t->tokens.size()),
          c.prompt_tokens.end()));
    } else {
      out.trajectories.emplace_back();
      t = &out.trajectories.back();
      t->AddContext(c.prompt_tokens);
    }
    const int64_t first = t->n_generated();
    t->AddGenerated(c.tokens, c.logprobs);
    out.calls.push_back(
        {out.trajectories.size() - 1, first, static_cast<int64_t>(c.tokens.size())});
  }
  return out;
}

std::vector<double> DiscountedReturns(std::span<const double> rewards, double gamma) {
  std::vector<double> g(rewards.size());
  double next = 0;
  for (size_t k = rewards.size(); k-- > 0;) {
    next = rewards[k] + gamma * next;
    g[k] = next;
  }
  return g;
}

core::StatusOr<std::vector<std::vector<double>>> StepwiseAdvantages(
    const std::vector<std::vector<double>>& returns, bool std_norm) {
  std::vector<double> flat;
  for (const auto& r : returns) flat.insert(flat.end(), r.begin(), r.end());
  if (flat.empty()) {
    return core::InvalidArgumentError("stepwise advantages: the group has no model calls")
        .WithField("returns");
  }
  ARLE_ASSIGN_OR_RETURN(std::vector<double> a,
                        GroupAdvantages(flat, static_cast<int>(flat.size()), std_norm));
  std::vector<std::vector<double>> out;
  size_t k = 0;
  for (const auto& r : returns) {
    out.emplace_back(a.begin() + static_cast<std::ptrdiff_t>(k),
                     a.begin() + static_cast<std::ptrdiff_t>(k + r.size()));
    k += r.size();
  }
  return out;
}

core::StatusOr<EpisodeBatch> BuildEpisodeBatch(const std::vector<std::vector<Episode>>& groups,
                                               std::span<const double> rewards,
                                               const EpisodeRewardOptions& o) {
  EpisodeBatch batch;
  size_t flat = 0;
  for (const std::vector<Episode>& group : groups) {
    // Per episode of the group: its calls' returns, and where its trajectories start.
    std::vector<std::vector<double>> returns;
    std::vector<EpisodeTrajectories> traces;
    for (const Episode& e : group) {
      if (flat >= rewards.size()) {
        return core::InvalidArgumentError("episode batch: fewer rewards than episodes");
      }
      const size_t n_calls = e.trace.completions.size();
      if (n_calls == 0 || e.malformed.size() != n_calls) {
        return core::InvalidArgumentError("episode batch: an episode without model calls");
      }
      std::vector<double> r(n_calls);
      for (size_t k = 0; k < n_calls; ++k) {
        r[k] = -o.malformed_penalty * static_cast<double>(e.malformed[k]);
        batch.n_malformed += e.malformed[k];
      }
      r.back() += rewards[flat++];
      returns.push_back(DiscountedReturns(r, o.gamma));
      ARLE_ASSIGN_OR_RETURN(EpisodeTrajectories t, TraceTrajectories(e.trace.completions));
      traces.push_back(std::move(t));
      ++batch.n_episodes;
      batch.n_calls += static_cast<int64_t>(n_calls);
      if (e.n_python_calls > 0) ++batch.n_python_episodes;
    }
    std::vector<std::vector<double>> advantages;
    if (o.episode_level) {
      std::vector<double> g0;
      for (const auto& r : returns) g0.push_back(r.front());
      ARLE_ASSIGN_OR_RETURN(std::vector<double> a,
                            GroupAdvantages(g0, static_cast<int>(g0.size()), o.std_norm));
      for (size_t e = 0; e < returns.size(); ++e) advantages.emplace_back(returns[e].size(), a[e]);
    } else {
      ARLE_ASSIGN_OR_RETURN(advantages, StepwiseAdvantages(returns, o.std_norm));
    }
    for (size_t e = 0; e < traces.size(); ++e) {
      const size_t base = batch.trajectories.size();
      if (o.episode_level) {
        for (const Trajectory& t : traces[e].trajectories) {
          batch.units.push_back({.trajectory = batch.trajectories.size(),
                                 .first = 0,
                                 .count = t.n_generated(),
                                 .advantage = advantages[e][0]});
          batch.trajectories.push_back(t);
        }
        continue;
      }
      for (size_t k = 0; k < traces[e].calls.size(); ++k) {
        const CallSpan& c = traces[e].calls[k];
        batch.units.push_back({.trajectory = base + c.trajectory,
                               .first = c.first,
                               .count = c.count,
                               .advantage = advantages[e][k]});
      }
      for (Trajectory& t : traces[e].trajectories) batch.trajectories.push_back(std::move(t));
    }
  }
  if (flat != rewards.size()) {
    return core::InvalidArgumentError("episode batch: more rewards than episodes");
  }
  return batch;
}

}  // namespace arle::rl
