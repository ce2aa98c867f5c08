// RunTraining: load, batch, step, evaluate, save, resume. The model math is LlamaTrainer's; this
// file only orders the work and keeps the state a resume needs (weights, optimizer, data cursor).
#include "arle/train/run.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "arle/core/file_util.h"
#include "arle/io/model_location.h"
#include "arle/io/safetensors.h"
#include "arle/kernels/cross_entropy.h"
#include "arle/models/llama/llama_model.h"
#include "arle/tokenizer/chat_prompt.h"
#include "arle/tokenizer/tokenizer.h"
#include "arle/train/checkpoint.h"
#include "arle/train/optimizer.h"
#include "arle/train/peft.h"
#include "arle/train/pretrain_data.h"
#include "arle/train/run_state.h"
#include "arle/train/sft_data.h"

namespace arle::train {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

core::Status CheckOptions(const TrainOptions& o) {
  auto bad = [](const std::string& flag, const std::string& why) {
    return core::InvalidArgumentError(flag + " " + why);
  };
  if (o.model_dir.empty()) return bad("--model", "is required");
  if (o.data.empty()) return bad("--data", "is required");
  if (o.out.empty()) return bad("--out", "is required");
  if (o.steps < 1) return bad("--steps", "must be >= 1");
  if (o.batch < 1 || o.batch > 65536) return bad("--batch", "must be in [1, 65536]");
  if (o.seq < 1 || o.seq > (1 << 20)) return bad("--seq", "must be in [1, 1048576]");
  if (o.accum < 1 || o.accum > 65536) return bad("--accum", "must be in [1, 65536]");
  if (!(o.clip >= 0) || !std::isfinite(o.clip)) return bad("--clip", "must be >= 0");
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) {
    return bad("--weight-decay", "must be >= 0");
  }
  if (o.optimizer != "adamw" && o.optimizer != "sgd") return bad("--optimizer", "is adamw or sgd");
  if (o.eval_every < 0 || o.save_every < 0) return bad("--eval-every/--save-every", "must be >= 0");
  if (o.task == TrainOptions::Task::kPretrain && o.lora.rank > 0) {
    return bad("--lora-rank", "is for `arle train sft`");
  }
  if (o.lora.rank < 0) return bad("--lora-rank", "must be >= 0");
  if (o.lora.rank > 0 && !(o.lora.alpha > 0)) return bad("--lora-alpha", "must be > 0");
  ScheduleOptions s = o.schedule;
  s.total_steps = o.steps;
  return ValidateSchedule(s);
}

// The UTF-8 bytes the targets of a corpus batch decode to (n_seq rows of seq tokens; targets are
// the inputs shifted by one): each row is decoded in order from its first input, and the bytes
// every target adds are summed (special tokens, such as the EOS between documents, add none).
// The denominator of bits per byte.
int64_t TargetBytes(const tokenizer::Tokenizer& tok, const std::vector<int32_t>& inputs,
                    const std::vector<int32_t>& targets, int64_t n_seq, int64_t seq) {
  int64_t total = 0;
  std::string bytes;
  for (int64_t r = 0; r < n_seq; ++r) {
    tokenizer::Tokenizer::DecodeState state;
    bytes.clear();
    tok.DecodeAppend(inputs[r * seq], /*skip_special=*/true, &state, &bytes);
    const size_t context = bytes.size();
    for (int64_t i = 0; i < seq; ++i) {
      tok.DecodeAppend(targets[r * seq + i], /*skip_special=*/true, &state, &bytes);
    }
    total += static_cast<int64_t>(bytes.size() - context);
  }
  return total;
}

// Fills the report's means from summed nats over `tokens` tokens decoding to `bytes` bytes.
void FillEvalReport(double nats, int64_t tokens, int64_t bytes, EvalReport* r) {
  r->tokens = tokens;
  r->loss = tokens > 0 ? nats / static_cast<double>(tokens) : 0.0;
  r->ppl = std::exp(r->loss);
  r->bytes = bytes;
  r->bits_per_byte = bytes > 0 ? nats / (std::log(2.0) * static_cast<double>(bytes)) : 0.0;
}

// One batch of an evaluation: n_seq rows of `seq` inputs and targets.
using EvalBatchFn = std::function<void(int64_t i, std::vector<int32_t>* inputs,
                                       std::vector<int32_t>* targets, int64_t* n_seq)>;

// The evaluation `arle train eval` and a run's periodic evaluation both compute: the summed
// cross-entropy of batches 0 .. n-1 under the trainer's current weights, as the mean loss and
// perplexity (and, given a tokenizer, bits per byte of the targets' text; `*bytes` < 0 asks for
// it to be counted, >= 0 reuses a count of the same batches).
core::StatusOr<EvalReport> EvaluateBatches(LlamaTrainer& trainer, int64_t n, int64_t seq,
                                           const EvalBatchFn& batch,
                                           const tokenizer::Tokenizer* tok, int64_t* bytes) {
  LossSum total;
  int64_t counted = 0;
  std::vector<int32_t> inputs, targets;
  for (int64_t i = 0; i < n; ++i) {
    int64_t n_seq = 0;
    batch(i, &inputs, &targets, &n_seq);
    ARLE_ASSIGN_OR_RETURN(
        LossSum l,
        trainer.Loss({.inputs = inputs, .targets = targets, .n_seq = n_seq, .seq_len = seq}));
    total.sum += l.sum;
    total.n_tokens += l.n_tokens;
    if (tok != nullptr && *bytes < 0) counted += TargetBytes(*tok, inputs, targets, n_seq, seq);
  }
  if (tok != nullptr && *bytes < 0) *bytes = counted;
  EvalReport r;
  FillEvalReport(total.sum, total.n_tokens, tok != nullptr ? *bytes : 0, &r);
  return r;
}

// The trainer's micro-batches: pretraining windows or SFT examples, in a resumable order.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual void Next(std::vector<int32_t>* inputs, std::vector<int32_t>* targets) = 0;
  virtual std::string CursorJson() const = 0;
  virtual core::Status RestoreCursor(const std::string& json) = 0;
  // Evaluation micro-batches (possibly none).
  virtual int64_t n_eval_batches() const = 0;
  virtual void EvalBatch(int64_t i, std::vector<int32_t>* inputs, std::vector<int32_t>* targets,
                         int64_t* n_seq) const = 0;
};

class PretrainSource final : public BatchSource {
 public:
  explicit PretrainSource(PretrainData data) : data_(std::move(data)) {}
  void Next(std::vector<int32_t>* inputs, std::vector<int32_t>* targets) override {
    TokenBatch b = data_.Next();
    *inputs = std::move(b.inputs);
    *targets = std::move(b.targets);
  }
  std::string CursorJson() const override { return data_.CursorJson(); }
  core::Status RestoreCursor(const std::string& json) override { return data_.RestoreCursor(json); }
  int64_t n_eval_batches() const override {
    const int64_t b = data_.options().batch_size;
    return (data_.n_eval_windows() + b - 1) / b;
  }
  void EvalBatch(int64_t i, std::vector<int32_t>* inputs, std::vector<int32_t>* targets,
                 int64_t* n_seq) const override {
    const int64_t b = data_.options().batch_size;
    const int64_t first = i * b, count = std::min(b, data_.n_eval_windows() - first);
    TokenBatch t = data_.EvalBatch(first, count);
    *inputs = std::move(t.inputs);
    *targets = std::move(t.targets);
    *n_seq = count;
  }

 private:
  PretrainData data_;
};

// SFT examples in epochs: example (k*accum + m)*B + b of the run, through a per-epoch order
// (file order, or a permutation seeded by (seed, epoch)).
class SftSource final : public BatchSource {
 public:
  SftSource(SftDataset data, int64_t batch, int64_t seq, bool shuffle, uint64_t seed,
            int32_t pad_id)
      : data_(std::move(data)),
        batch_(batch),
        seq_(seq),
        shuffle_(shuffle),
        seed_(seed),
        pad_id_(pad_id) {}
  void Next(std::vector<int32_t>* inputs, std::vector<int32_t>* targets) override {
    std::vector<const SftExample*> rows;
    const int64_t n = static_cast<int64_t>(data_.examples.size());
    for (int64_t b = 0; b < batch_; ++b) {
      const int64_t epoch = served_ / n, position = served_ % n;
      const int64_t index = shuffle_ ? ShuffledOrder(n, seed_, epoch)[position] : position;
      rows.push_back(&data_.examples[index]);
      ++served_;
    }
    SftBatch sb = MakeSftBatch(rows, seq_, pad_id_);
    *inputs = std::move(sb.ids);
    *targets = std::move(sb.labels);
  }
  std::string CursorJson() const override {
    return Json{{"served", served_}, {"n_examples", data_.examples.size()}}.dump();
  }
  core::Status RestoreCursor(const std::string& json) override {
    const Json j = Json::parse(json, nullptr, false);
    if (!j.is_object() || !j.contains("served") || !j["served"].is_number_integer() ||
        j.value("n_examples", size_t{0}) != data_.examples.size()) {
      return core::InvalidArgumentError("the checkpoint's SFT cursor does not match this data");
    }
    served_ = j["served"].get<int64_t>();
    return core::OkStatus();
  }
  int64_t n_eval_batches() const override { return 0; }
  void EvalBatch(int64_t, std::vector<int32_t>*, std::vector<int32_t>*, int64_t*) const override {}

 private:
  SftDataset data_;
  int64_t batch_, seq_;
  bool shuffle_;
  uint64_t seed_;
  int32_t pad_id_;
  int64_t served_ = 0;
};

// Appends one JSON line to the metrics file.
core::Status AppendMetrics(const std::string& path, const Json& j) {
  return AppendMetricsLine(path, j.dump());
}

core::StatusOr<std::unique_ptr<BatchSource>> MakeSource(const TrainOptions& o,
                                                        const std::string& model_dir,
                                                        const tokenizer::Tokenizer& tok) {
  if (o.task == TrainOptions::Task::kPretrain) {
    PretrainDataOptions d;
    d.seq = o.seq;
    d.batch_size = o.batch;
    d.grad_accum = o.accum;
    d.shuffle = o.shuffle;
    d.seed = o.seed;
    d.eval_frac = o.eval_frac;
    ARLE_ASSIGN_OR_RETURN(PretrainData data, PretrainData::Load(o.data, tok, d));
    return std::unique_ptr<BatchSource>(new PretrainSource(std::move(data)));
  }
  io::ModelLocation location{io::ModelLocation::Kind::kHfDirectory, model_dir, model_dir};
  ARLE_ASSIGN_OR_RETURN(tokenizer::ChatSetup setup,
                        tokenizer::LoadChatSetup(location, tok, /*override_file=*/""));
  SftOptions so;
  so.seq = o.seq;
  ARLE_ASSIGN_OR_RETURN(SftDataset data, LoadSftData(o.data, setup, tok, so));
  const int32_t pad = tok.eos_id().value_or(0);
  return std::unique_ptr<BatchSource>(
      new SftSource(std::move(data), o.batch, o.seq, o.shuffle, o.seed, pad));
}

}  // namespace

core::StatusOr<std::string> RunTraining(const TrainOptions& options, const kernels::Context& ctx,
                                        const TrainCallbacks& cb) {
  TrainOptions o = options;
  ARLE_RETURN_IF_ERROR(CheckOptions(o));
  o.schedule.total_steps = o.steps;

  // A resume reads the run's own latest checkpoint: its trainer_state names the source model.
  std::optional<LoadedCheckpoint> resumed;
  Json state_in;
  std::string model_dir = o.model_dir;
  if (o.resume) {
    auto ck = LoadCheckpoint(o.out);
    if (!ck.ok()) return ck.status();
    resumed = std::move(ck).value();
    state_in = Json::parse(resumed->trainer_state_json, nullptr, false);
    if (!state_in.is_object())
      return core::DataLossError(resumed->dir + ": bad trainer_state.json");
    // Full fine-tuning continues from the saved weights (f32, exact); LoRA from the base model
    // plus the saved adapter.
    if (o.lora.rank == 0) model_dir = resumed->dir;
  }
  ARLE_ASSIGN_OR_RETURN(TrainableModel loaded, LoadTrainableModel(model_dir));
  ARLE_ASSIGN_OR_RETURN(std::unique_ptr<BatchSource> source,
                        MakeSource(o, o.model_dir, *loaded.tokenizer));
  ARLE_ASSIGN_OR_RETURN(
      std::unique_ptr<LlamaTrainer> trainer,
      LlamaTrainer::Create(loaded.config, std::move(loaded.weights), ctx, o.lora));

  ARLE_ASSIGN_OR_RETURN(
      std::unique_ptr<Optimizer> optimizer,
      MakeOptimizer({.kind = o.optimizer, .weight_decay = o.weight_decay, .momentum = o.momentum},
                    *trainer, ctx));

  int64_t step = 0;
  if (resumed) {
    ARLE_RETURN_IF_ERROR(RestoreRun(*resumed, *trainer, *optimizer));
    step = resumed->step;
    if (!state_in.contains("data_cursor")) return core::DataLossError("no data cursor");
    ARLE_RETURN_IF_ERROR(source->RestoreCursor(state_in["data_cursor"].get<std::string>()));
  }

  auto save = [&](int64_t at_step) -> core::StatusOr<std::string> {
    Json state = {{"model", o.model_dir},
                  {"task", o.task == TrainOptions::Task::kPretrain ? "pretrain" : "sft"},
                  {"data", o.data},
                  {"data_cursor", source->CursorJson()},
                  {"lr_schedule", ScheduleKindName(o.schedule.kind)},
                  {"lr", o.schedule.lr},
                  {"steps", o.steps},
                  {"seed", o.seed}};
    ARLE_ASSIGN_OR_RETURN(std::string dir,
                          SaveRun(o.out, at_step, *trainer, *optimizer, o.model_dir, o.save_dtype,
                                  state.dump(), o.keep_last));
    if (cb.on_save) cb.on_save(dir);
    return dir;
  };

  int64_t eval_bytes = -1;  // the evaluation text's bytes: the same windows every time
  auto evaluate = [&](int64_t at_step) -> core::Status {
    const int64_t n = source->n_eval_batches();
    if (n == 0) return core::OkStatus();
    ARLE_ASSIGN_OR_RETURN(EvalReport r,
                          EvaluateBatches(
                              *trainer, n, o.seq,
                              [&](int64_t i, std::vector<int32_t>* in, std::vector<int32_t>* tg,
                                  int64_t* n_seq) { source->EvalBatch(i, in, tg, n_seq); },
                              loaded.tokenizer.get(), &eval_bytes));
    r.step = at_step;
    ARLE_RETURN_IF_ERROR(AppendMetrics(o.metrics_jsonl, Json{{"step", r.step},
                                                             {"eval_loss", r.loss},
                                                             {"eval_ppl", r.ppl},
                                                             {"eval_tokens", r.tokens},
                                                             {"eval_bytes", r.bytes},
                                                             {"eval_bpb", r.bits_per_byte}}));
    if (cb.on_eval) cb.on_eval(r);
    return core::OkStatus();
  };

  const Clock::time_point start = Clock::now();
  std::string last_dir;
  std::vector<std::vector<int32_t>> micro_inputs(o.accum), micro_targets(o.accum);
  while (step < o.steps) {
    const Clock::time_point step_start = Clock::now();
    // The step's micro-batches first: the mean over all their predicted tokens needs the count.
    int64_t n_counted = 0;
    for (int64_t m = 0; m < o.accum; ++m) {
      source->Next(&micro_inputs[m], &micro_targets[m]);
      for (int32_t t : micro_targets[m]) n_counted += t != kernels::kIgnoreIndex;
    }
    trainer->ZeroGrads();
    LossSum total;
    if (n_counted > 0) {
      for (int64_t m = 0; m < o.accum; ++m) {
        ARLE_ASSIGN_OR_RETURN(LossSum l,
                              trainer->ForwardBackward({.inputs = micro_inputs[m],
                                                        .targets = micro_targets[m],
                                                        .n_seq = o.batch,
                                                        .seq_len = o.seq},
                                                       1.0 / static_cast<double>(n_counted)));
        total.sum += l.sum;
        total.n_tokens += l.n_tokens;
      }
    }
    const double grad_norm = ClipGradNorm(optimizer->params(), o.clip);
    const double lr = LearningRate(o.schedule, step);
    optimizer->Step(lr);
    trainer->MergeLora();
    ++step;
    const Clock::time_point now = Clock::now();
    StepReport r;
    r.step = step;
    r.loss = total.n_tokens > 0 ? total.sum / static_cast<double>(total.n_tokens) : 0.0;
    r.lr = lr;
    r.grad_norm = grad_norm;
    r.tokens = total.n_tokens;
    const double step_s = std::chrono::duration<double>(now - step_start).count();
    r.tokens_per_s = step_s > 0 ? static_cast<double>(o.batch * o.seq * o.accum) / step_s : 0;
    r.elapsed_s = std::chrono::duration<double>(now - start).count();
    ARLE_RETURN_IF_ERROR(AppendMetrics(o.metrics_jsonl, Json{{"step", r.step},
                                                             {"loss", r.loss},
                                                             {"lr", r.lr},
                                                             {"grad_norm", r.grad_norm},
                                                             {"tokens", r.tokens},
                                                             {"tokens_per_s", r.tokens_per_s},
                                                             {"elapsed_s", r.elapsed_s}}));
    if (cb.on_step) cb.on_step(r);
    if (o.eval_every > 0 && step % o.eval_every == 0) ARLE_RETURN_IF_ERROR(evaluate(step));
    const bool stop = cb.stop != nullptr && cb.stop->load();
    bool save_now = o.save_every > 0 && step % o.save_every == 0;
    if (cb.save_now != nullptr && cb.save_now->load()) {
      save_now = true;
      const_cast<std::atomic<bool>*>(cb.save_now)->store(false);
    }
    if (save_now || stop || step == o.steps) {
      ARLE_ASSIGN_OR_RETURN(last_dir, save(step));
    }
    if (stop) return last_dir;
  }
  if (o.eval_every == 0 || o.steps % o.eval_every != 0) ARLE_RETURN_IF_ERROR(evaluate(step));
  return last_dir;
}

core::StatusOr<std::string> DescribeSft(const TrainOptions& o, int64_t max_records) {
  ARLE_ASSIGN_OR_RETURN(auto tok, tokenizer::LoadTokenizerForModelDir(o.model_dir));
  io::ModelLocation location{io::ModelLocation::Kind::kHfDirectory, o.model_dir, o.model_dir};
  ARLE_ASSIGN_OR_RETURN(tokenizer::ChatSetup setup,
                        tokenizer::LoadChatSetup(location, *tok, /*override_file=*/""));
  SftOptions so;
  so.seq = o.seq;
  ARLE_ASSIGN_OR_RETURN(SftDataset data, LoadSftData(o.data, setup, *tok, so));
  int64_t n_tokens = 0, n_labels = 0;
  for (const SftExample& e : data.examples) {
    n_tokens += static_cast<int64_t>(e.ids.size());
    n_labels += e.n_labels;
  }
  const int64_t per_step = o.batch * o.accum;
  Json plan = {
      {"examples", data.examples.size()},
      {"tokens", n_tokens},
      {"labels", n_labels},
      {"truncated", data.n_truncated},
      {"dropped", data.n_dropped},
      {"seq", o.seq},
      {"batch", o.batch},
      {"accum", o.accum},
      {"steps", o.steps},
      {"steps_per_epoch", (static_cast<int64_t>(data.examples.size()) + per_step - 1) / per_step}};
  Json out = {{"plan", plan}, {"records", SftDryRunJson(data.examples, *tok, max_records)}};
  return out.dump(1);
}

core::StatusOr<EvalReport> EvaluateModel(const std::string& model_dir, const std::string& data,
                                         int64_t seq, int64_t batch, bool chat,
                                         const kernels::Context& ctx) {
  if (seq < 1 || batch < 1) return core::InvalidArgumentError("--seq and --batch must be >= 1");
  ARLE_ASSIGN_OR_RETURN(TrainableModel loaded, LoadTrainableModel(model_dir));
  ARLE_ASSIGN_OR_RETURN(std::unique_ptr<LlamaTrainer> trainer,
                        LlamaTrainer::Create(loaded.config, std::move(loaded.weights), ctx));
  if (chat) {
    TrainOptions o;
    o.task = TrainOptions::Task::kSft;
    o.data = data;
    o.seq = seq;
    o.batch = 1;
    o.shuffle = false;
    ARLE_ASSIGN_OR_RETURN(auto source, MakeSource(o, model_dir, *loaded.tokenizer));
    // One pass over the examples, one at a time (no padding is counted: labels are ignored there).
    const std::string cursor = source->CursorJson();
    const int64_t n = Json::parse(cursor)["n_examples"].get<int64_t>();
    // Chat examples are not cut from one text: no bits per byte.
    return EvaluateBatches(
        *trainer, n, seq,
        [&](int64_t, std::vector<int32_t>* in, std::vector<int32_t>* tg, int64_t* n_seq) {
          source->Next(in, tg);
          *n_seq = 1;
        },
        nullptr, nullptr);
  }
  ARLE_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, TokenizeCorpus(data, *loaded.tokenizer));
  const int64_t n_windows = (static_cast<int64_t>(tokens.size()) - 1) / seq;
  if (n_windows < 1) {
    return core::InvalidArgumentError(
        data + " has fewer than --seq + 1 = " + std::to_string(seq + 1) + " tokens");
  }
  int64_t bytes = -1;
  return EvaluateBatches(
      *trainer, (n_windows + batch - 1) / batch, seq,
      [&](int64_t b, std::vector<int32_t>* in, std::vector<int32_t>* tg, int64_t* n_seq) {
        const int64_t w0 = b * batch, rows = std::min(batch, n_windows - w0);
        in->clear();
        tg->clear();
        for (int64_t r = 0; r < rows; ++r) {
          const int32_t* win = tokens.data() + (w0 + r) * seq;
          in->insert(in->end(), win, win + seq);
          tg->insert(tg->end(), win + 1, win + seq + 1);
        }
        *n_seq = rows;
      },
      loaded.tokenizer.get(), &bytes);
}

}  // namespace arle::train
