// Tests for runtime/model_loader: the built-in model (llama2.c files held in memory, here read from
// assets/models/stories260K) and a Hugging Face directory load with their tokenizers, and the
// tokenizer-only path gives the same tokenizer without weights.
#include "arle/runtime/model_loader.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/models/llama/llama2c_import.h"
#include "tests/common/temp_dir.h"

namespace arle::runtime {
namespace {

const std::string kAssets = std::string(ARLE_SOURCE_DIR) + "/assets/models/stories260K";

std::vector<uint8_t> ReadBytes(const std::string& path) {
  auto text = core::ReadFile(path);
  ARLE_CHECK(text.ok()) << text.status().ToString();
  return std::vector<uint8_t>(text->begin(), text->end());
}

class ModelLoaderTest : public ::testing::Test {
 protected:
  ModelLoaderTest()
      : checkpoint_(ReadBytes(kAssets + "/stories260K.bin")),
        tokenizer_(ReadBytes(kAssets + "/tok512.bin")) {
    builtin_.name = "stories260K";
    builtin_.details = "llama2.c, 260K params";
    builtin_.checkpoint = checkpoint_;
    builtin_.tokenizer = tokenizer_;
    builtin_.vocab_size = 512;
  }

  std::vector<uint8_t> checkpoint_;
  std::vector<uint8_t> tokenizer_;
  io::BuiltinModel builtin_;
};

TEST_F(ModelLoaderTest, BuiltinModelLoadsWithItsTokenizer) {
  models::LoadOptions options;
  options.n_threads = 1;
  auto loaded = LoadModel("", options, &builtin_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->location.kind, io::ModelLocation::Kind::kBuiltin);
  EXPECT_EQ(loaded->location.description, "built-in stories260K (llama2.c, 260K params)");
  ASSERT_NE(loaded->model, nullptr);
  ASSERT_NE(loaded->tokenizer, nullptr);
  EXPECT_EQ(loaded->gguf, nullptr);
  EXPECT_EQ(loaded->model->info().n_vocab, 512);

  auto only = LoadTokenizerOnly("", &builtin_);
  ASSERT_TRUE(only.ok()) << only.status().ToString();
  const std::string text = "Once upon a time, there was a little girl.";
  EXPECT_EQ((*only)->Encode(text), loaded->tokenizer->Encode(text));
  EXPECT_GT((*only)->Encode(text).size(), 5u);
}

TEST_F(ModelLoaderTest, HfDirectoryLoads) {
  test::TempDir dir;
  ASSERT_TRUE(models::llama::ConvertLlama2c(kAssets + "/stories260K.bin", kAssets + "/tok512.bin",
                                 dir.Path("hf"))
                  .ok());
  models::LoadOptions options;
  options.n_threads = 1;
  auto loaded = LoadModel(dir.Path("hf"), options, /*builtin=*/nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->location.kind, io::ModelLocation::Kind::kHfDirectory);
  EXPECT_EQ(loaded->model->info().n_layer, 5);

  auto only = LoadTokenizerOnly(dir.Path("hf"), nullptr);
  ASSERT_TRUE(only.ok()) << only.status().ToString();
  EXPECT_EQ((*only)->Encode("hello world"), loaded->tokenizer->Encode("hello world"));
}

TEST_F(ModelLoaderTest, ResolutionErrorsPassThrough) {
  auto loaded = LoadModel("", {}, /*builtin=*/nullptr);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), core::StatusCode::kInvalidArgument);

  test::TempDir empty;
  auto tok = LoadTokenizerOnly(empty.path(), &builtin_);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), core::StatusCode::kNotFound);
}

}  // namespace
}  // namespace arle::runtime
