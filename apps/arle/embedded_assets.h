// Files compiled into the arle binary (assets/README.md lists them with origin and licence): the
// built-in stories260K model and the Qwen3 tokenizer that `arle model init` ships with qwen3 models.
#pragma once

#include <cstdint>
#include <span>

namespace arle::app {

std::span<const uint8_t> Stories260KCheckpoint();   // llama2.c stories260K.bin
std::span<const uint8_t> Stories260KTokenizer();    // llama2.c tok512.bin
std::span<const uint8_t> Qwen3TokenizerJsonGz();    // tokenizer.json, gzip
std::span<const uint8_t> Qwen3TokenizerConfigJson();

}  // namespace arle::app
