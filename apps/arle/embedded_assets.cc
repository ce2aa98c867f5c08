// Accessors for the symbols that embedded_assets.S defines with .incbin, and their library views.
#include "apps/arle/embedded_assets.h"

extern "C" {
extern const uint8_t arle_asset_stories260k_bin[], arle_asset_stories260k_bin_end[];
extern const uint8_t arle_asset_tok512_bin[], arle_asset_tok512_bin_end[];
extern const uint8_t arle_asset_qwen3_tokenizer_json_gz[], arle_asset_qwen3_tokenizer_json_gz_end[];
extern const uint8_t arle_asset_qwen3_tokenizer_config_json[],
    arle_asset_qwen3_tokenizer_config_json_end[];
}

namespace arle::app {
namespace {
std::span<const uint8_t> Span(const uint8_t* begin, const uint8_t* end) {
  return {begin, static_cast<size_t>(end - begin)};
}
}  // namespace

std::span<const uint8_t> Stories260KCheckpoint() {
  return Span(arle_asset_stories260k_bin, arle_asset_stories260k_bin_end);
}
std::span<const uint8_t> Stories260KTokenizer() {
  return Span(arle_asset_tok512_bin, arle_asset_tok512_bin_end);
}
std::span<const uint8_t> Qwen3TokenizerJsonGz() {
  return Span(arle_asset_qwen3_tokenizer_json_gz, arle_asset_qwen3_tokenizer_json_gz_end);
}
std::span<const uint8_t> Qwen3TokenizerConfigJson() {
  return Span(arle_asset_qwen3_tokenizer_config_json, arle_asset_qwen3_tokenizer_config_json_end);
}

const convert::TokenizerAssets& EmbeddedTokenizerAssets() {
  static const convert::TokenizerAssets assets{
      .qwen3_tokenizer_json_gz = Qwen3TokenizerJsonGz(),
      .qwen3_tokenizer_config_json = Qwen3TokenizerConfigJson(),
      .llama2c_tokenizer = Stories260KTokenizer(),
      .llama2c_vocab_size = 512,
  };
  return assets;
}

}  // namespace arle::app
