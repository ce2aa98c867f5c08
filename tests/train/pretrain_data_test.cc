// train/pretrain_data: corpus reading (.txt, .jsonl joined with EOS, errors with FILE:LINE),
// window order (exact rows without shuffle, seeded permutations per epoch), the evaluation tail
// and exact resume from the cursor.
#include "arle/train/pretrain_data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "tests/common/temp_dir.h"
#include "tests/tokenizer/test_util.h"

namespace arle::train {
namespace {

using tokenizer::testing::DataPath;
using tokenizer::testing::Qwen3;

std::vector<int32_t> Iota(int n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

PretrainData Make(int n_tokens, PretrainDataOptions o) {
  auto d = PretrainData::FromTokens(Iota(n_tokens), o);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return std::move(d).value();
}

TEST(PretrainData, JsonlDocumentsEachEndWithEos) {
  auto tokens = TokenizeCorpus(DataPath("train/corpus.jsonl"), Qwen3());
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  const int32_t eos = *Qwen3().eos_id();
  std::vector<int32_t> want;
  for (const char* doc : {"Hello world.", "Second document, with <|im_end|> spelled out.", "Third."}) {
    auto ids = Qwen3().Encode(doc, {.add_special_tokens = true, .parse_special = false});
    want.insert(want.end(), ids.begin(), ids.end());
    want.push_back(eos);
  }
  EXPECT_EQ(*tokens, want);
  // The spelled-out special token stays text: only the three separators are EOS.
  EXPECT_EQ(std::count(tokens->begin(), tokens->end(), eos), 3);
}

TEST(PretrainData, TxtIsOneDocument) {
  auto tokens = TokenizeCorpus(DataPath("train/corpus.txt"), Qwen3());
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  auto want = Qwen3().Encode("One whole text file.\nTwo lines.\n", {.parse_special = false});
  want.push_back(*Qwen3().eos_id());
  EXPECT_EQ(*tokens, want);
}

TEST(PretrainData, CorpusErrorsNameFileAndLine) {
  test::TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    EXPECT_TRUE(core::WriteFileAtomic(dir.File(name), text).ok());
    return dir.File(name);
  };
  struct Case {
    std::string name, text, needle;
    core::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \n", "bad.jsonl:2", core::StatusCode::kDataLoss},
      {"missing.jsonl", "{\"text\": \"ok\"}\n\n{\"body\": \"x\"}\n", "missing.jsonl:3: missing field \"text\"",
       core::StatusCode::kInvalidArgument},
      {"type.jsonl", "{\"text\": 5}\n", "type.jsonl:1: field \"text\" must be a string",
       core::StatusCode::kInvalidArgument},
      {"array.jsonl", "[1]\n", "array.jsonl:1", core::StatusCode::kInvalidArgument},
      {"empty.jsonl", "\n\n", "no text", core::StatusCode::kInvalidArgument},
      {"empty_texts.jsonl", "{\"text\": \"\"}\n", "no text", core::StatusCode::kInvalidArgument},
      {"empty.txt", "", "no text", core::StatusCode::kInvalidArgument},
      {"data.csv", "a,b\n", "unknown corpus format", core::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto r = TokenizeCorpus(write(c.name, c.text), Qwen3());
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().ToString();
  }
  auto missing = TokenizeCorpus(dir.File("nope.jsonl"), Qwen3());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound) << missing.status().ToString();
  // Shorter than one window of seq + 1 tokens.
  auto short_data = PretrainData::Load(DataPath("train/corpus.txt"), Qwen3(), {.seq = 4096});
  ASSERT_FALSE(short_data.ok());
  EXPECT_NE(short_data.status().message().find("corpus.txt"), std::string::npos);
  EXPECT_NE(short_data.status().message().find("fewer than one window"), std::string::npos);
}

TEST(PretrainData, WindowsAndTargets) {
  // 23 tokens, seq 4: windows at 0, 4, 8, 12, 16 (window 5 would need token 24).
  PretrainData d = Make(23, {.seq = 4, .batch_size = 2});
  EXPECT_EQ(d.n_train_windows(), 5);
  TokenBatch b = d.Next();
  EXPECT_EQ(b.windows, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(b.inputs, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(b.targets, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(Make(21, {.seq = 4}).n_train_windows(), 5);  // exactly 5 * 4 + 1 tokens
  EXPECT_EQ(Make(20, {.seq = 4}).n_train_windows(), 4);
}

TEST(PretrainData, NoShuffleRowsFollowTheStepFormula) {
  // Micro-batch m of step k takes windows (k * accum + m) * B + b modulo n_train (7 windows).
  const PretrainDataOptions o{.seq = 2, .batch_size = 3, .grad_accum = 2};
  PretrainData d = Make(15, o);
  ASSERT_EQ(d.n_train_windows(), 7);
  for (int64_t k = 0; k < 4; ++k) {
    for (int64_t m = 0; m < o.grad_accum; ++m) {
      TokenBatch b = d.Next();
      for (int64_t r = 0; r < o.batch_size; ++r) {
        const int64_t row = (k * o.grad_accum + m) * o.batch_size + r;
        EXPECT_EQ(b.windows[r], row % 7) << "k=" << k << " m=" << m << " r=" << r;
        EXPECT_EQ(b.inputs[r * 2], static_cast<int32_t>(2 * (row % 7)));
      }
      EXPECT_EQ(b.epoch, (k * o.grad_accum + m) * o.batch_size / 7);
    }
  }
  EXPECT_EQ(d.epoch(), 24 / 7);
  EXPECT_EQ(d.position(), 24 % 7);
}

TEST(PretrainData, ShuffleIsASeededPermutationPerEpoch) {
  const std::vector<int64_t> e0 = ShuffledOrder(50, 7, 0);
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(50);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(e0, iota);
  EXPECT_EQ(e0, ShuffledOrder(50, 7, 0));  // reproducible from (seed, epoch)
  EXPECT_NE(e0, ShuffledOrder(50, 7, 1));  // a new order each epoch
  EXPECT_NE(e0, ShuffledOrder(50, 8, 0));

  PretrainData d = Make(101, {.seq = 10, .batch_size = 4, .shuffle = true, .seed = 7});
  ASSERT_EQ(d.n_train_windows(), 10);
  std::vector<int64_t> served;
  for (int i = 0; i < 5; ++i) {
    for (int64_t w : d.Next().windows) served.push_back(w);
  }
  const std::vector<int64_t> o0 = ShuffledOrder(10, 7, 0), o1 = ShuffledOrder(10, 7, 1);
  std::vector<int64_t> want(o0);
  want.insert(want.end(), o1.begin(), o1.end());
  EXPECT_EQ(served, want);  // a micro-batch spans the epoch boundary (rows 8..11)
}

TEST(PretrainData, EvalHoldsOutTheTail) {
  // 41 tokens, seq 4: 10 windows; eval_frac 0.25 -> ceil(2.5) = 3 eval windows (7, 8, 9).
  PretrainData d = Make(41, {.seq = 4, .batch_size = 7, .shuffle = true, .seed = 3, .eval_frac = 0.25});
  EXPECT_EQ(d.n_train_windows(), 7);
  EXPECT_EQ(d.n_eval_windows(), 3);
  for (int e = 0; e < 3; ++e) {
    std::vector<int64_t> w = d.Next().windows;
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  }
  TokenBatch eval = d.EvalBatch(0, 3);
  EXPECT_EQ(eval.windows, (std::vector<int64_t>{7, 8, 9}));
  EXPECT_EQ(eval.inputs.front(), 28);
  EXPECT_EQ(eval.targets.back(), 40);  // the last token of the stream
  EXPECT_TRUE(PretrainData::FromTokens(Iota(9), {.seq = 4, .eval_frac = 0.5}).ok());  // 1 train + 1 eval
  EXPECT_FALSE(PretrainData::FromTokens(Iota(9), {.seq = 4, .eval_frac = 0.6}).ok());  // 0 + 2
  EXPECT_FALSE(PretrainData::FromTokens(Iota(9), {.seq = 4, .eval_frac = 1.0}).ok());
}

TEST(PretrainData, CursorResumesExactly) {
  const PretrainDataOptions o{.seq = 3, .batch_size = 5, .shuffle = true, .seed = 11};
  PretrainData a = Make(100, o);
  for (int i = 0; i < 9; ++i) a.Next();
  const std::string cursor = a.CursorJson();
  PretrainData b = Make(100, o);
  ASSERT_TRUE(b.RestoreCursor(cursor).ok());
  for (int i = 0; i < 20; ++i) {
    TokenBatch x = a.Next(), y = b.Next();
    EXPECT_EQ(x.windows, y.windows);
    EXPECT_EQ(x.inputs, y.inputs);
  }
  PretrainData other_seed = Make(100, {.seq = 3, .batch_size = 5, .shuffle = true, .seed = 12});
  EXPECT_FALSE(other_seed.RestoreCursor(cursor).ok());
  PretrainData other_data = Make(90, o);
  EXPECT_FALSE(other_data.RestoreCursor(cursor).ok());
  EXPECT_FALSE(b.RestoreCursor("{\"epoch\": 1").ok());
}

}  // namespace
}  // namespace arle::train
