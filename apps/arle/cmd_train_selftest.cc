// `arle train test`: a self-check of the whole training path in seconds, on a tiny Qwen3 made on
// the fly: data convert -> pretrain from random init -> LoRA SFT -> eval -> generate from the
// checkpoint. Prints a JSON report; exit 0 only when every stage passed.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "apps/arle/commands.h"
#include "apps/arle/embedded_assets.h"
#include "arle/convert/model_init.h"
#include "arle/core/file_util.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/context.h"
#include "arle/runtime/engine.h"
#include "arle/runtime/model_loader.h"
#include "arle/runtime/request_stream.h"
#include "arle/train/data_convert.h"
#include "arle/train/run.h"

namespace arle::app {
namespace {

using Json = nlohmann::ordered_json;

// The pretraining corpus: short, repetitive text a tiny model learns within a few steps.
constexpr const char* kCorpus =
    "The cat sat on the mat. The dog sat on the log. The bird sat on the branch and sang.\n"
    "One, two, three, four, five. Six, seven, eight, nine, ten.\n"
    "Once upon a time there was a little fox who lived in a small house by the river.\n";

// Alpaca records (instruction, input, output) that `arle data convert` turns into chat JSONL.
constexpr const char* kAlpaca[] = {
    R"({"instruction": "Say hello.", "output": "Hello!"})",
    R"({"instruction": "Count to three.", "output": "One, two, three."})",
    R"({"instruction": "Where did the cat sit?", "output": "On the mat."})",
    R"({"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"})",
    R"({"instruction": "Name a color.", "output": "Blue."})",
    R"({"instruction": "Where did the dog sit?", "output": "On the log."})",
};

struct SelfTestFlags {
  std::string dir;  // empty: a temporary directory, removed afterwards
  bool keep = false;
  int threads = 0;
  int64_t steps = 12;
};

// One stage: runs `body`, which fills `details` and returns an error or OK; a stage fails on
// an error status or when it sets details["ok"] = false (a check that did not hold).
struct Stages {
  Json report = Json::array();
  bool all_ok = true;
  bool Run(const std::string& name, const std::function<core::Status(Json&)>& body) {
    if (!all_ok) return false;  // later stages need the earlier ones' outputs
    const auto start = std::chrono::steady_clock::now();
    Json details = Json::object();
    const core::Status s = body(details);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bool ok = s.ok();
    if (details.contains("ok")) {
      ok = ok && details["ok"].get<bool>();
      details.erase("ok");
    }
    Json stage = {{"name", name}, {"ok", ok}, {"seconds", std::round(seconds * 1000) / 1000}};
    if (!s.ok()) stage["error"] = s.ToString();
    stage.update(details);
    report.push_back(stage);
    all_ok = all_ok && ok;
    return ok;
  }
};

train::TrainOptions BaseOptions(const std::string& model, const std::string& data,
                                const std::string& out) {
  train::TrainOptions o;
  o.model_dir = model;
  o.data = data;
  o.out = out;
  o.shuffle = false;
  o.clip = 1.0;
  return o;
}

// Generates `n` greedy tokens from `model_dir` through the engine (the path `arle run` takes).
core::Status Generate(const std::string& model_dir, int threads, int n, Json& details) {
  models::LoadOptions load;
  load.n_threads = threads;
  ARLE_ASSIGN_OR_RETURN(runtime::LoadedModel loaded,
                        runtime::LoadModel(model_dir, load, /*builtin=*/nullptr));
  runtime::EngineOptions eo;
  eo.max_seqs = 1;
  eo.max_context_tokens = 256;
  ARLE_ASSIGN_OR_RETURN(auto engine,
                        runtime::Engine::Create(*loaded.model, *loaded.tokenizer, eo));
  runtime::EngineRequest req;
  req.prompt_tokens = loaded.tokenizer->Encode("The cat sat on");
  if (req.prompt_tokens.empty()) return core::InternalError("the prompt encoded to no tokens");
  req.sampling.temperature = 0;
  req.stop = runtime::DefaultStopParams(*loaded.model, *loaded.tokenizer);
  req.stop.ignore_eos = true;
  req.stop.max_tokens = n;
  ARLE_ASSIGN_OR_RETURN(auto stream, runtime::RequestStream::Submit(*engine, std::move(req)));
  std::string text;
  int64_t generated = 0;
  while (auto ev = stream->Next()) {
    text += ev->text;
    generated += static_cast<int64_t>(ev->tokens.size());
  }
  details["tokens"] = generated;
  details["text"] = text;
  details["ok"] = generated == n;
  return core::OkStatus();
}

int RunSelfTest(const SelfTestFlags& f) {
  std::string dir = f.dir;
  bool remove = false;
  if (dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "arle-train-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      return ReportError(core::IoError("cannot create a temporary directory in " +
                                       std::filesystem::temp_directory_path().string()));
    }
    dir = tmpl;
    remove = !f.keep;
  } else if (core::Status s = core::MakeDirs(dir); !s.ok()) {
    return ReportError(s);
  }
  if (f.steps < 2) return ReportError(core::InvalidArgumentError("--steps must be >= 2"));
  auto backend = kernels::BackendFromEnvironment();
  if (!backend.ok()) return ReportError(backend.status());
  core::ThreadPool pool(f.threads);
  const kernels::Context ctx = kernels::Context::Cpu(*backend, pool);
  const std::string init = dir + "/init", corpus = dir + "/corpus.txt";
  const std::string alpaca = dir + "/alpaca.jsonl", chat = dir + "/chat.jsonl";
  const std::string pre_out = dir + "/pretrain", sft_out = dir + "/sft";
  Stages st;
  double first_pretrain_loss = 0;

  st.Run("data", [&](Json& d) {
    std::string corpus_text, records;
    for (int i = 0; i < 12; ++i) corpus_text += kCorpus;
    for (const char* r : kAlpaca) records += std::string(r) + "\n";
    ARLE_RETURN_IF_ERROR(core::WriteFileAtomic(corpus, corpus_text));
    ARLE_RETURN_IF_ERROR(core::WriteFileAtomic(alpaca, records));
    ARLE_ASSIGN_OR_RETURN(train::ConvertResult converted,
                          train::ConvertDatasetFile(alpaca, train::DatasetFormat::kAlpaca));
    ARLE_RETURN_IF_ERROR(core::WriteFileAtomic(chat, converted.jsonl));
    d["records"] = converted.n_converted;
    d["ok"] = converted.n_converted == static_cast<int64_t>(std::size(kAlpaca)) &&
              converted.skipped.empty();
    return core::OkStatus();
  });
  st.Run("init", [&](Json& d) {
    convert::ModelInitOptions mi;
    mi.arch = "qwen3";
    mi.preset = "tiny";
    mi.dtype = "f32";
    mi.out = init;
    ARLE_ASSIGN_OR_RETURN(std::string written, convert::InitModel(mi, EmbeddedTokenizerAssets()));
    d["model"] = written;
    return core::OkStatus();
  });
  st.Run("pretrain", [&](Json& d) {
    train::TrainOptions o = BaseOptions(init, corpus, pre_out);
    o.task = train::TrainOptions::Task::kPretrain;
    o.steps = f.steps;
    o.batch = 2;
    o.seq = 32;
    o.schedule.lr = 3e-3;
    o.eval_frac = 0.1;
    std::vector<double> losses;
    train::TrainCallbacks cb;
    cb.on_step = [&](const train::StepReport& r) { losses.push_back(r.loss); };
    ARLE_ASSIGN_OR_RETURN(std::string latest, train::RunTraining(o, ctx, cb));
    bool finite = true;
    for (double l : losses) finite = finite && std::isfinite(l);
    first_pretrain_loss = losses.front();
    d["first_loss"] = losses.front();
    d["last_loss"] = losses.back();
    d["checkpoint"] = latest;
    // From random init on repetitive text the loss falls by far more than 10% in a few steps.
    d["ok"] = finite && static_cast<int64_t>(losses.size()) == f.steps &&
              losses.back() < 0.9 * losses.front();
    return core::OkStatus();
  });
  st.Run("sft_lora", [&](Json& d) {
    train::TrainOptions o = BaseOptions(pre_out + "/latest", chat, sft_out);
    o.task = train::TrainOptions::Task::kSft;
    o.steps = f.steps;
    o.batch = 2;
    o.seq = 64;
    o.schedule.lr = 1e-2;
    o.lora.rank = 4;
    o.lora.alpha = 8;
    o.lora.targets = {"q_proj", "v_proj", "down_proj"};
    std::vector<double> losses;
    train::TrainCallbacks cb;
    cb.on_step = [&](const train::StepReport& r) { losses.push_back(r.loss); };
    ARLE_ASSIGN_OR_RETURN(std::string latest, train::RunTraining(o, ctx, cb));
    bool finite = true;
    for (double l : losses) finite = finite && std::isfinite(l);
    const bool adapter = core::FileExists(latest + "/adapter/adapter_model.safetensors");
    d["first_loss"] = losses.front();
    d["last_loss"] = losses.back();
    d["adapter"] = adapter;
    d["ok"] = finite && adapter;
    return core::OkStatus();
  });
  st.Run("eval", [&](Json& d) {
    ARLE_ASSIGN_OR_RETURN(train::EvalReport text, train::EvaluateModel(pre_out + "/latest", corpus,
                                                                       32, 4, false, ctx));
    ARLE_ASSIGN_OR_RETURN(train::EvalReport base, train::EvaluateModel(pre_out + "/latest", chat,
                                                                       64, 1, true, ctx));
    ARLE_ASSIGN_OR_RETURN(train::EvalReport tuned, train::EvaluateModel(sft_out + "/latest", chat,
                                                                        64, 1, true, ctx));
    d["pretrained_text_loss"] = text.loss;
    d["chat_loss_before_sft"] = base.loss;
    d["chat_loss_after_sft"] = tuned.loss;
    // The pretrained model beats its own first step on the corpus, and LoRA SFT lowers the loss
    // of the answers it trained on.
    d["ok"] = std::isfinite(text.loss) && text.loss < first_pretrain_loss &&
              std::isfinite(tuned.loss) && tuned.loss < base.loss;
    return core::OkStatus();
  });
  st.Run("generate", [&](Json& d) { return Generate(sft_out + "/latest", f.threads, 8, d); });

  Json out = {{"ok", st.all_ok}, {"dir", remove ? "" : dir}, {"stages", st.report}};
  fmt::print("{}\n", out.dump(1));
  if (remove) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return st.all_ok ? kExitOk : kExitFailure;
}

}  // namespace

void RegisterTrainSelfTest(CLI::App& train, int& exit_code) {
  static SelfTestFlags f;
  CLI::App* t = train.add_subcommand(
      "test", "Self-check: convert, pretrain, LoRA SFT, eval and generate on a tiny model");
  t->add_option("--dir", f.dir, "Work here (kept) instead of a temporary directory");
  t->add_flag("--keep", f.keep, "Keep the temporary directory");
  t->add_option("--steps", f.steps, "Steps of pretraining and of SFT")->capture_default_str();
  t->add_option("-t,--threads", f.threads, "Compute threads");
  t->callback([&exit_code] { exit_code = RunSelfTest(f); });
}

}  // namespace arle::app
