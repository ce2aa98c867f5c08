// Model loading. The built-in model is imported from its in-memory llama2.c files into a private
// temporary directory (the llama family's importer, the same as `arle convert llama2c`), loaded,
// and the directory removed; the loaded model keeps its own mapping.
#include "arle/runtime/model_loader.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/io/gguf.h"
#include "arle/io/llama2c.h"
#include "arle/models/llama/llama2c_import.h"

namespace arle::runtime {
namespace {

namespace fs = std::filesystem;

core::StatusOr<LoadedModel> LoadBuiltin(const io::BuiltinModel& builtin,
                                        const models::LoadOptions& options) {
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
  const std::string model_bin = core::JoinPath(dir, builtin.name + ".bin");
  const std::string tok_bin = core::JoinPath(dir, "tokenizer.bin");
  const std::string hf_dir = core::JoinPath(dir, "hf");
  core::Status status = core::WriteFileAtomic(model_bin, as_view(builtin.checkpoint));
  if (status.ok()) status = core::WriteFileAtomic(tok_bin, as_view(builtin.tokenizer));
  if (status.ok()) status = models::llama::ConvertLlama2c(model_bin, tok_bin, hf_dir);
  if (!status.ok()) {
    cleanup();
    return status.WithContext("built-in model");
  }
  LoadedModel loaded;
  loaded.location = {io::ModelLocation::Kind::kBuiltin, "",
                     "built-in " + builtin.name + " (" + builtin.details + ")"};
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

core::StatusOr<LoadedModel> LoadModel(const std::string& spec, const models::LoadOptions& options,
                                      const io::BuiltinModel* builtin) {
  ARLE_ASSIGN_OR_RETURN(io::ModelLocation location, io::ResolveModel(spec, builtin));
  if (location.kind == io::ModelLocation::Kind::kBuiltin) return LoadBuiltin(*builtin, options);
  LoadedModel loaded;
  loaded.location = location;
  ARLE_ASSIGN_OR_RETURN(loaded.model, models::Load(location.path, options));
  if (location.kind == io::ModelLocation::Kind::kHfDirectory) {
    ARLE_ASSIGN_OR_RETURN(loaded.tokenizer, tokenizer::LoadTokenizerForModelDir(location.path));
  } else {
    ARLE_ASSIGN_OR_RETURN(io::GgufFile gguf, io::GgufFile::Open(location.path));
    loaded.gguf = std::make_shared<const io::GgufFile>(std::move(gguf));
    ARLE_ASSIGN_OR_RETURN(loaded.tokenizer, tokenizer::Tokenizer::FromGguf(*loaded.gguf));
  }
  return loaded;
}

core::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizerOnly(
    const std::string& spec, const io::BuiltinModel* builtin) {
  ARLE_ASSIGN_OR_RETURN(io::ModelLocation location, io::ResolveModel(spec, builtin));
  switch (location.kind) {
    case io::ModelLocation::Kind::kBuiltin: {
      ARLE_ASSIGN_OR_RETURN(std::vector<io::Llama2cToken> tokens,
                            io::ParseLlama2cTokenizer(builtin->tokenizer, builtin->vocab_size,
                                                      "embedded " + builtin->name + " tokenizer"));
      ARLE_ASSIGN_OR_RETURN(std::string json, io::Llama2cTokenizerJson(tokens));
      return tokenizer::Tokenizer::FromJson(json, "built-in " + builtin->name + " tokenizer");
    }
    case io::ModelLocation::Kind::kHfDirectory:
      return tokenizer::LoadTokenizerForModelDir(location.path);
    case io::ModelLocation::Kind::kGguf: {
      ARLE_ASSIGN_OR_RETURN(io::GgufFile gguf, io::GgufFile::Open(location.path));
      return tokenizer::Tokenizer::FromGguf(gguf);
    }
  }
  return core::InternalError("unreachable model kind");
}

}  // namespace arle::runtime
