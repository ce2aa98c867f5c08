// HF directory -> GGUF, reusing the GGUF writer of `arle model init`.
#include "arle/convert/hf_to_gguf.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "arle/convert/gguf_export.h"
#include "arle/convert/model_init.h"
#include "arle/convert/tokenizer_files.h"
#include "arle/core/file_util.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/io/safetensors.h"

namespace arle::convert {
namespace {

// tokenizer.json and tokenizer_config.json of a byte-level BPE tokenizer, as the GGUF writer
// takes them.
core::StatusOr<TokenizerFiles> ReadByteLevelTokenizer(const std::string& dir) {
  TokenizerFiles tok;
  const std::string tokenizer_path = core::JoinPath(dir, "tokenizer.json");
  ARLE_ASSIGN_OR_RETURN(tok.tokenizer_json, core::ReadFile(tokenizer_path));
  const std::string config_path = core::JoinPath(dir, "tokenizer_config.json");
  if (core::FileExists(config_path)) {
    ARLE_ASSIGN_OR_RETURN(tok.tokenizer_config_json, core::ReadFile(config_path));
  } else {
    tok.tokenizer_config_json = "{}";
  }
  const nlohmann::json j =
      nlohmann::json::parse(tok.tokenizer_json, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json tc =
      nlohmann::json::parse(tok.tokenizer_config_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || tc.is_discarded() || !tc.is_object()) {
    return core::InvalidArgumentError(tokenizer_path +
                                      " or tokenizer_config.json is not a JSON object");
  }
  const bool bpe = j.contains("model") && j["model"].is_object() &&
                   j["model"].value("type", "") == "BPE" && j["model"].contains("vocab") &&
                   j["model"]["vocab"].is_object() && j["model"].contains("merges") &&
                   j["model"]["merges"].is_array();
  const bool byte_level = j.contains("pre_tokenizer") &&
                          j["pre_tokenizer"].dump().find("\"ByteLevel\"") != std::string::npos;
  if (!bpe || !byte_level) {
    return core::UnimplementedError(tokenizer_path + " is not a byte-level BPE tokenizer",
                                    "convert the model with llama.cpp's convert_hf_to_gguf.py and "
                                    "quantize that GGUF file");
  }
  for (const auto& m : j["model"]["merges"]) {  // the GGUF writer reads them as given
    const bool pair = m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string();
    if (!m.is_string() && !pair) return core::InvalidArgumentError(tokenizer_path + ": bad merge");
  }
  ARLE_ASSIGN_OR_RETURN(tok.vocab_size, CountTokenizerTokens(tok.tokenizer_json, tokenizer_path));
  tok.gguf_model = "gpt2";
  return tok;
}

}  // namespace

core::Status ExportHfDirectoryToGguf(const std::string& dir, const std::string& path) {
  ARLE_ASSIGN_OR_RETURN(models::llama::LlamaConfig config, models::llama::LoadHfConfig(dir));
  if (config.arch != models::llama::Architecture::kQwen3) {
    return core::UnimplementedError(
        "quantizing a " + std::string(models::llama::ArchitectureName(config.arch)) +
            " Hugging Face directory (only qwen3 directories are exported to GGUF)",
        "convert it with llama.cpp's convert_hf_to_gguf.py and quantize that GGUF file");
  }
  ARLE_ASSIGN_OR_RETURN(TokenizerFiles tok, ReadByteLevelTokenizer(dir));
  if (tok.vocab_size > config.n_vocab) {
    return core::InvalidArgumentError("tokenizer.json has " + std::to_string(tok.vocab_size) +
                                      " tokens, more than vocab_size " +
                                      std::to_string(config.n_vocab));
  }
  ARLE_ASSIGN_OR_RETURN(io::SafetensorsModel weights, io::SafetensorsModel::Open(dir));
  std::vector<io::NamedTensor> tensors;
  for (const WeightSpec& spec : HfWeightSpecs(config)) {
    auto t = weights.GetTensor(spec.name);
    if (!t.ok()) return core::InvalidArgumentError(dir + ": " + t.status().message());
    const core::DType d = t->dtype();
    if (d != core::DType::kF32 && d != core::DType::kF16 && d != core::DType::kBF16) {
      return core::InvalidArgumentError(spec.name + " is " + std::string(core::DTypeName(d)),
                                        "only f32, f16 and bf16 weights can be quantized");
    }
    if (std::vector<int64_t>(t->shape().begin(), t->shape().end()) != spec.shape) {
      return core::InvalidArgumentError(spec.name + " has shape " + t->ToString() +
                                        ", which config.json does not describe");
    }
    tensors.push_back({spec.name, *t});
  }
  return WriteModelGguf(path, config, tensors, tok);
}

}  // namespace arle::convert
