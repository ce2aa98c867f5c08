// The Llama family's registry entry: Llama and Qwen3 (Hugging Face directories and GGUF files),
// and their chat formats.
#pragma once

#include "arle/models/registry.h"

namespace arle::models::llama {

FamilyEntry LlamaFamily();

}  // namespace arle::models::llama
