// TrainMonitor: event order and numbering, the ring's truncation and next_seq, state transitions,
// the status snapshot, and one publisher against concurrent readers (run under tsan too).
#include "arle/train/train_monitor.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>
#include <vector>

namespace arle::train {
namespace {

using Json = nlohmann::json;

StepReport Step(int64_t step, double loss = 2.0) {
  StepReport r;
  r.step = step;
  r.loss = loss;
  r.lr = 1e-3;
  r.grad_norm = 0.5;
  r.tokens = 64;
  r.tokens_per_s = 1000;
  r.elapsed_s = static_cast<double>(step) * 0.5;
  return r;
}

std::vector<int64_t> Seqs(const Json& page) {
  std::vector<int64_t> seqs;
  for (const Json& e : page["events"]) seqs.push_back(e["seq"].get<int64_t>());
  return seqs;
}

TEST(TrainMonitorTest, EventsArriveInOrderWithTheirFields) {
  TrainMonitor m(10, "/tmp/run", 42);
  m.OnStep(Step(1, 3.5));
  m.OnEval({.step = 1, .loss = 3.0, .ppl = 20.0, .tokens = 100});
  m.OnSave("/tmp/run/step_000001");
  const Json page = Json::parse(m.EventsJson(0));
  ASSERT_EQ(page["events"].size(), 5u);
  // starting (at creation), step, running (set by the first step), eval, save.
  EXPECT_EQ(Seqs(page), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  const Json& e = page["events"];
  EXPECT_EQ(e[0]["type"], "state");
  EXPECT_EQ(e[0]["state"], "starting");
  EXPECT_EQ(e[1]["type"], "step");
  EXPECT_EQ(e[1]["step"], 1);
  EXPECT_DOUBLE_EQ(e[1]["loss"].get<double>(), 3.5);
  EXPECT_EQ(e[1]["tokens"], 64);
  EXPECT_EQ(e[2]["state"], "running");
  EXPECT_EQ(e[3]["type"], "eval");
  EXPECT_DOUBLE_EQ(e[3]["ppl"].get<double>(), 20.0);
  EXPECT_EQ(e[4]["type"], "save");
  EXPECT_EQ(e[4]["dir"], "/tmp/run/step_000001");
  EXPECT_EQ(e[4]["step"], 1);
  EXPECT_TRUE(e[4]["time"].is_number());
  EXPECT_EQ(page["next_seq"], 5);
  EXPECT_EQ(page["truncated"], false);

  const Json tail = Json::parse(m.EventsJson(3));
  EXPECT_EQ(Seqs(tail), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(tail["next_seq"], 5);
  const Json none = Json::parse(m.EventsJson(5));
  EXPECT_TRUE(none["events"].empty());
  EXPECT_EQ(none["next_seq"], 5);
  EXPECT_EQ(none["truncated"], false);
  EXPECT_EQ(m.last_seq(), 5);
}

// A loop with its own metrics (GRPO): they join the step event and the status, and an
// evaluation that is not a loss shows its metrics instead of loss and ppl.
TEST(TrainMonitorTest, OwnMetricsOfOtherLoops) {
  TrainMonitor m(10, "/tmp/run", 42);
  EXPECT_TRUE(Json::parse(m.StatusJson())["metrics"].is_null());
  StepReport r = Step(1, 0.25);
  r.metrics_json = R"({"reward_mean": 0.5, "logprob_max_diff": 0})";
  m.OnStep(r);
  EvalReport e;
  e.step = 1;
  e.metrics_json = R"({"eval_accuracy": 0.75})";
  m.OnEval(e);
  const Json events = Json::parse(m.EventsJson(0))["events"];
  ASSERT_EQ(events.size(), 4u);
  EXPECT_DOUBLE_EQ(events[1]["loss"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(events[1]["reward_mean"].get<double>(), 0.5);
  EXPECT_EQ(events[1]["logprob_max_diff"], 0);
  EXPECT_EQ(events[3]["type"], "eval");
  EXPECT_DOUBLE_EQ(events[3]["eval_accuracy"].get<double>(), 0.75);
  EXPECT_FALSE(events[3].contains("loss"));
  const Json status = Json::parse(m.StatusJson());
  EXPECT_DOUBLE_EQ(status["metrics"]["reward_mean"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(status["last_eval"]["eval_accuracy"].get<double>(), 0.75);
  EXPECT_FALSE(status["last_eval"].contains("ppl"));
}

TEST(TrainMonitorTest, RingKeepsTheNewestAndSaysWhenAClientMissedSome) {
  TrainMonitor m(100, "out", 1, /*event_capacity=*/4);
  for (int64_t s = 1; s <= 8; ++s) m.OnSave("d" + std::to_string(s));  // seqs 2..9
  EXPECT_EQ(m.last_seq(), 9);
  // Kept: 6, 7, 8, 9.
  Json page = Json::parse(m.EventsJson(0));
  EXPECT_EQ(Seqs(page), (std::vector<int64_t>{6, 7, 8, 9}));
  EXPECT_EQ(page["truncated"], true);
  EXPECT_EQ(page["next_seq"], 9);
  page = Json::parse(m.EventsJson(4));  // wanted 5.. but 5 is gone
  EXPECT_EQ(Seqs(page), (std::vector<int64_t>{6, 7, 8, 9}));
  EXPECT_EQ(page["truncated"], true);
  page = Json::parse(m.EventsJson(5));  // wanted 6..: all there
  EXPECT_EQ(Seqs(page), (std::vector<int64_t>{6, 7, 8, 9}));
  EXPECT_EQ(page["truncated"], false);
  page = Json::parse(m.EventsJson(7));
  EXPECT_EQ(Seqs(page), (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(page["truncated"], false);
  // A client ahead of this run (e.g. it followed an earlier process) is brought back.
  page = Json::parse(m.EventsJson(500));
  EXPECT_TRUE(page["events"].empty());
  EXPECT_EQ(page["next_seq"], 9);
  EXPECT_EQ(page["truncated"], false);
}

TEST(TrainMonitorTest, StatesMoveForwardOnly) {
  TrainMonitor m(10, "out", 1);
  EXPECT_EQ(m.state(), RunState::kStarting);
  m.SetState(RunState::kStopping);  // a stop before the first step
  m.OnStep(Step(1));                // does not go back to running
  EXPECT_EQ(m.state(), RunState::kStopping);
  m.SetState(RunState::kRunning);
  EXPECT_EQ(m.state(), RunState::kStopping);
  m.SetState(RunState::kFailed, "disk full");
  m.SetState(RunState::kFinished);  // final states stay
  EXPECT_EQ(m.state(), RunState::kFailed);
  const Json page = Json::parse(m.EventsJson(0));
  std::vector<std::string> states;
  for (const Json& e : page["events"]) {
    if (e["type"] == "state") states.push_back(e["state"]);
  }
  EXPECT_EQ(states, (std::vector<std::string>{"starting", "stopping", "failed"}));
  const Json status = Json::parse(m.StatusJson());
  EXPECT_EQ(status["state"], "failed");
  EXPECT_EQ(status["error"], "disk full");
  EXPECT_TRUE(status["eta_s"].is_null());
}

TEST(TrainMonitorTest, StatusIsTheLatestSnapshot) {
  TrainMonitor m(10, "/runs/a", 1234);
  Json s = Json::parse(m.StatusJson());
  EXPECT_EQ(s["state"], "starting");
  EXPECT_TRUE(s["step"].is_null());
  EXPECT_TRUE(s["loss"].is_null());
  EXPECT_TRUE(s["eta_s"].is_null());
  EXPECT_TRUE(s["last_eval"].is_null());
  EXPECT_TRUE(s["latest_checkpoint"].is_null());
  EXPECT_EQ(s["steps"], 10);
  EXPECT_EQ(s["out"], "/runs/a");
  EXPECT_EQ(s["pid"], 1234);
  EXPECT_GE(s["elapsed_s"].get<double>(), 0.0);

  // A resumed run: its first step here is 5, 0.5 s each.
  StepReport r = Step(5);
  r.elapsed_s = 0.5;
  m.OnStep(r);
  r = Step(6, 1.25);
  r.elapsed_s = 1.0;
  m.OnStep(r);
  m.OnEval({.step = 6, .loss = 1.5, .ppl = 4.48, .tokens = 10});
  m.OnSave("/runs/a/step_000006");
  s = Json::parse(m.StatusJson());
  EXPECT_EQ(s["state"], "running");
  EXPECT_EQ(s["step"], 6);
  EXPECT_DOUBLE_EQ(s["loss"].get<double>(), 1.25);
  EXPECT_DOUBLE_EQ(s["eta_s"].get<double>(), 2.0);  // 4 steps left at 0.5 s
  EXPECT_EQ(s["last_eval"]["step"], 6);
  EXPECT_DOUBLE_EQ(s["last_eval"]["loss"].get<double>(), 1.5);
  EXPECT_EQ(s["latest_checkpoint"], "/runs/a/step_000006");
  m.SetState(RunState::kFinished);
  s = Json::parse(m.StatusJson());
  EXPECT_EQ(s["state"], "finished");
  EXPECT_DOUBLE_EQ(s["eta_s"].get<double>(), 0.0);
}

TEST(TrainMonitorTest, NonFiniteNumbersAreNull) {
  TrainMonitor m(10, "out", 1);
  m.OnStep(Step(1, std::nan("")));
  const Json s = Json::parse(m.StatusJson());
  EXPECT_TRUE(s["loss"].is_null());
  const Json page = Json::parse(m.EventsJson(1));
  EXPECT_TRUE(page["events"][0]["loss"].is_null());
}

TEST(TrainMonitorTest, WrapPublishesThenCallsTheInnerCallbacksAndSeesTheStopFlag) {
  TrainMonitor m(10, "out", 1);
  std::atomic<bool> stop{false}, save_now{false};
  std::vector<std::string> calls;
  TrainCallbacks inner;
  inner.on_step = [&](const StepReport& r) {
    // The monitor has it already.
    calls.push_back("step" + std::to_string(Json::parse(m.StatusJson())["step"].get<int>()));
  };
  inner.on_save = [&](const std::string& dir) { calls.push_back("save " + dir); };
  inner.stop = &stop;
  inner.save_now = &save_now;
  TrainCallbacks cb = m.Wrap(std::move(inner));
  EXPECT_EQ(cb.stop, &stop);
  EXPECT_EQ(cb.save_now, &save_now);
  cb.on_step(Step(1));
  EXPECT_EQ(m.state(), RunState::kRunning);
  stop.store(true);
  cb.on_step(Step(2));
  EXPECT_EQ(m.state(), RunState::kStopping);
  cb.on_save("d2");
  cb.on_eval({.step = 2, .loss = 1, .ppl = 2.7, .tokens = 3});  // no inner on_eval: fine
  EXPECT_EQ(calls, (std::vector<std::string>{"step1", "step2", "save d2"}));
  EXPECT_EQ(Json::parse(m.StatusJson())["last_eval"]["step"], 2);
}

// One publisher, several readers polling with after_seq = their next_seq: every reader sees
// strictly increasing, gap-free seqs except where the answer says truncated.
TEST(TrainMonitorTest, ConcurrentReadersSeeOrderedEvents) {
  constexpr int64_t kSteps = 20000;
  TrainMonitor m(kSteps, "out", 1, /*event_capacity=*/64);
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  std::vector<int64_t> seen(4, 0), truncations(4, 0), errors(4, 0);
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      int64_t after = 0;
      for (;;) {
        const bool finished = done.load();
        const Json page = Json::parse(m.EventsJson(after));
        int64_t expect = after + 1;
        if (page["truncated"].get<bool>()) {
          ++truncations[t];
          if (!page["events"].empty()) expect = page["events"][0]["seq"].get<int64_t>();
          if (expect <= after + 1) ++errors[t];  // truncated yet nothing was skipped
        }
        for (const Json& e : page["events"]) {
          if (e["seq"].get<int64_t>() != expect) ++errors[t];
          expect = e["seq"].get<int64_t>() + 1;
          ++seen[t];
        }
        after = page["next_seq"].get<int64_t>();
        EXPECT_FALSE(Json::parse(m.StatusJson())["state"].is_null());
        if (finished && after == m.last_seq()) break;
      }
    });
  }
  for (int64_t s = 1; s <= kSteps; ++s) {
    m.OnStep(Step(s));
    if (s % 100 == 0) m.OnSave("d" + std::to_string(s));
  }
  m.SetState(RunState::kFinished);
  done.store(true);
  for (std::thread& r : readers) r.join();
  const int64_t total = m.last_seq();
  EXPECT_EQ(total, 1 + kSteps + kSteps / 100 + 2);  // starting, steps, saves, running, finished
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(errors[t], 0) << "reader " << t;
    EXPECT_GT(seen[t], 0) << "reader " << t;
    EXPECT_LE(seen[t], total) << "reader " << t;
    // Without truncation a reader saw every event.
    if (truncations[t] == 0) {
      EXPECT_EQ(seen[t], total) << "reader " << t;
    }
  }
  const Json last = Json::parse(m.EventsJson(total - 1));
  ASSERT_EQ(last["events"].size(), 1u);
  EXPECT_EQ(last["events"][0]["state"], "finished");
}

}  // namespace
}  // namespace arle::train
