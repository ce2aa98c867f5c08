// Model resolution and loading. The built-in model is imported from the embedded llama2.c files
// into a private temporary directory (the same importer as `arle convert llama2c`), loaded, and
// the directory removed; the loaded model keeps its own mapping.
#include "apps/arle/model_source.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <vector>

#include "apps/arle/embedded_assets.h"
#include "arle/core/file_util.h"
#include "arle/io/gguf.h"
#include "arle/io/hf_config.h"
#include "arle/io/llama2c.h"

namespace arle::app {
namespace {

namespace fs = std::filesystem;

bool LooksLikeRepoId(const std::string& spec) {
  if (spec.empty() || spec[0] == '/' || spec[0] == '.' || spec[0] == '~') return false;
  const size_t slash = spec.find('/');
  return slash != std::string::npos && slash > 0 && slash + 1 < spec.size() &&
         spec.find('/', slash + 1) == std::string::npos;
}

core::StatusOr<ModelLocation> ResolveDirectory(const std::string& dir, const std::string& how) {
  if (core::FileExists(core::JoinPath(dir, "config.json"))) {
    return ModelLocation{ModelLocation::Kind::kHfDirectory, dir, how};
  }
  std::vector<std::string> ggufs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".gguf") {
      ggufs.push_back(entry.path().string());
    }
  }
  if (ggufs.size() == 1) return ModelLocation{ModelLocation::Kind::kGguf, ggufs[0], how};
  if (ggufs.size() > 1) {
    return core::InvalidArgumentError(dir + ": holds several .gguf files",
                                      "pass the .gguf file itself to --model");
  }
  return core::NotFoundError(dir + ": neither config.json nor a .gguf file found",
                             "pass a Hugging Face model directory or a .gguf file");
}

core::StatusOr<LoadedModel> LoadBuiltin(const models::LoadOptions& options) {
  std::string tmpl = (fs::temp_directory_path() / "arle-builtin-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return core::IoError("cannot create a temporary directory for the built-in model");
  }
  const std::string dir = tmpl;
  auto cleanup = [&dir] {
    std::error_code ec;
    fs::remove_all(dir, ec);
  };
  auto as_view = [](std::span<const uint8_t> s) {
    return std::string_view(reinterpret_cast<const char*>(s.data()), s.size());
  };
  const std::string model_bin = core::JoinPath(dir, "stories260K.bin");
  const std::string tok_bin = core::JoinPath(dir, "tok512.bin");
  const std::string hf_dir = core::JoinPath(dir, "hf");
  core::Status status = core::WriteFileAtomic(model_bin, as_view(Stories260KCheckpoint()));
  if (status.ok()) status = core::WriteFileAtomic(tok_bin, as_view(Stories260KTokenizer()));
  if (status.ok()) status = io::ConvertLlama2c(model_bin, tok_bin, hf_dir);
  if (!status.ok()) {
    cleanup();
    return status.WithContext("built-in model");
  }
  LoadedModel loaded;
  loaded.location = {ModelLocation::Kind::kBuiltin, "", "built-in stories260K (llama2.c, 260K params)"};
  auto model = models::Load(hf_dir, options);
  auto tokenizer = tokenizer::LoadTokenizerForModelDir(hf_dir);
  cleanup();
  if (!model.ok()) return model.status();
  if (!tokenizer.ok()) return tokenizer.status();
  loaded.model = std::move(model).value();
  loaded.tokenizer = std::move(tokenizer).value();
  return loaded;
}

}  // namespace

core::StatusOr<ModelLocation> ResolveModel(const std::string& spec) {
  if (spec.empty()) return ModelLocation{ModelLocation::Kind::kBuiltin, "", "built-in stories260K"};
  if (core::IsDirectory(spec)) return ResolveDirectory(spec, "local directory " + spec);
  if (core::FileExists(spec)) {
    return ModelLocation{ModelLocation::Kind::kGguf, spec, "GGUF file " + spec};
  }
  if (LooksLikeRepoId(spec)) {
    auto snapshot = io::ResolveHfCacheModel(spec);
    if (snapshot.ok()) {
      return ResolveDirectory(*snapshot, "Hugging Face cache " + *snapshot);
    }
    return snapshot.status();
  }
  return core::NotFoundError("model '" + spec + "' not found",
                             "pass a Hugging Face directory, a .gguf file, or ORG/NAME from the "
                             "Hugging Face cache; omit --model for the built-in model");
}

core::StatusOr<LoadedModel> LoadModel(const std::string& spec, const models::LoadOptions& options) {
  ARLE_ASSIGN_OR_RETURN(ModelLocation location, ResolveModel(spec));
  if (location.kind == ModelLocation::Kind::kBuiltin) return LoadBuiltin(options);
  LoadedModel loaded;
  loaded.location = location;
  ARLE_ASSIGN_OR_RETURN(loaded.model, models::Load(location.path, options));
  if (location.kind == ModelLocation::Kind::kHfDirectory) {
    ARLE_ASSIGN_OR_RETURN(loaded.tokenizer, tokenizer::LoadTokenizerForModelDir(location.path));
  } else {
    ARLE_ASSIGN_OR_RETURN(io::GgufFile gguf, io::GgufFile::Open(location.path));
    loaded.gguf = std::make_shared<const io::GgufFile>(std::move(gguf));
    ARLE_ASSIGN_OR_RETURN(loaded.tokenizer, tokenizer::Tokenizer::FromGguf(*loaded.gguf));
  }
  return loaded;
}

}  // namespace arle::app

namespace arle::app {

core::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizerOnly(const std::string& spec) {
  ARLE_ASSIGN_OR_RETURN(ModelLocation location, ResolveModel(spec));
  switch (location.kind) {
    case ModelLocation::Kind::kBuiltin: {
      ARLE_ASSIGN_OR_RETURN(
          std::vector<io::Llama2cToken> tokens,
          io::ParseLlama2cTokenizer(Stories260KTokenizer(), 512, "embedded tok512.bin"));
      ARLE_ASSIGN_OR_RETURN(std::string json, io::Llama2cTokenizerJson(tokens));
      return tokenizer::Tokenizer::FromJson(json, "built-in stories260K tokenizer");
    }
    case ModelLocation::Kind::kHfDirectory:
      return tokenizer::LoadTokenizerForModelDir(location.path);
    case ModelLocation::Kind::kGguf: {
      ARLE_ASSIGN_OR_RETURN(io::GgufFile gguf, io::GgufFile::Open(location.path));
      return tokenizer::Tokenizer::FromGguf(gguf);
    }
  }
  return core::InternalError("unreachable model kind");
}

}  // namespace arle::app
