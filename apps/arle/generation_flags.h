// The generation flags `arle run` and `arle repl` share (tokens, sampling, stop), and the request
// fields they set.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arle/models/model.h"
#include "arle/runtime/sampler.h"
#include "arle/runtime/stop.h"
#include "arle/tokenizer/tokenizer.h"

namespace CLI {
class App;
}

namespace arle::app {

struct GenerationFlags {
  int64_t max_tokens = 256;
  float temperature = 0.8f;
  float top_p = 0.95f;
  int top_k = 40;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::optional<uint64_t> seed{};
  bool ignore_eos = false;
  std::vector<std::string> stop{};
};

// -n/--max-tokens, --temperature, --top-p, --top-k, --min-p, the three penalties, --seed,
// --stop, --ignore-eos; the defaults shown are the struct's values at registration.
void AddGenerationFlags(CLI::App* cmd, GenerationFlags& flags);

// Sets the sampling parameters, the stop parameters (from the model's defaults) and the stop
// strings of a request from the flags.
void ApplyGenerationFlags(const GenerationFlags& flags, const models::Model& model,
                          const tokenizer::Tokenizer& tokenizer, runtime::SamplingParams* sampling,
                          runtime::StopParams* stop, std::vector<std::string>* stop_strings);

}  // namespace arle::app
