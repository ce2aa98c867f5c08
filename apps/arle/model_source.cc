// The built-in model of the arle binary and the library's model resolution bound to it.
#include "apps/arle/model_source.h"

#include "apps/arle/embedded_assets.h"

namespace arle::app {

const io::BuiltinModel& BuiltinStories260K() {
  static const io::BuiltinModel builtin{
      .name = "stories260K",
      .details = "llama2.c, 260K params",
      .checkpoint = Stories260KCheckpoint(),
      .tokenizer = Stories260KTokenizer(),
      .vocab_size = 512,
  };
  return builtin;
}

core::StatusOr<ModelLocation> ResolveModel(const std::string& spec) {
  return io::ResolveModel(spec, &BuiltinStories260K());
}

core::StatusOr<LoadedModel> LoadModel(const std::string& spec, const models::LoadOptions& options) {
  return runtime::LoadModel(spec, options, &BuiltinStories260K());
}

core::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizerOnly(const std::string& spec) {
  return runtime::LoadTokenizerOnly(spec, &BuiltinStories260K());
}

}  // namespace arle::app
