// The arle binary's model resolution: the library's (io/model_location.h, runtime/model_loader.h)
// with the built-in stories260K, compiled into the binary, as the model of an empty --model.
#pragma once

#include <memory>
#include <string>

#include "arle/core/status.h"
#include "arle/io/model_location.h"
#include "arle/runtime/model_loader.h"

namespace arle::app {

using io::ModelLocation;
using runtime::LoadedModel;

// stories260K from the embedded llama2.c files (embedded_assets.h).
const io::BuiltinModel& BuiltinStories260K();

// io::ResolveModel, runtime::LoadModel and runtime::LoadTokenizerOnly with BuiltinStories260K().
core::StatusOr<ModelLocation> ResolveModel(const std::string& spec);
core::StatusOr<LoadedModel> LoadModel(const std::string& spec, const models::LoadOptions& options);
core::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizerOnly(const std::string& spec);

}  // namespace arle::app
