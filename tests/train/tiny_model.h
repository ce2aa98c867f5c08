// A tiny random Llama model directory (as `arle model init` writes it, with the stories260K
// tokenizer) and its weights as owned f32 tensors under Hugging Face names: the model the
// checkpoint tests save, as a trainer holding it would pass it to SaveCheckpoint.
#pragma once

#include <string>
#include <vector>

#include "arle/convert/model_init.h"
#include "arle/core/check.h"
#include "arle/core/file_util.h"
#include "arle/io/safetensors.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/llama/llama_weights.h"
#include "arle/train/checkpoint.h"

namespace arle::train::testing {

inline std::vector<uint8_t> ReadRepoBytes(const std::string& rel) {
  auto text = core::ReadFile(std::string(ARLE_SOURCE_DIR) + "/" + rel);
  ARLE_CHECK(text.ok()) << text.status().ToString();
  return std::vector<uint8_t>(text->begin(), text->end());
}

struct TinyModel {
  std::string dir;
  models::llama::ModelWeights weights;  // owned f32 copy
  std::vector<io::NamedTensor> tensors;  // views of `weights` under HF names

  // Writes the model into `dir` (f32, seed `seed`).
  TinyModel(const std::string& out_dir, uint64_t seed) : dir(out_dir) {
    const std::vector<uint8_t> tok512 = ReadRepoBytes("assets/models/stories260K/tok512.bin");
    convert::TokenizerAssets assets;
    assets.llama2c_tokenizer = tok512;
    assets.llama2c_vocab_size = 512;
    convert::ModelInitOptions options;
    options.arch = "llama";
    options.preset = "tiny";
    options.seed = seed;
    options.out = dir;
    auto written = convert::InitModel(options, assets);
    ARLE_CHECK(written.ok()) << written.status().ToString();
    auto config = models::llama::LoadHfConfig(dir);
    ARLE_CHECK(config.ok()) << config.status().ToString();
    auto file = io::SafetensorsModel::Open(dir);
    ARLE_CHECK(file.ok()) << file.status().ToString();
    auto bound = models::llama::BindWeights(
        *config, [&](const std::string& name) { return file->GetTensor(name); }, dir);
    ARLE_CHECK(bound.ok()) << bound.status().ToString();
    auto owned = models::llama::OwnedF32Copy(*bound);
    ARLE_CHECK(owned.ok()) << owned.status().ToString();
    weights = std::move(owned).value();
    models::llama::ForEachWeight(weights, [&](const std::string& name, const core::Tensor& t) {
      tensors.push_back({name, t});
    });
  }

  // Contents with the model, its config and tokenizer; no optimizer state.
  CheckpointContents Contents() const {
    CheckpointContents c;
    c.model = tensors;
    auto config = core::ReadFile(core::JoinPath(dir, "config.json"));
    ARLE_CHECK(config.ok());
    c.config_json = *config;
    c.tokenizer_dir = dir;
    return c;
  }

  const core::Tensor& Get(const std::string& name) const {
    for (const io::NamedTensor& t : tensors) {
      if (t.name == name) return t.tensor;
    }
    ARLE_CHECK(false) << "no tensor " << name;
    return tensors.front().tensor;
  }
};

}  // namespace arle::train::testing
