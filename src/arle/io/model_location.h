// Model resolution for every --model flag: a local Hugging Face directory, a GGUF file (or a
// directory holding exactly one), "ORG/NAME" in the Hugging Face cache, or, for an empty spec, a
// built-in model the program carries in memory. Nothing is loaded here (runtime/model_loader.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "arle/core/status.h"

namespace arle::io {

// A model held in memory as llama2.c files (the arle binary compiles stories260K in with .incbin).
struct BuiltinModel {
  std::string name;                     // "stories260K"
  std::string details;                  // "llama2.c, 260K params", for descriptions
  std::span<const uint8_t> checkpoint;  // the llama2.c model .bin (version 0)
  std::span<const uint8_t> tokenizer;   // the llama2.c tokenizer .bin
  int32_t vocab_size = 0;               // tokens in `tokenizer`
};

struct ModelLocation {
  enum class Kind { kBuiltin, kHfDirectory, kGguf } kind = Kind::kBuiltin;
  std::string path;         // directory or .gguf file; empty for the built-in model
  std::string description;  // how it was found, for --doctor and logs
};

// Resolves `spec` without loading anything; an empty spec is `builtin` (InvalidArgument when it is
// null). NotFound lists what was tried; InvalidArgument for a directory with several .gguf files.
// Reads the file system (and HF_HOME and friends for ORG/NAME); thread-safe.
core::StatusOr<ModelLocation> ResolveModel(const std::string& spec, const BuiltinModel* builtin);

}  // namespace arle::io
