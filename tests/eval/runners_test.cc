// The evaluation runners with hand-computed expectations: acc against acc_norm (divided by the
// choice's length in characters) on a scripted backend, the harness's standard error, GSM8K's
// strict and flexible scores, MATH's boxed answers and HumanEval's pass@k on scripted
// completions; and the engine backend on a tiny random Qwen3: each log-likelihood is the sum of
// the model's own log-softmax over the continuation (a plain forward of the whole text), shared
// contexts come from the prefix cache, and perplexity follows llama-perplexity's formula.
#include "arle/eval/runners.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>

#include "arle/agent/sandbox.h"
#include "arle/eval/engine_backend.h"
#include "arle/eval/perplexity.h"
#include "arle/runtime/sampler.h"
#include "arle/tokenizer/tokenizer.h"
#include "tests/models/sequence_runner.h"
#include "tests/models/tiny_model.h"

namespace arle::eval {
namespace {

// Answers from tables: log-likelihoods by continuation, completions by prompt.
class ScriptedBackend final : public Backend {
 public:
  std::map<std::string, double> ll;
  std::map<std::string, std::vector<std::string>> completions;
  core::StatusOr<std::vector<LoglikelihoodResult>> Loglikelihood(
      std::span<const LoglikelihoodRequest> requests, const ProgressFn&) override {
    std::vector<LoglikelihoodResult> out;
    for (const LoglikelihoodRequest& r : requests) out.push_back({ll.at(r.continuation), false, 1});
    return out;
  }
  core::StatusOr<std::vector<GenerationResult>> Generate(
      std::span<const GenerationRequest> requests, const ProgressFn&) override {
    std::vector<GenerationResult> out;
    for (const GenerationRequest& g : requests) {
      GenerationResult r;
      r.texts = completions.at(g.prompt);
      r.texts.resize(static_cast<size_t>(g.n));
      out.push_back(r);
    }
    return out;
  }
  std::string Describe() const override { return "scripted"; }
};

McDoc Doc(std::vector<std::string> choices, int gold) {
  McDoc d;
  for (const std::string& c : choices) d.requests.push_back({"Q:", " " + c});
  d.choices = std::move(choices);
  d.gold = gold;
  return d;
}

TEST(RunMultipleChoice, AccAndAccNormPickDifferentChoices) {
  ScriptedBackend b;
  // Doc 1: "a" -2.0 (1 character) vs "bbbb" -3.0 (4): acc picks "a"; acc_norm -2 < -0.75 picks
  //   "bbbb".
  // Doc 2: "ü" -1.0 (1 character, 2 bytes) vs "xy" -1.5: acc picks "ü"; per character -1 < -0.75
  //   picks "xy" (per byte it would be -0.5 > -0.75: "ü").
  // Doc 3: "éé" -1.1 (2 characters, 4 bytes) vs "zzz" -1.5: acc picks "éé"; per character
  //   -0.55 < -0.5 picks "zzz" (per byte -0.275 would keep "éé").
  b.ll = {{" a", -2.0},  {" bbbb", -3.0}, {" ü", -1.0},
          {" xy", -1.5}, {" éé", -1.1},   {" zzz", -1.5}};
  const std::vector<McDoc> docs = {Doc({"a", "bbbb"}, 1), Doc({"ü", "xy"}, 0),
                                   Doc({"éé", "zzz"}, 1)};
  auto r = RunMultipleChoice(b, "hellaswag", docs, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const int want_acc[] = {0, 0, 0}, want_norm[] = {1, 1, 1};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r->docs[i].predicted, want_acc[i]) << i;
    EXPECT_EQ(r->docs[i].predicted_norm, want_norm[i]) << i;
  }
  // acc {0, 1, 0}, acc_norm {1, 0, 1}; the harness's stderr is the sample standard deviation
  // over sqrt(n): sqrt((1/9 + 4/9 + 1/9) / 2) / sqrt(3) = 1/3 for both.
  EXPECT_DOUBLE_EQ(r->acc.mean, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(r->acc_norm.mean, 2.0 / 3.0);
  EXPECT_NEAR(r->acc.stderr_, 1.0 / 3.0, 1e-15);
  EXPECT_NEAR(r->acc_norm.stderr_, 1.0 / 3.0, 1e-15);
  EXPECT_TRUE(r->has_acc_norm);
  // Ties go to the first choice (numpy's argmax).
  b.ll = {{" a", -1.0}, {" b", -1.0}};
  r = RunMultipleChoice(b, "winogrande", {Doc({"a", "b"}, 1)}, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->docs[0].predicted, 0);
  EXPECT_FALSE(r->has_acc_norm);
  // A document without choices is an error, not a crash.
  McDoc empty;
  empty.id = "empty";
  EXPECT_FALSE(RunMultipleChoice(b, "hellaswag", {empty}, nullptr).ok());
}

TEST(RunGenerative, Gsm8kStrictAndFlexibleScores) {
  ScriptedBackend b;
  GenDoc d;
  d.prompt = "Question: 2+2?\nAnswer:";
  d.reference = "2 plus 2 is 4.\n#### 4";
  GenDoc e = d;
  e.prompt = "Question: 10*100?\nAnswer:";
  e.reference = "#### 1,000";
  b.completions = {{d.prompt, {" 2+2 makes 4.\n#### 4"}},   // strict and flexible right
                   {e.prompt, {" It is $1,000 in all."}}};  // no "####": flexible only
  auto r = RunGenerative(b, "gsm8k", {d, e}, GenOptions{}, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->metrics.size(), 2u);
  EXPECT_EQ(r->metrics[0].first, "exact_match,strict-match");
  EXPECT_DOUBLE_EQ(r->metrics[0].second.mean, 0.5);
  EXPECT_EQ(r->metrics[1].first, "exact_match,flexible-extract");
  EXPECT_DOUBLE_EQ(r->metrics[1].second.mean, 1.0);
  EXPECT_EQ(r->docs[1].samples[0].extracted, "[invalid]");
  EXPECT_EQ(r->docs[1].samples[0].extracted_flexible, "$1,000");
}

TEST(RunGenerative, MathBoxedAnswers) {
  ScriptedBackend b;
  GenDoc d;
  d.prompt = "Problem: 1/2?\nAnswer:";
  d.reference = "\\frac{1}{2}";
  b.completions = {{d.prompt, {" The answer is $\\boxed{\\frac12}$."}}};
  auto r = RunGenerative(b, "math", {d}, GenOptions{}, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->metrics[0].first, "exact_match");
  EXPECT_DOUBLE_EQ(r->metrics[0].second.mean, 1.0);
}

TEST(RunGenerative, HumanEvalPassAtK) {
  // Three samples of one problem, two of which pass: pass@1 = 2/3, pass@2 = 1 - C(1,2)/C(3,2)
  // = 1, pass@3 = 1; a second problem with none passing: 0.
  ScriptedBackend b;
  GenDoc d;
  d.humaneval_prompt = d.prompt = "def add(a, b):\n";
  d.test = "def check(f):\n    assert f(2, 3) == 5\n";
  d.entry_point = "add";
  GenDoc e = d;
  e.prompt = e.humaneval_prompt = "def add(a, b):\n    \"\"\"adds\"\"\"\n";
  b.completions = {{d.prompt, {"    return a + b\n", "    return a - b\n", "    return b + a\n"}},
                   {e.prompt, {"    return 0\n", "    while True: pass\n", "    return a * b\n"}}};
  GenOptions o;
  o.n = 3;
  o.pass_at = {1, 2, 3};
  o.code.timeout_seconds = 1;
  o.code.unsafe_no_sandbox = !agent::ProbeSandbox().available;
  auto r = RunGenerative(b, "humaneval", {d, e}, o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->metrics.size(), 3u);
  EXPECT_EQ(r->metrics[0].first, "pass@1");
  EXPECT_NEAR(r->metrics[0].second.mean, (2.0 / 3.0 + 0.0) / 2, 1e-12);
  EXPECT_NEAR(r->metrics[1].second.mean, 0.5, 1e-12);
  EXPECT_NEAR(r->metrics[2].second.mean, 0.5, 1e-12);
  EXPECT_EQ(r->docs[1].samples[1].outcome, "timed out");
  // pass@k needs k <= n.
  o.pass_at = {4};
  EXPECT_FALSE(RunGenerative(b, "humaneval", {d}, o, nullptr).ok());
}

// The engine backend on a tiny random Qwen3 (Qwen3's tokenizer).
class EngineBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = models::testing::TinyConfig(models::llama::Architecture::kQwen3);
    config_.n_vocab = Tok().vocab_size();  // the text is encoded with the real Qwen3 tokenizer
    weights_ = models::testing::TinyModelWeights(config_, core::DType::kF32, 5);
    models::LoadOptions opts;
    opts.n_threads = 2;
    auto m = models::testing::BuildTiny(config_, weights_, opts);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    model_ = std::move(*m);
    runtime::EngineOptions o;
    o.kv_cache_bytes = 16 << 20;
    o.max_batch_tokens = 64;  // several steps per request: chunked prompts
    o.max_seqs = 8;
    auto e = runtime::Engine::Create(*model_, Tok(), o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  // The Qwen3 tokenizer with Qwen3's special tokens (BOS <|endoftext|>, not added; EOS
  // <|im_end|>), as a Qwen3 checkpoint's tokenizer_config.json sets them.
  static const tokenizer::Tokenizer& Tok() {
    static const std::unique_ptr<tokenizer::Tokenizer> tok = [] {
      auto t = tokenizer::Tokenizer::FromFile(std::string(ARLE_SOURCE_DIR) +
                                              "/assets/tokenizers/qwen3/tokenizer.json.gz");
      EXPECT_TRUE(t.ok()) << t.status().ToString();
      (*t)->SetSpecialTokens((*t)->TokenToId("<|endoftext|>"), (*t)->TokenToId("<|im_end|>"),
                             false);
      return std::move(*t);
    }();
    return *tok;
  }

  // log P(tokens[from:] | tokens[:from]) from one plain forward of the whole sequence.
  double Reference(const std::vector<int32_t>& tokens, int64_t from) {
    models::testing::SequenceRunner runner(*model_, 1024);
    std::vector<float> logits;
    EXPECT_TRUE(runner.Forward(tokens, &logits, /*all_logits=*/true).ok());
    const size_t v = static_cast<size_t>(config_.n_vocab);
    double sum = 0;
    for (size_t p = static_cast<size_t>(from); p < tokens.size(); ++p) {
      sum += runtime::RawTokenLogprobs(std::span<const float>(logits.data() + (p - 1) * v, v),
                                       tokens[p], 0)
                 .logprob;
    }
    return sum;
  }

  models::llama::LlamaConfig config_;
  std::shared_ptr<models::testing::TinyWeights> weights_;
  std::unique_ptr<models::Model> model_;
  std::unique_ptr<runtime::Engine> engine_;
};

TEST_F(EngineBackendTest, LoglikelihoodsAreTheModelsOwnAndShareTheirContext) {
  EngineBackend backend(*engine_, nullptr, runtime::StopParams{}, EngineBackendOptions{});
  const std::string context =
      "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat "
      "by the door of the old house.";
  std::vector<LoglikelihoodRequest> requests = {{context, " It was a sunny day."},
                                                {context, " Nobody saw it."},
                                                {context, " The end"},
                                                {"Another question with its own context:", " yes"}};
  auto r = backend.Loglikelihood(requests, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  tokenizer::EncodeOptions no_bos;
  no_bos.add_special_tokens = false;
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::vector<int32_t> ctx = Tok().Encode(requests[i].context, no_bos);
    const std::vector<int32_t> whole =
        Tok().Encode(requests[i].context + requests[i].continuation, no_bos);
    EXPECT_EQ((*r)[i].n_tokens, static_cast<int64_t>(whole.size() - ctx.size())) << i;
    // The same float terms summed in the same order: bit-identical.
    EXPECT_EQ((*r)[i].logprob, Reference(whole, static_cast<int64_t>(ctx.size()))) << i;
  }
  // The three choices of the first question: the second and third found its context's full
  // blocks in the prefix cache.
  const runtime::EngineStats s = engine_->Stats();
  const int64_t ctx_tokens = static_cast<int64_t>(Tok().Encode(context, no_bos).size());
  EXPECT_GE(s.prefix_hit_tokens, 2 * (ctx_tokens / 16) * 16);
}

TEST_F(EngineBackendTest, TrailingSpacesMoveToTheContinuationAndAnEmptyContextIsBos) {
  EngineBackend backend(*engine_, nullptr, runtime::StopParams{}, EngineBackendOptions{});
  auto a = backend.Loglikelihood(std::vector<LoglikelihoodRequest>{{"Hello ", "world"}}, nullptr);
  auto b = backend.Loglikelihood(std::vector<LoglikelihoodRequest>{{"Hello", " world"}}, nullptr);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*a)[0].logprob, (*b)[0].logprob);
  auto c = backend.Loglikelihood(std::vector<LoglikelihoodRequest>{{"", "Hello world"}}, nullptr);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  tokenizer::EncodeOptions no_bos;
  no_bos.add_special_tokens = false;
  std::vector<int32_t> tokens = {*Tok().bos_id()};
  for (int32_t t : Tok().Encode("Hello world", no_bos)) tokens.push_back(t);
  EXPECT_EQ((*c)[0].logprob, Reference(tokens, 1));
}

TEST_F(EngineBackendTest, PerplexityFollowsLlamaPerplexity) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "Sentence number " + std::to_string(i) + " of the text. ";
  text += "It spells <|endoftext|>, which llama-perplexity reads as plain text. ";
  PerplexityOptions o;
  o.ctx = 32;
  std::vector<double> running;
  auto r = RunPerplexity(*engine_, text, o, [&](int64_t, double ppl) { running.push_back(ppl); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The reference: llama-perplexity's loop over chunks, one plain forward each.
  tokenizer::EncodeOptions plain;  // llama-perplexity: add_special true, parse_special false
  plain.parse_special = false;
  const std::vector<int32_t> tokens = Tok().Encode(text, plain);
  EXPECT_NE(tokens, Tok().Encode(text));  // the special token's text is not the special token
  const int64_t n_chunks = static_cast<int64_t>(tokens.size()) / 32;
  ASSERT_EQ(r->chunks, n_chunks);
  NllStats want;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * 32, tokens.begin() + (c + 1) * 32);
    if (Tok().adds_bos()) chunk[0] = *Tok().bos_id();
    models::testing::SequenceRunner runner(*model_, 64);
    std::vector<float> logits;
    ASSERT_TRUE(runner.Forward(chunk, &logits, true).ok());
    const size_t v = static_cast<size_t>(config_.n_vocab);
    for (int64_t p = 16; p < 31; ++p) {
      const std::span<const float> row(logits.data() + p * v, v);
      want.Add(-static_cast<double>(runtime::RawTokenLogprobs(row, chunk[p + 1], 0).logprob));
    }
  }
  EXPECT_EQ(r->stats.count(), n_chunks * 15);
  EXPECT_EQ(r->stats.mean(), want.mean());
  EXPECT_EQ(r->stats.perplexity_stderr(), want.perplexity_stderr());
  ASSERT_EQ(running.size(), static_cast<size_t>(n_chunks));
  EXPECT_EQ(running.back(), want.perplexity());
  // Too large a context is refused before anything runs.
  o.ctx = 100000;
  EXPECT_FALSE(RunPerplexity(*engine_, text, o, nullptr).ok());
}

}  // namespace
}  // namespace arle::eval
