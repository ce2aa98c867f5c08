// Model resolution: a directory with config.json is a Hugging Face model; otherwise it must hold
// exactly one .gguf file. ORG/NAME goes through the Hugging Face cache (hf_cache.cc).
#include "arle/io/model_location.h"

#include <filesystem>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/io/hf_cache.h"

namespace arle::io {
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

}  // namespace

core::StatusOr<ModelLocation> ResolveModel(const std::string& spec, const BuiltinModel* builtin) {
  if (spec.empty()) {
    if (builtin == nullptr) {
      return core::InvalidArgumentError("no model given",
                                        "pass a Hugging Face directory, a .gguf file, or ORG/NAME");
    }
    return ModelLocation{ModelLocation::Kind::kBuiltin, "", "built-in " + builtin->name};
  }
  if (core::IsDirectory(spec)) return ResolveDirectory(spec, "local directory " + spec);
  if (core::FileExists(spec)) {
    return ModelLocation{ModelLocation::Kind::kGguf, spec, "GGUF file " + spec};
  }
  if (LooksLikeRepoId(spec)) {
    auto snapshot = ResolveHfCacheModel(spec);
    if (snapshot.ok()) {
      return ResolveDirectory(*snapshot, "Hugging Face cache " + *snapshot);
    }
    return snapshot.status();
  }
  std::string hint =
      "pass a Hugging Face directory, a .gguf file, or ORG/NAME from the Hugging Face cache";
  if (builtin != nullptr) hint += "; omit --model for the built-in model";
  return core::NotFoundError("model '" + spec + "' not found", hint);
}

}  // namespace arle::io
