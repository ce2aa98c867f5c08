// GGUF -> Model: config from llama.cpp's metadata keys, tensors by llama.cpp names, llama q/k rows
// restored to Hugging Face order.
#include "arle/models/llama/llama_gguf.h"

#include <map>

#include "arle/io/gguf.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/llama/llama_weights.h"

namespace arle::models::llama {
namespace {

// Keeps the mapped file and the rewritten (un-permuted) tensors alive for the model's lifetime.
struct GgufHolder {
  io::GgufFile file;
  std::map<std::string, core::Buffer> owned;
  std::map<std::string, core::Tensor> owned_views;
};

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

core::StatusOr<std::unique_ptr<LlamaModel>> LoadGgufModel(const std::string& path,
                                                     const LoadOptions& options) {
  ARLE_ASSIGN_OR_RETURN(io::GgufFile file, io::GgufFile::Open(path));
  auto config = ConfigFromGguf(file);
  if (!config.ok()) return config.status().WithContext(path);
  auto holder = std::make_shared<GgufHolder>(GgufHolder{std::move(file), {}, {}});
  const bool unpermute = config->arch == Architecture::kLlama;
  const int64_t n_head = config->n_head, n_head_kv = config->n_head_kv;
  GgufHolder* h = holder.get();
  auto get = [h, unpermute, n_head, n_head_kv, path](
                 const std::string& hf_name) -> core::StatusOr<core::Tensor> {
    const std::string gguf_name = GgufNameForHf(hf_name);
    if (gguf_name.empty() || h->file.FindTensor(gguf_name) == nullptr) {
      return core::NotFoundError("no tensor '" + gguf_name + "' (for " + hf_name + ")");
    }
    auto it = h->owned_views.find(hf_name);
    if (it != h->owned_views.end()) return it->second;
    ARLE_ASSIGN_OR_RETURN(core::Tensor t, h->file.GetTensor(gguf_name));
    const bool is_q = EndsWith(hf_name, "q_proj.weight") || EndsWith(hf_name, "q_proj.bias");
    const bool is_k = EndsWith(hf_name, "k_proj.weight") || EndsWith(hf_name, "k_proj.bias");
    if (!unpermute || !(is_q || is_k)) return t;
    // convert_hf_to_gguf.py permuted these rows for llama.cpp's interleaved RoPE; undo it.
    const int64_t heads = is_q ? n_head : n_head_kv;
    const core::DTypeInfo& info = core::GetDTypeInfo(t.dtype());
    // Whole rows move, so a block-format matrix works too (its rows are whole blocks).
    if ((info.block_elems != 1 && t.rank() != 2) || t.rank() < 1 || t.dim(0) % (2 * heads) != 0) {
      return core::UnimplementedError(path + ": cannot restore the row order of '" + gguf_name +
                                      "' (" + t.ToString() + ", " + std::to_string(heads) +
                                      " heads)");
    }
    core::Buffer buf = UnpermuteLlamaQk(t, heads);
    core::Tensor view(buf.data(), t.dtype(), t.shape());
    h->owned[hf_name] = std::move(buf);
    h->owned_views[hf_name] = view;
    return view;
  };
  auto model = LlamaModel::FromTensors(*config, get, holder, options);
  if (!model.ok()) return model.status().WithContext(path);
  return model;
}

}  // namespace arle::models::llama
