// Tokenizer throughput (bytes/s) with the real Qwen3 tokenizer on English, French and Chinese
// corpus slices (bench/data/), plus tokenizer.json load time. Cold: a fresh word cache per pass.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>

#include "arle/io/compressed.h"
#include "arle/tokenizer/incremental_decoder.h"
#include "arle/tokenizer/tokenizer.h"

namespace {

using arle::tokenizer::Tokenizer;

const std::string kQwen3 = std::string(ARLE_SOURCE_DIR) + "/assets/tokenizers/qwen3/tokenizer.json.gz";

std::string ReadCorpus(const char* name) {
  auto text = arle::io::ReadMaybeGzipFile(std::string(ARLE_SOURCE_DIR) + "/bench/data/" + name);
  if (!text.ok()) {
    std::fprintf(stderr, "%s\n", text.status().ToString().c_str());
    std::abort();
  }
  return *text;
}

const Tokenizer& Qwen3() {
  static std::unique_ptr<Tokenizer> tok = [] {
    auto t = Tokenizer::FromFile(kQwen3);
    if (!t.ok()) {
      std::fprintf(stderr, "%s\n", t.status().ToString().c_str());
      std::abort();
    }
    return std::move(*t);
  }();
  return *tok;
}

// Warm: the shared tokenizer's pre-token cache is filled after the first iteration.
void BM_EncodeWarm(benchmark::State& state, const char* corpus) {
  const std::string text = ReadCorpus(corpus);
  const Tokenizer& tok = Qwen3();
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok.Encode(text);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["bytes_per_token"] = static_cast<double>(text.size()) / n_tokens;
}

// Cold: every pass starts from an empty cache (a fresh tokenizer, loaded outside the timing).
void BM_EncodeCold(benchmark::State& state, const char* corpus) {
  const std::string text = ReadCorpus(corpus);
  const std::string json = *arle::io::ReadMaybeGzipFile(kQwen3);
  for (auto _ : state) {
    state.PauseTiming();
    auto tok = Tokenizer::FromJson(json, "qwen3");
    state.ResumeTiming();
    auto ids = (*tok)->Encode(text);
    benchmark::DoNotOptimize(ids.data());
    state.PauseTiming();
    tok->reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_DecodeIncremental(benchmark::State& state, const char* corpus) {
  const std::string text = ReadCorpus(corpus);
  const Tokenizer& tok = Qwen3();
  const auto ids = tok.Encode(text);
  for (auto _ : state) {
    arle::tokenizer::IncrementalDecoder dec(tok);
    size_t n = 0;
    for (int32_t id : ids) n += dec.Push(id).size();
    n += dec.Flush().size();
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_LoadQwen3TokenizerJson(benchmark::State& state) {
  const std::string json = *arle::io::ReadMaybeGzipFile(kQwen3);
  for (auto _ : state) {
    auto tok = Tokenizer::FromJson(json, "qwen3");
    benchmark::DoNotOptimize(tok.ok());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}

BENCHMARK_CAPTURE(BM_EncodeWarm, en_shakespeare, "tinyshakespeare_150k.txt.gz")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeWarm, fr_verne, "verne_fr_150k.txt.gz")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeWarm, zh_three_kingdoms, "three_kingdoms_zh_150k.txt.gz")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeCold, en_shakespeare, "tinyshakespeare_150k.txt.gz")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeCold, fr_verne, "verne_fr_150k.txt.gz")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeCold, zh_three_kingdoms, "three_kingdoms_zh_150k.txt.gz")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DecodeIncremental, zh_three_kingdoms, "three_kingdoms_zh_150k.txt.gz")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadQwen3TokenizerJson)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
