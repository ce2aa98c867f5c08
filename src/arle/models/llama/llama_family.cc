// LlamaFamily: the architectures it serves, how it loads them, and how their chat models talk.
#include "arle/models/llama/llama_family.h"

#include "arle/models/llama/llama_gguf.h"
#include "arle/models/llama/llama_model.h"

namespace arle::models::llama {

FamilyEntry LlamaFamily() {
  FamilyEntry family;
  family.name = "llama";
  // Qwen3's chat template writes <think> reasoning and Hermes-style <tool_call> JSON, and ends a
  // turn with <|im_end|>.
  ChatFormat qwen3;
  qwen3.output_parser = "qwen3";
  qwen3.tool_call_open = "<tool_call>";
  qwen3.tool_call_close = "</tool_call>";
  qwen3.stop_tokens = {"<|im_end|>"};
  // Llama chat models: plain text, turns ended by Llama 3's <|eot_id|> where the vocabulary has it.
  ChatFormat llama;
  llama.stop_tokens = {"<|eot_id|>"};
  family.architectures = {{"Qwen3ForCausalLM", "qwen3", qwen3},
                          {"LlamaForCausalLM", "llama", llama}};
  family.load_hf = [](const std::string& dir,
                      const LoadOptions& options) -> core::StatusOr<std::unique_ptr<Model>> {
    ARLE_ASSIGN_OR_RETURN(std::unique_ptr<LlamaModel> m, LlamaModel::LoadHf(dir, options));
    return std::unique_ptr<Model>(std::move(m));
  };
  family.load_gguf = [](const std::string& path,
                        const LoadOptions& options) -> core::StatusOr<std::unique_ptr<Model>> {
    ARLE_ASSIGN_OR_RETURN(std::unique_ptr<LlamaModel> m, LoadGgufModel(path, options));
    return std::unique_ptr<Model>(std::move(m));
  };
  return family;
}

}  // namespace arle::models::llama
