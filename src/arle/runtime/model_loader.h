// Loading the model a --model spec resolves to (io/model_location.h): its weights, its tokenizer
// and, for GGUF files, the parsed file (its chat template is read from it later).
#pragma once

#include <memory>
#include <string>

#include "arle/core/status.h"
#include "arle/io/gguf.h"
#include "arle/io/model_location.h"
#include "arle/models/registry.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::runtime {

struct LoadedModel {
  io::ModelLocation location;
  std::unique_ptr<models::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  // The parsed GGUF file (GGUF models only), kept so the chat template is not read again.
  std::shared_ptr<const io::GgufFile> gguf;
};

// Resolves `spec` (io::ResolveModel; `builtin` is the model of an empty spec, may be null) and
// loads it. A built-in model is imported into a private temporary directory, loaded and the
// directory removed. Errors: what resolution or loading reports, naming the file.
core::StatusOr<LoadedModel> LoadModel(const std::string& spec, const models::LoadOptions& options,
                                      const io::BuiltinModel* builtin);

// Loads only the tokenizer of the model `spec` resolves to (no weights are read).
core::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizerOnly(
    const std::string& spec, const io::BuiltinModel* builtin);

}  // namespace arle::runtime
