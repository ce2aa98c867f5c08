// Registration and application of the shared generation flags.
#include "apps/arle/generation_flags.h"

#include <CLI/CLI.hpp>

#include "arle/runtime/engine.h"

namespace arle::app {

void AddGenerationFlags(CLI::App* cmd, GenerationFlags& f) {
  cmd->add_option("-n,--max-tokens", f.max_tokens, "Tokens to generate at most (per model call)")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--temperature", f.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", f.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--top-k", f.top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd->add_option("--min-p", f.min_p, "Keep tokens with p >= min_p * p_max")->capture_default_str();
  cmd->add_option("--repetition-penalty", f.repetition_penalty)->capture_default_str();
  cmd->add_option("--presence-penalty", f.presence_penalty)->capture_default_str();
  cmd->add_option("--frequency-penalty", f.frequency_penalty)->capture_default_str();
  cmd->add_option("--seed", f.seed, "Sampling seed (default: random)");
  cmd->add_option("--stop", f.stop, "Stop string (repeatable); it is not printed");
  cmd->add_flag("--ignore-eos", f.ignore_eos, "Generate max-tokens even past EOS");
}

void ApplyGenerationFlags(const GenerationFlags& f, const models::Model& model,
                          const tokenizer::Tokenizer& tokenizer, runtime::SamplingParams* sampling,
                          runtime::StopParams* stop, std::vector<std::string>* stop_strings) {
  sampling->temperature = f.temperature;
  sampling->top_p = f.top_p;
  sampling->top_k = f.top_k;
  sampling->min_p = f.min_p;
  sampling->repetition_penalty = f.repetition_penalty;
  sampling->presence_penalty = f.presence_penalty;
  sampling->frequency_penalty = f.frequency_penalty;
  sampling->seed = f.seed;
  *stop = runtime::DefaultStopParams(model, tokenizer);
  stop->max_tokens = f.max_tokens;
  stop->ignore_eos = f.ignore_eos;
  *stop_strings = f.stop;
}

}  // namespace arle::app
