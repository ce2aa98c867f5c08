// GGUF export following llama.cpp's converter (names, keys, llama Q/K permutation).
#include "arle/convert/gguf_export.h"

#include <nlohmann/json.hpp>

#include <cstring>

#include "arle/core/buffer.h"
#include "arle/core/logging.h"
#include "arle/io/gguf.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/llama/llama_weights.h"

namespace arle::convert {
namespace {

// llama.cpp token types (gguf-py TokenType).
constexpr int32_t kTokenNormal = 1, kTokenUnknown = 2, kTokenControl = 3, kTokenUserDefined = 4,
                  kTokenUnused = 5, kTokenByte = 6;

// convert_hf_to_gguf's permute(): rows of each head go from rotate-half order (pair i, i + d/2)
// to interleaved order (pair 2i, 2i + 1): new[h][i][j] = old[h][j][i] for j in {0, 1}.
core::Buffer PermuteForInterleavedRope(const core::Tensor& t, int64_t n_head) {
  const int64_t rows = t.dim(0);
  const int64_t row_bytes = t.rank() == 1 ? core::ElementSize(t.dtype()) : t.stride_bytes(0);
  const int64_t head_rows = rows / n_head, half = head_rows / 2;
  core::Buffer out(static_cast<size_t>(rows * row_bytes));
  const auto* src = static_cast<const uint8_t*>(t.data());
  auto* dst = out.as<uint8_t>();
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t from = h * head_rows + j * half + i;
        const int64_t to = h * head_rows + i * 2 + j;
        std::memcpy(dst + to * row_bytes, src + from * row_bytes, row_bytes);
      }
    }
  }
  return out;
}

void AddTokenizer(const TokenizerFiles& tok, const models::llama::LlamaConfig& config,
                  io::GgufWriter* w) {
  const nlohmann::json j = nlohmann::json::parse(tok.tokenizer_json);
  const int64_t n = config.n_vocab;
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n, kTokenUnused);
  std::vector<bool> present(n, false);
  for (const auto& [piece, id_json] : j["model"]["vocab"].items()) {
    const int64_t id = id_json.get<int64_t>();
    tokens[id] = piece;
    types[id] = kTokenNormal;
    present[id] = true;
  }
  for (const auto& t : j["added_tokens"]) {
    const int64_t id = t["id"].get<int64_t>();
    tokens[id] = t["content"].get<std::string>();
    types[id] = t.value("special", false) ? kTokenControl : kTokenUserDefined;
    present[id] = true;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!present[i]) tokens[i] = "[PAD" + std::to_string(i) + "]";
  }
  w->AddString("tokenizer.ggml.model", tok.gguf_model);
  if (tok.gguf_model == "gpt2") {
    w->AddString("tokenizer.ggml.pre", "qwen2");
    std::vector<std::string> merges;
    for (const auto& m : j["model"]["merges"]) {
      merges.push_back(m.is_string() ? m.get<std::string>()
                                     : m[0].get<std::string>() + " " + m[1].get<std::string>());
    }
    w->AddStringArray("tokenizer.ggml.tokens", tokens);
    w->AddI32Array("tokenizer.ggml.token_type", types);
    w->AddStringArray("tokenizer.ggml.merges", merges);
    w->AddU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(config.eos_token_ids.at(0)));
    w->AddU32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(config.bos_token_id));
    w->AddU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(config.bos_token_id));
    w->AddBool("tokenizer.ggml.add_bos_token", false);
  } else {
    w->AddString("tokenizer.ggml.pre", "default");
    for (int64_t i = 0; i < n; ++i) {
      if (tokens[i].size() == 6 && tokens[i].rfind("<0x", 0) == 0 && tokens[i][5] == '>') {
        types[i] = kTokenByte;
      }
    }
    types[0] = kTokenUnknown;
    std::vector<float> scores(n, 0.0f);
    for (size_t i = 0; i < tok.scores.size() && static_cast<int64_t>(i) < n; ++i) {
      scores[i] = tok.scores[i];
    }
    w->AddStringArray("tokenizer.ggml.tokens", tokens);
    w->AddF32Array("tokenizer.ggml.scores", scores);
    w->AddI32Array("tokenizer.ggml.token_type", types);
    w->AddU32("tokenizer.ggml.bos_token_id", 1);
    w->AddU32("tokenizer.ggml.eos_token_id", 2);
    w->AddU32("tokenizer.ggml.unknown_token_id", 0);
    w->AddBool("tokenizer.ggml.add_bos_token", true);
    w->AddBool("tokenizer.ggml.add_eos_token", false);
  }
  const nlohmann::json tc = nlohmann::json::parse(tok.tokenizer_config_json);
  if (tc.contains("chat_template") && tc["chat_template"].is_string()) {
    w->AddString("tokenizer.chat_template", tc["chat_template"].get<std::string>());
  }
}

}  // namespace

core::StatusOr<std::string> GgufTensorName(const std::string& hf_name) {
  std::string name = models::llama::GgufNameForHf(hf_name);
  if (name.empty()) return core::InvalidArgumentError("no GGUF name for tensor '" + hf_name + "'");
  return name;
}

core::Status WriteModelGguf(const std::string& path, const models::llama::LlamaConfig& config,
                            const std::vector<io::NamedTensor>& tensors,
                            const TokenizerFiles& tokenizer) {
  io::GgufWriter writer;
  models::llama::AddConfigToGguf(config, &writer);
  if (tokenizer.vocab_size <= config.n_vocab) {
    AddTokenizer(tokenizer, config, &writer);
  } else {
    ARLE_LOG_WARN("{}: tokenizer has {} tokens but vocab_size is {}: writing no tokenizer", path,
                  tokenizer.vocab_size, config.n_vocab);
  }
  std::vector<core::Buffer> permuted;
  permuted.reserve(tensors.size());
  for (const io::NamedTensor& t : tensors) {
    ARLE_ASSIGN_OR_RETURN(std::string name, GgufTensorName(t.name));
    const bool is_q = t.name.find("self_attn.q_proj.") != std::string::npos;
    const bool is_k = t.name.find("self_attn.k_proj.") != std::string::npos;
    if (config.arch == models::llama::Architecture::kLlama && (is_q || is_k)) {
      permuted.push_back(PermuteForInterleavedRope(t.tensor, is_q ? config.n_head : config.n_head_kv));
      writer.AddWeight(name,
                       core::Tensor(permuted.back().data(), t.tensor.dtype(), t.tensor.shape()));
    } else {
      writer.AddWeight(name, t.tensor);  // 1-D tensors in F32, as llama.cpp's converter
    }
  }
  return writer.Write(path);
}

}  // namespace arle::convert
