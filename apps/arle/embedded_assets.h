// Files compiled into the arle binary (assets/README.md lists them with origin and licence): the
// built-in stories260K model and the Qwen3 tokenizer that `arle model init` ships with qwen3 models.
#pragma once

#include <cstdint>
#include <span>

#include "arle/convert/tokenizer_files.h"

namespace arle::app {

std::span<const uint8_t> Stories260KCheckpoint();   // llama2.c stories260K.bin
std::span<const uint8_t> Stories260KTokenizer();    // llama2.c tok512.bin
std::span<const uint8_t> Qwen3TokenizerJsonGz();    // tokenizer.json, gzip
std::span<const uint8_t> Qwen3TokenizerConfigJson();

// The tokenizers of `arle model init` (Qwen3's; tok512 for llama presets).
const convert::TokenizerAssets& EmbeddedTokenizerAssets();

}  // namespace arle::app
