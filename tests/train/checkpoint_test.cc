// Tests for train/checkpoint.h: every part round-trips; the step directory is a model the repo's
// loader serves with bit-identical logits; `latest` only moves to complete steps, under injected
// failures, injected crashes, SIGKILL at random moments and a real full disk (a tiny tmpfs);
// damaged checkpoints give DataLoss naming the file; retention and re-saving a step.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/file_util.h"
#include "arle/core/half.h"
#include "arle/runtime/model_loader.h"
#include "arle/train/checkpoint.h"
#include "tests/common/temp_dir.h"
#include "tests/models/sequence_runner.h"
#include "tests/train/tiny_model.h"

namespace arle::train {
namespace {

namespace fs = std::filesystem;
using testing::TinyModel;

std::string Slurp(const std::string& path) {
  auto text = core::ReadFile(path);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : std::string();
}

bool SameBytes(const core::Tensor& a, const core::Tensor& b) {
  return a.dtype() == b.dtype() && a.nbytes() == b.nbytes() &&
         std::vector<int64_t>(a.shape().begin(), a.shape().end()) ==
             std::vector<int64_t>(b.shape().begin(), b.shape().end()) &&
         std::memcmp(a.data(), b.data(), static_cast<size_t>(a.nbytes())) == 0;
}

std::vector<std::string> TmpEntries(const std::string& out) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(".tmp-")) names.push_back(name);
  }
  return names;
}

std::string LatestTarget(const std::string& out) {
  std::error_code ec;
  const fs::path target = fs::read_symlink(fs::path(out) / "latest", ec);
  return ec ? std::string() : target.string();
}

// An optimizer state a trainer would keep: two moments per model tensor (values from the step,
// so a checkpoint's content says which step wrote it), plus `extra_floats` more of bulk.
struct Optimizer {
  std::vector<core::Buffer> buffers;
  std::vector<io::NamedTensor> tensors;

  Optimizer(const TinyModel& model, int64_t step, int64_t extra_floats = 0) {
    for (const io::NamedTensor& t : model.tensors) {
      for (const char* moment : {"exp_avg", "exp_avg_sq"}) {
        buffers.emplace_back(static_cast<size_t>(t.tensor.nbytes()));
        float* p = buffers.back().as<float>();
        for (int64_t i = 0; i < t.tensor.numel(); ++i) p[i] = static_cast<float>(step) + i * 1e-3f;
        tensors.push_back({std::string(moment) + "." + t.name,
                           core::Tensor(buffers.back().data(), core::DType::kF32,
                                        t.tensor.shape())});
      }
    }
    if (extra_floats > 0) {
      buffers.emplace_back(static_cast<size_t>(extra_floats) * 4);
      float* p = buffers.back().as<float>();
      for (int64_t i = 0; i < extra_floats; ++i) p[i] = static_cast<float>(step);
      tensors.push_back(
          {"bulk", core::Tensor(buffers.back().data(), core::DType::kF32, {extra_floats})});
    }
  }
};

class CheckpointTest : public ::testing::Test {
 protected:
  void TearDown() override { SetCheckpointFaultHookForTesting(nullptr); }

  test::TempDir tmp_;
  TinyModel model_{tmp_.Path("src"), /*seed=*/7};
};

TEST_F(CheckpointTest, EveryPartRoundTrips) {
  Optimizer opt(model_, 7);
  CheckpointContents c = model_.Contents();
  c.optimizer = opt.tensors;
  c.optimizer_scalars = {{"t", 7}, {"lr", 0.1 + 0.2}, {"beta2", 0.999}, {"eps", 1e-8}};
  c.trainer_state_json =
      R"({"rng": [1, 2, 18446744073709551615], "data_cursor": {"shard": 2, "offset": 12345},
          "schedule": {"kind": "cosine", "warmup": 10}})";
  std::ofstream(tmp_.Path("README.md")) << "# a test run\n";
  c.extra_files = {tmp_.Path("README.md")};
  const std::string out = tmp_.Path("run");
  auto dir = SaveCheckpoint(out, 7, c);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(*dir, out + "/step_000007");
  EXPECT_EQ(LatestTarget(out), "step_000007");
  EXPECT_TRUE(TmpEntries(out).empty());
  EXPECT_FALSE(fs::exists(*dir + "/adapter"));

  // The source model's files, byte for byte.
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_EQ(Slurp(*dir + "/" + name), Slurp(model_.dir + "/" + name)) << name;
  }
  EXPECT_EQ(Slurp(*dir + "/README.md"), "# a test run\n");
  EXPECT_EQ(nlohmann::json::parse(Slurp(*dir + "/config.json")),
            nlohmann::json::parse(Slurp(model_.dir + "/config.json")));

  for (const std::string& path : {out, out + "/latest", *dir}) {
    auto ckpt = LoadCheckpoint(path);
    ASSERT_TRUE(ckpt.ok()) << path << ": " << ckpt.status().ToString();
    EXPECT_EQ(ckpt->step, 7);
    EXPECT_EQ(ckpt->dir, fs::canonical(*dir).string());
    ASSERT_EQ(ckpt->model->entries().size(), model_.tensors.size());
    for (const io::NamedTensor& t : model_.tensors) {
      auto got = ckpt->model->GetTensor(t.name);
      ASSERT_TRUE(got.ok()) << t.name;
      EXPECT_TRUE(SameBytes(*got, t.tensor)) << t.name;
    }
    ASSERT_EQ(ckpt->optimizer->entries().size(), opt.tensors.size());
    for (const io::NamedTensor& t : opt.tensors) {
      auto got = ckpt->optimizer->GetTensor(t.name);
      ASSERT_TRUE(got.ok()) << t.name;
      EXPECT_TRUE(SameBytes(*got, t.tensor)) << t.name;
    }
    EXPECT_EQ(ckpt->optimizer_scalars, c.optimizer_scalars);  // exact doubles
    const auto state = nlohmann::json::parse(ckpt->trainer_state_json);
    EXPECT_EQ(state["step"], 7);
    EXPECT_EQ(state["rng"][2].get<uint64_t>(), 18446744073709551615ull);
    EXPECT_EQ(state["data_cursor"]["offset"], 12345);
    EXPECT_EQ(state["schedule"]["kind"], "cosine");
    EXPECT_EQ(ckpt->config_json, Slurp(*dir + "/config.json"));
    EXPECT_FALSE(ckpt->adapter.has_value());
  }
}

TEST_F(CheckpointTest, Bf16ModelAndDerivedGenerationConfig) {
  // A source directory without generation_config.json: one is made from config.json's ids.
  const std::string src2 = tmp_.Path("src2");
  fs::create_directory(src2);
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(model_.dir + "/" + name, src2 + "/" + name);
  }
  CheckpointContents c = model_.Contents();
  c.tokenizer_dir = src2;
  c.model_dtype = core::DType::kBF16;
  auto dir = SaveCheckpoint(tmp_.Path("run"), 3, c);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  const auto gen = nlohmann::json::parse(Slurp(*dir + "/generation_config.json"));
  EXPECT_EQ(gen["bos_token_id"], 1);
  EXPECT_EQ(gen["eos_token_id"], 2);
  EXPECT_EQ(nlohmann::json::parse(Slurp(*dir + "/config.json"))["torch_dtype"], "bfloat16");
  auto ckpt = LoadCheckpoint(*dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  for (const io::NamedTensor& t : model_.tensors) {
    auto got = ckpt->model->GetTensor(t.name);
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->dtype(), core::DType::kBF16) << t.name;
    const uint16_t* bits = got->data_as<uint16_t>();
    const float* want = t.tensor.data_as<float>();
    for (int64_t i = 0; i < t.tensor.numel(); ++i) {
      ASSERT_EQ(bits[i], core::F32ToBF16(want[i])) << t.name << "[" << i << "]";
    }
  }
}

// The step directory is a model directory: the repo's loader (the one serve uses) loads it, and
// its logits equal the source model's bit for bit (f32 weights saved unchanged).
TEST_F(CheckpointTest, StepDirectoryServesWithIdenticalLogits) {
  auto dir = SaveCheckpoint(tmp_.Path("run"), 1, model_.Contents());
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  models::LoadOptions options;
  options.n_threads = 1;
  auto source = runtime::LoadModel(model_.dir, options, nullptr);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  for (const std::string& path : {*dir, tmp_.Path("run") + "/latest"}) {
    auto saved = runtime::LoadModel(path, options, nullptr);
    ASSERT_TRUE(saved.ok()) << path << ": " << saved.status().ToString();
    const std::string text = "Once upon a time, there was a little girl named Lily.";
    const std::vector<int32_t> ids = saved->tokenizer->Encode(text);
    ASSERT_EQ(ids, source->tokenizer->Encode(text));
    ASSERT_GT(ids.size(), 8u);
    models::testing::SequenceRunner a(*source->model, 64), b(*saved->model, 64);
    std::vector<float> la, lb;
    ASSERT_TRUE(a.Forward(ids, &la, /*all_logits=*/true).ok());
    ASSERT_TRUE(b.Forward(ids, &lb, /*all_logits=*/true).ok());
    ASSERT_EQ(la.size(), ids.size() * 512);
    EXPECT_EQ(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)), 0);
  }
}

// Every point a save can fail at: the error comes back, `latest` still names the old step, which
// loads, and nothing temporary is left.
TEST_F(CheckpointTest, FailureAnywhereKeepsLatestOnTheOldStep) {
  const std::string out = tmp_.Path("run");
  Optimizer opt1(model_, 1), opt2(model_, 2);
  CheckpointContents c = model_.Contents();
  c.optimizer = opt1.tensors;
  ASSERT_TRUE(SaveCheckpoint(out, 1, c).ok());
  c.optimizer = opt2.tensors;
  const std::vector<std::string> points = {
      "write:model.safetensors", "write:optimizer.safetensors", "write:config.json",
      "write:tokenizer.json",    "write:trainer_state.json",    "write:arle_checkpoint.json",
      "sync:step",               "rename:step",                 "sync:out",
      "link:latest",             "rename:latest"};
  std::vector<std::string> seen;
  SetCheckpointFaultHookForTesting([&](std::string_view p) {
    seen.emplace_back(p);
    return core::OkStatus();
  });
  ASSERT_TRUE(SaveCheckpoint(tmp_.Path("probe"), 1, c).ok());
  for (const std::string& p : points) {
    EXPECT_NE(std::find(seen.begin(), seen.end(), p), seen.end()) << "never reached " << p;
  }
  for (const std::string& point : points) {
    SCOPED_TRACE(point);
    SetCheckpointFaultHookForTesting([&](std::string_view p) {
      return p == point ? core::IoError("injected: No space left on device") : core::OkStatus();
    });
    auto saved = SaveCheckpoint(out, 2, c);
    SetCheckpointFaultHookForTesting(nullptr);
    ASSERT_FALSE(saved.ok());
    EXPECT_NE(saved.status().message().find("No space left"), std::string::npos);
    EXPECT_EQ(LatestTarget(out), "step_000001");
    EXPECT_TRUE(TmpEntries(out).empty()) << TmpEntries(out).front();
    auto ckpt = LoadCheckpoint(out);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
    EXPECT_EQ(ckpt->step, 1);
    EXPECT_TRUE(SameBytes(*ckpt->optimizer->GetTensor(opt1.tensors[0].name), opt1.tensors[0].tensor));
  }
  // A failure after the rename leaves a complete step_000002 that `latest` does not name; the next
  // save of step 2 replaces it.
  ASSERT_TRUE(SaveCheckpoint(out, 2, c).ok());
  EXPECT_EQ(LatestTarget(out), "step_000002");
}

// A crash (the process exits on the spot) at every point: `latest` names a complete step, and
// the next save removes the leftovers.
TEST_F(CheckpointTest, CrashAnywhereLeavesACompleteLatest) {
  const std::string out = tmp_.Path("run");
  CheckpointContents c = model_.Contents();
  ASSERT_TRUE(SaveCheckpoint(out, 1, c).ok());
  int64_t step = 2;
  for (const char* point : {"write:model.safetensors", "write:tokenizer.json",
                            "write:arle_checkpoint.json", "sync:step", "rename:step", "sync:out",
                            "link:latest", "rename:latest"}) {
    SCOPED_TRACE(point);
    const std::string before = LatestTarget(out);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      SetCheckpointFaultHookForTesting([point](std::string_view p) {
        if (p == point) ::_exit(0);
        return core::OkStatus();
      });
      (void)SaveCheckpoint(out, step, c);
      ::_exit(1);  // the crash point was never reached
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(LatestTarget(out), before);
    auto ckpt = LoadCheckpoint(out);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
    EXPECT_EQ(StepDirName(ckpt->step), before);
    const bool left_something =
        !TmpEntries(out).empty() || fs::exists(out + "/" + StepDirName(step));
    EXPECT_TRUE(left_something);
    ++step;
    ASSERT_TRUE(SaveCheckpoint(out, step, c).ok());
    EXPECT_TRUE(TmpEntries(out).empty());
    EXPECT_EQ(LatestTarget(out), StepDirName(step));
    ++step;
  }
}

// SIGKILL at random moments while a child saves checkpoints in a loop: whenever it dies, `latest`
// is absent (nothing finished yet) or a complete checkpoint whose contents are its step's.
TEST_F(CheckpointTest, KillDuringSavesNeverExposesAPartialCheckpoint) {
  const std::string out = tmp_.Path("run");
  std::mt19937 rng(20240614);
  int64_t next_step = 1, loaded_some = 0;
  for (int round = 0; round < 8; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int64_t s = next_step;; ++s) {
        Optimizer opt(model_, s, /*extra_floats=*/int64_t{2} << 20);  // 8 MB of bulk
        CheckpointContents c = model_.Contents();
        c.optimizer = opt.tensors;
        c.trainer_state_json = R"({"cursor": )" + std::to_string(s * 10) + "}";
        if (!SaveCheckpoint(out, s, c, {.keep_last = 3}).ok()) ::_exit(3);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::uniform_int_distribution<int>(round == 0 ? 1 : 20, 400)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the saver stopped by itself: " << status;
    const std::string latest = LatestTarget(out);
    if (latest.empty()) continue;  // killed before the first save finished
    auto ckpt = LoadCheckpoint(out);
    ASSERT_TRUE(ckpt.ok()) << "round " << round << ": " << ckpt.status().ToString();
    EXPECT_EQ(StepDirName(ckpt->step), latest);
    Optimizer want(model_, ckpt->step, int64_t{2} << 20);
    for (const io::NamedTensor& t : want.tensors) {
      auto got = ckpt->optimizer->GetTensor(t.name);
      ASSERT_TRUE(got.ok()) << t.name;
      ASSERT_TRUE(SameBytes(*got, t.tensor)) << t.name << " at step " << ckpt->step;
    }
    EXPECT_EQ(nlohmann::json::parse(ckpt->trainer_state_json)["cursor"], ckpt->step * 10);
    next_step = ckpt->step + 1;
    ++loaded_some;
  }
  EXPECT_GT(loaded_some, 0) << "no save ever completed; the kill test tested nothing";
  // The next save cleans up whatever the kills left.
  ASSERT_TRUE(SaveCheckpoint(out, next_step + 100, model_.Contents()).ok());
  EXPECT_TRUE(TmpEntries(out).empty());
}

TEST_F(CheckpointTest, DamagedCheckpointsGiveDataLossNamingTheFile) {
  const std::string out = tmp_.Path("run");
  auto dir = SaveCheckpoint(out, 5, model_.Contents());
  ASSERT_TRUE(dir.ok());
  // Each case damages a fresh copy of the step directory.
  struct Case {
    const char* what;
    std::function<void(const std::string&)> damage;
    core::StatusCode code;
    const char* message;  // a part of the message
  };
  const auto truncate = [](const std::string& path, int64_t cut) {
    fs::resize_file(path, fs::file_size(path) - static_cast<uintmax_t>(cut));
  };
  const auto overwrite = [](const std::string& path, const std::string& bytes) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  const std::vector<Case> cases = {
      {"truncated model", [&](const std::string& d) { truncate(d + "/model.safetensors", 100); },
       core::StatusCode::kDataLoss, "model.safetensors"},
      {"missing optimizer", [](const std::string& d) { fs::remove(d + "/optimizer.safetensors"); },
       core::StatusCode::kDataLoss, "optimizer.safetensors: missing"},
      {"bad trainer state JSON", [&](const std::string& d) { overwrite(d + "/trainer_state.json", "]"); },
       core::StatusCode::kDataLoss, "trainer_state.json: not a valid JSON"},
      {"bad config JSON", [&](const std::string& d) { overwrite(d + "/config.json", "{{"); },
       core::StatusCode::kDataLoss, "config.json: not a valid JSON"},
      {"corrupt safetensors header",
       [&](const std::string& d) { overwrite(d + "/model.safetensors", std::string(8, '\xff')); },
       core::StatusCode::kDataLoss, "model.safetensors"},
      {"no manifest", [](const std::string& d) { fs::remove(d + "/arle_checkpoint.json"); },
       core::StatusCode::kDataLoss, "not a complete checkpoint"},
      {"truncated tokenizer", [&](const std::string& d) { truncate(d + "/tokenizer.json", 1); },
       core::StatusCode::kDataLoss, "tokenizer.json"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    const std::string copy = tmp_.Path("damaged");
    fs::remove_all(copy);
    fs::copy(*dir, copy, fs::copy_options::recursive);
    ASSERT_TRUE(LoadCheckpoint(copy).ok());
    k.damage(copy);
    auto ckpt = LoadCheckpoint(copy);
    ASSERT_FALSE(ckpt.ok());
    EXPECT_EQ(ckpt.status().code(), k.code) << ckpt.status().ToString();
    EXPECT_NE(ckpt.status().message().find(k.message), std::string::npos)
        << ckpt.status().ToString();
  }
  // A run directory with no `latest` yet, one whose `latest` dangles, and no directory at all.
  const std::string empty = tmp_.Path("empty");
  fs::create_directory(empty);
  EXPECT_EQ(LoadCheckpoint(empty).status().code(), core::StatusCode::kNotFound);
  fs::create_directory_symlink("step_000099", empty + "/latest");
  EXPECT_EQ(LoadCheckpoint(empty).status().code(), core::StatusCode::kDataLoss);
  EXPECT_EQ(LoadCheckpoint(tmp_.Path("nowhere")).status().code(), core::StatusCode::kNotFound);
}

TEST_F(CheckpointTest, RetentionAndResavingASteps) {
  const std::string out = tmp_.Path("run");
  for (int64_t s = 1; s <= 4; ++s) {
    ASSERT_TRUE(SaveCheckpoint(out, s * 10, model_.Contents(), {.keep_last = 2}).ok());
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(out)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step_000030", "step_000040"}));
  // Saving the step `latest` names again is refused; a step past `latest` (a resumed run
  // re-saving it) is replaced.
  auto again = SaveCheckpoint(out, 40, model_.Contents());
  EXPECT_EQ(again.status().code(), core::StatusCode::kFailedPrecondition);
  fs::create_directory_symlink("step_000030", out + "/latest.new");
  fs::rename(out + "/latest.new", out + "/latest");
  CheckpointContents c = model_.Contents();
  c.trainer_state_json = R"({"resumed": true})";
  ASSERT_TRUE(SaveCheckpoint(out, 40, c).ok());
  auto ckpt = LoadCheckpoint(out);
  ASSERT_TRUE(ckpt.ok());
  EXPECT_EQ(nlohmann::json::parse(ckpt->trainer_state_json)["resumed"], true);
  // Steps past 999999 get more digits and still sort by number.
  EXPECT_EQ(StepDirName(1234567), "step_1234567");
}

TEST_F(CheckpointTest, BadContentsAndUnwritableOutputAreClearErrors) {
  CheckpointContents c = model_.Contents();
  c.trainer_state_json = "[1, 2]";
  EXPECT_EQ(SaveCheckpoint(tmp_.Path("a"), 1, c).status().code(),
            core::StatusCode::kInvalidArgument);
  c = model_.Contents();
  c.tokenizer_dir = tmp_.Path("nowhere");
  auto no_tok = SaveCheckpoint(tmp_.Path("a"), 1, c);
  EXPECT_EQ(no_tok.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(no_tok.status().message().find("tokenizer.json"), std::string::npos);
  c = model_.Contents();
  c.config_json = "not json";
  EXPECT_EQ(SaveCheckpoint(tmp_.Path("a"), 1, c).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(SaveCheckpoint(tmp_.Path("a"), -1, model_.Contents()).status().code(),
            core::StatusCode::kInvalidArgument);
  // An output "directory" below a regular file (unwritable whoever runs the test, root included).
  std::ofstream(tmp_.Path("file")) << "x";
  auto bad = SaveCheckpoint(tmp_.Path("file") + "/run", 1, model_.Contents());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kIoError) << bad.status().ToString();
}

// A real full disk: a 1 MiB tmpfs in a private mount namespace (a forked child; needs root or
// unprivileged user namespaces, else skipped). The first save fits, the second does not: the
// error says so, and `latest` still names the first, which loads.
TEST_F(CheckpointTest, FullDiskOnATinyTmpfs) {
  const std::string mnt = tmp_.Path("tmpfs");
  fs::create_directory(mnt);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    const auto report = [&](int code, const std::string& msg) {
      (void)!::write(pipe_fds[1], msg.data(), msg.size());
      ::_exit(code);
    };
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    if (::unshare(CLONE_NEWNS) != 0) {
      if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) report(77, "no mount namespace");
      std::ofstream("/proc/self/setgroups") << "deny";
      std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
      std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
    }
    // Private, so the mount never propagates to the parent's namespace.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("none", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) {
      report(77, std::string("cannot mount tmpfs: ") + std::strerror(errno));
    }
    const std::string out = mnt + "/run";
    CheckpointContents c = model_.Contents();
    auto first = SaveCheckpoint(out, 1, c);  // ~0.4 MB of model and tokenizer
    if (!first.ok()) report(1, "first save: " + first.status().ToString());
    Optimizer opt(model_, 2, /*extra_floats=*/int64_t{1} << 18);  // 1 MB more: does not fit
    c.optimizer = opt.tensors;
    auto second = SaveCheckpoint(out, 2, c);
    if (second.ok()) report(1, "second save fit in the tmpfs");
    if (second.status().message().find("No space left on device") == std::string::npos) {
      report(1, "unexpected error: " + second.status().ToString());
    }
    if (LatestTarget(out) != "step_000001") report(1, "latest moved: " + LatestTarget(out));
    auto ckpt = LoadCheckpoint(out);
    if (!ckpt.ok() || ckpt->step != 1) report(1, "latest does not load");
    if (!TmpEntries(out).empty()) report(1, "left " + TmpEntries(out).front());
    report(0, second.status().ToString());
  }
  ::close(pipe_fds[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0) msg.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << msg;
  EXPECT_EQ(WEXITSTATUS(status), 0) << msg;
  std::printf("full-disk error: %s\n", msg.c_str());
}

}  // namespace
}  // namespace arle::train
