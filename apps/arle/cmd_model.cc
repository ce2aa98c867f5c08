// `arle model init` and `arle convert llama2c`: creating model directories.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "apps/arle/commands.h"
#include "apps/arle/embedded_assets.h"
#include "arle/convert/model_init.h"
#include "arle/models/llama/llama2c_import.h"

namespace arle::app {

void RegisterModelCommand(CLI::App& app, int& exit_code) {
  CLI::App* model = app.add_subcommand("model", "Create and inspect models");
  model->require_subcommand(1);
  CLI::App* init = model->add_subcommand(
      "init", "Create a random-weight model (Hugging Face directory or GGUF) for tests and benchmarks");
  static convert::ModelInitOptions options;
  init->add_option("--arch", options.arch, "qwen3 | llama")->capture_default_str();
  init->add_option("--preset", options.preset, "tiny | qwen3-0.6b | qwen3-4b")->capture_default_str();
  init->add_option("--config", options.config_overrides,
                   "JSON object of config.json fields overriding the preset");
  init->add_option("--dtype", options.dtype, "f32 | bf16 | f16 (default: the preset's)");
  init->add_option("--seed", options.seed, "Random seed")->capture_default_str();
  init->add_option("--out", options.out, "Output directory (or .gguf file)")->required();
  init->add_option("--format", options.format, "safetensors | gguf")->capture_default_str();
  init->callback([&exit_code] {
    auto written = convert::InitModel(options, EmbeddedTokenizerAssets());
    if (!written.ok()) {
      exit_code = ReportError(written.status());
      return;
    }
    fmt::print("{}\n", *written);
  });
}

void RegisterConvertCommand(CLI::App& app, int& exit_code) {
  CLI::App* convert = app.add_subcommand("convert", "Import models from other formats");
  convert->require_subcommand(1);
  CLI::App* llama2c = convert->add_subcommand(
      "llama2c", "Import a llama2.c checkpoint and tokenizer into a Hugging Face directory");
  static std::string model_bin, tokenizer_bin, out_dir;
  llama2c->add_option("MODEL.bin", model_bin, "llama2.c checkpoint")->required();
  llama2c->add_option("TOKENIZER.bin", tokenizer_bin, "llama2.c tokenizer")->required();
  llama2c->add_option("OUT_DIR", out_dir, "Output directory")->required();
  llama2c->callback([&exit_code] {
    core::Status status = models::llama::ConvertLlama2c(model_bin, tokenizer_bin, out_dir);
    if (!status.ok()) {
      exit_code = ReportError(status);
      return;
    }
    fmt::print("{}\n", out_dir);
  });
}

}  // namespace arle::app
