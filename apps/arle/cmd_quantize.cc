// `arle quantize IN OUT.gguf --type T` (IN a GGUF file or a Hugging Face directory): GGUF block-format weights with llama.cpp's mixtures.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "apps/arle/commands.h"
#include "arle/convert/quantize.h"

namespace arle::app {

void RegisterQuantizeCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Write a GGUF model with quantized matrices from a GGUF file or HF directory (f32/f16/bf16), as llama-quantize");
  static std::string in, out, type_name = "q4_k_m";
  static int threads = 0;
  cmd->add_option("IN", in, "GGUF file or Hugging Face directory (qwen3) with f32, f16 or bf16 weights")->required();
  cmd->add_option("OUT", out, "Output GGUF file")->required();
  cmd->add_option("--type", type_name, "q8_0 | q4_0 | q4_k_m | q5_k_m | q6_k")
      ->capture_default_str();
  cmd->add_option("-t,--threads", threads, "Threads (default: one per physical core)");
  cmd->callback([&exit_code] {
    const std::optional<convert::QuantFileType> type = convert::ParseQuantFileType(type_name);
    if (!type) {
      exit_code = ReportError(core::InvalidArgumentError(
          fmt::format("unknown --type '{}'", type_name), "one of q8_0, q4_0, q4_k_m, q5_k_m, q6_k"));
      return;
    }
    auto summary = convert::QuantizeModel(in, out, *type, threads);
    if (!summary.ok()) {
      exit_code = ReportError(summary.status());
      return;
    }
    fmt::print("{}: {} tensors quantized ({}), {} kept; tensor data {:.1f} MiB -> {:.1f} MiB\n", out,
               summary->n_quantized, convert::QuantFileTypeName(*type), summary->n_kept,
               static_cast<double>(summary->bytes_in) / (1 << 20),
               static_cast<double>(summary->bytes_out) / (1 << 20));
  });
}

}  // namespace arle::app
