// ModelBatchAdapter: the engine's BatchModel over a real models::Model and its paged KV storage.
#include <memory>

#include "arle/kv/block_pool.h"
#include "arle/runtime/batch_model.h"

namespace arle::runtime {
namespace {

class ModelBatchAdapter final : public BatchModel {
 public:
  explicit ModelBatchAdapter(models::Model& model) : model_(model) {}

  int32_t n_vocab() const override { return static_cast<int32_t>(model_.config().n_vocab); }
  int64_t n_ctx_train() const override { return model_.config().n_ctx_train; }
  int64_t kv_bytes_per_block(core::DType kv_dtype) const override {
    const io::ModelConfig& c = model_.config();
    return models::PagedKvStorage::BytesPerBlock(c.n_layer, kv::kBlockSize, c.n_head_kv,
                                                 c.head_dim, kv_dtype);
  }
  core::Status AllocateKv(int32_t n_blocks, core::DType kv_dtype) override {
    ARLE_ASSIGN_OR_RETURN(kv_, model_.NewPagedKv(n_blocks, kv::kBlockSize, kv_dtype));
    return core::OkStatus();
  }
  core::Status Forward(std::span<const int32_t> tokens, std::span<const BatchSequence> sequences,
                       std::vector<float>* logits) override {
    ARLE_CHECK(kv_ != nullptr) << "AllocateKv must come before Forward";
    return model_.ForwardPaged(tokens, sequences, *kv_, logits);
  }
  void CopyBlockRows(int32_t src, int32_t dst, int64_t n_rows) override {
    kv_->CopyBlockRows(model_.context(), src, dst, n_rows);
  }

 private:
  models::Model& model_;
  std::unique_ptr<models::PagedKvStorage> kv_;
};

}  // namespace

std::unique_ptr<BatchModel> MakeModelBatchAdapter(models::Model& model) {
  return std::make_unique<ModelBatchAdapter>(model);
}

}  // namespace arle::runtime
