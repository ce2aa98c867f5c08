// Tokenizer files from the assets compiled into the binary.
#include "apps/arle/tokenizer_assets.h"

#include <nlohmann/json.hpp>

#include "apps/arle/embedded_assets.h"
#include "arle/io/compressed.h"
#include "arle/io/llama2c.h"

namespace arle::app {
namespace {

int64_t CountTokens(const std::string& tokenizer_json) {
  const nlohmann::json j = nlohmann::json::parse(tokenizer_json);
  int64_t max_id = -1;
  for (const auto& [piece, id] : j["model"]["vocab"].items()) max_id = std::max<int64_t>(max_id, id);
  for (const auto& t : j["added_tokens"]) max_id = std::max<int64_t>(max_id, t["id"].get<int64_t>());
  return max_id + 1;
}

}  // namespace

core::StatusOr<TokenizerFiles> TokenizerFilesForArch(const std::string& arch) {
  TokenizerFiles files;
  if (arch == "qwen3") {
    ARLE_ASSIGN_OR_RETURN(files.tokenizer_json,
                          io::GunzipBytes(Qwen3TokenizerJsonGz(), "embedded qwen3 tokenizer"));
    auto config = Qwen3TokenizerConfigJson();
    files.tokenizer_config_json.assign(reinterpret_cast<const char*>(config.data()), config.size());
    files.gguf_model = "gpt2";
  } else if (arch == "llama") {
    ARLE_ASSIGN_OR_RETURN(
        std::vector<io::Llama2cToken> tokens,
        io::ParseLlama2cTokenizer(Stories260KTokenizer(), 512, "embedded tok512.bin"));
    ARLE_ASSIGN_OR_RETURN(files.tokenizer_json, io::Llama2cTokenizerJson(tokens));
    nlohmann::json config = {{"add_bos_token", true},      {"add_eos_token", false},
                             {"bos_token", "<s>"},         {"eos_token", "</s>"},
                             {"unk_token", "<unk>"},       {"model_max_length", 2048},
                             {"tokenizer_class", "LlamaTokenizerFast"},
                             {"clean_up_tokenization_spaces", false}};
    files.tokenizer_config_json = config.dump(2) + "\n";
    files.gguf_model = "llama";
    for (const auto& t : tokens) files.scores.push_back(t.score);
  } else {
    return core::InvalidArgumentError("no tokenizer for architecture '" + arch + "'");
  }
  files.vocab_size = CountTokens(files.tokenizer_json);
  return files;
}

}  // namespace arle::app
