// Model resolution for every command that takes --model: a local Hugging Face directory, a GGUF
// file (or a directory holding exactly one), "ORG/NAME" in the Hugging Face cache, or, with no
// --model, the built-in stories260K compiled into the binary.
#pragma once

#include <memory>
#include <string>

#include "arle/core/status.h"
#include "arle/io/gguf.h"
#include "arle/models/registry.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::app {

struct ModelLocation {
  enum class Kind { kBuiltin, kHfDirectory, kGguf } kind = Kind::kBuiltin;
  std::string path;         // directory or .gguf file; empty for the built-in model
  std::string description;  // how it was found, for --doctor and logs
};

// Resolves `spec` without loading anything. NotFound lists what was tried.
core::StatusOr<ModelLocation> ResolveModel(const std::string& spec);

struct LoadedModel {
  ModelLocation location;
  std::unique_ptr<models::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  // The parsed GGUF file (GGUF models only), kept so the chat template is not read again.
  std::shared_ptr<const io::GgufFile> gguf;
};

core::StatusOr<LoadedModel> LoadModel(const std::string& spec, const models::LoadOptions& options);

}  // namespace arle::app

namespace arle::app {

// Loads only the tokenizer of the model `spec` resolves to (no weights are read).
core::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizerOnly(const std::string& spec);

}  // namespace arle::app
