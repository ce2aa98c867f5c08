// Placeholder for Tokenizer::FromGguf while io::GgufFile is not built yet (see CMakeLists.txt).
#include "arle/tokenizer/tokenizer.h"

namespace arle::tokenizer {

core::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const io::GgufFile&) {
  return core::UnimplementedError("GGUF vocabularies need arle_io's GGUF reader, not built yet");
}

}  // namespace arle::tokenizer
