// Tokenizer files from in-memory assets.
#include "arle/convert/tokenizer_files.h"

#include <nlohmann/json.hpp>

#include "arle/io/compressed.h"
#include "arle/io/llama2c.h"

namespace arle::convert {
core::StatusOr<int64_t> CountTokenizerTokens(const std::string& tokenizer_json,
                                             const std::string& source) {
  const nlohmann::json j =
      nlohmann::json::parse(tokenizer_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("model") || !j["model"].is_object() ||
      !j["model"].contains("vocab") || !j["model"]["vocab"].is_object()) {
    return core::InvalidArgumentError(source + ": not a tokenizer.json with a model.vocab object");
  }
  int64_t max_id = -1;
  for (const auto& [piece, id] : j["model"]["vocab"].items()) {
    if (!id.is_number_integer()) return core::InvalidArgumentError(source + ": bad vocab id");
    max_id = std::max<int64_t>(max_id, id.get<int64_t>());
  }
  if (j.contains("added_tokens")) {
    if (!j["added_tokens"].is_array())
      return core::InvalidArgumentError(source + ": bad added_tokens");
    for (const auto& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
          !t.contains("content") || !t["content"].is_string()) {
        return core::InvalidArgumentError(source + ": bad added_tokens entry");
      }
      max_id = std::max<int64_t>(max_id, t["id"].get<int64_t>());
    }
  }
  return max_id + 1;
}

core::StatusOr<TokenizerFiles> TokenizerFilesForArch(const std::string& arch,
                                                     const TokenizerAssets& assets) {
  TokenizerFiles files;
  if (arch == "qwen3") {
    ARLE_ASSIGN_OR_RETURN(
        files.tokenizer_json,
        io::GunzipBytes(assets.qwen3_tokenizer_json_gz, "embedded qwen3 tokenizer"));
    auto config = assets.qwen3_tokenizer_config_json;
    files.tokenizer_config_json.assign(reinterpret_cast<const char*>(config.data()), config.size());
    files.gguf_model = "gpt2";
  } else if (arch == "llama") {
    ARLE_ASSIGN_OR_RETURN(
        std::vector<io::Llama2cToken> tokens,
        io::ParseLlama2cTokenizer(assets.llama2c_tokenizer, assets.llama2c_vocab_size,
                                  "embedded llama2.c tokenizer"));
    ARLE_ASSIGN_OR_RETURN(files.tokenizer_json, io::Llama2cTokenizerJson(tokens));
    nlohmann::json config = {{"add_bos_token", true},
                             {"add_eos_token", false},
                             {"bos_token", "<s>"},
                             {"eos_token", "</s>"},
                             {"unk_token", "<unk>"},
                             {"model_max_length", 2048},
                             {"tokenizer_class", "LlamaTokenizerFast"},
                             {"clean_up_tokenization_spaces", false}};
    files.tokenizer_config_json = config.dump(2) + "\n";
    files.gguf_model = "llama";
    for (const auto& t : tokens) files.scores.push_back(t.score);
  } else {
    return core::InvalidArgumentError("no tokenizer for architecture '" + arch + "'");
  }
  ARLE_ASSIGN_OR_RETURN(files.vocab_size, CountTokenizerTokens(files.tokenizer_json,
                                                               "embedded " + arch + " tokenizer"));
  return files;
}

}  // namespace arle::convert
