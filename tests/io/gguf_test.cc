// Tests for io/gguf: the llama.cpp GGUF fixture, ggml type ids and block sizes against gguf-py's
// tables, writer -> reader round trips (every metadata type, nested arrays, f32/f16/bf16/q8_0
// tensors, non-default alignment, AddWeight's F32 norms and biases) and a table of corrupt inputs
// assembled byte by byte from the spec, each of which must fail with a Status naming the file,
// never a crash or a huge allocation.
#include "arle/io/gguf.h"

#include <gtest/gtest.h>

#include "tests/common/temp_dir.h"
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/core/half.h"
#include "arle/io/compressed.h"

namespace arle::io {
namespace {

using ::arle::test::TempDir;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Little-endian GGUF assembler, independent of GgufWriter, following docs/gguf.md.
class Builder {
 public:
  Builder& U8(uint8_t v) { return Raw(&v, 1); }
  Builder& U32(uint32_t v) { return Raw(&v, 4); }
  Builder& U64(uint64_t v) { return Raw(&v, 8); }
  Builder& Str(const std::string& s) {
    U64(s.size());
    out_ += s;
    return *this;
  }
  Builder& Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    out_ += "GGUF";
    U32(version);
    U64(n_tensors);
    return U64(n_kv);
  }
  Builder& KvU32(const std::string& key, uint32_t v) {
    Str(key);
    U32(4);  // GGUF_TYPE_UINT32
    return U32(v);
  }
  Builder& TensorInfo(const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                      uint64_t offset) {
    Str(name);
    U32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) U64(d);
    U32(type);
    return U64(offset);
  }
  Builder& PadTo(size_t alignment) {
    while (out_.size() % alignment != 0) out_ += '\0';
    return *this;
  }
  Builder& Zeros(size_t n) {
    out_.append(n, '\0');
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  Builder& Raw(const void* p, size_t n) {
    out_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string out_;
};

// A valid file: one u32 key and one f32 [2, 4] tensor (ne = {4, 2}) at offset 0.
std::string SmallValidFile() {
  Builder b;
  b.Header(3, 1, 1).KvU32("k", 7).TensorInfo("t", {4, 2}, 0, 0).PadTo(32).Zeros(32);
  return b.str();
}

void ExpectFailsNamingFile(const std::string& bytes, const std::string& name) {
  auto r = GgufFile::Parse(Bytes(bytes), name);
  ASSERT_FALSE(r.ok()) << name << " parsed";
  EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().ToString();
}

TEST(GgufFixture, ReadsLlamaCppGpt2Vocab) {
  const std::string path = std::string(ARLE_TEST_DATA_DIR) + "/tokenizer/ggml-vocab-gpt-2.gguf.gz";
  auto bytes = ReadMaybeGzipFile(path);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto g = GgufFile::Parse(Bytes(*bytes), path);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->version(), 3u);
  EXPECT_EQ(g->metadata().size(), 16u);
  EXPECT_EQ(g->tensors().size(), 0u);
  EXPECT_EQ(g->alignment(), 32u);
  EXPECT_EQ(*g->GetString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(*g->GetString("general.architecture"), "gpt2");
  const GgufValue* tokens = g->Find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_NE(tokens->AsArray(), nullptr);
  EXPECT_EQ(tokens->AsArray()->element_type, GgufType::kString);
  // GPT-2's vocabulary: 50257 tokens, the first is "!" (byte 0x21), the last <|endoftext|>.
  const auto& values = tokens->AsArray()->values;
  ASSERT_EQ(values.size(), 50257u);
  EXPECT_EQ(*values.front().AsString(), "!");
  EXPECT_EQ(*values.back().AsString(), "<|endoftext|>");
  EXPECT_EQ(*g->GetInt("tokenizer.ggml.eos_token_id"), 50256);
  // Typed lookups: NotFound and InvalidArgument.
  EXPECT_EQ(g->GetInt("no.such.key").status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(g->GetInt("tokenizer.ggml.model").status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(g->GetString("tokenizer.ggml.eos_token_id").status().code(),
            core::StatusCode::kInvalidArgument);
}

TEST(GgufTypes, MatchGgufPy) {
  // gguf-py constants.py GGMLQuantizationType and GGML_QUANT_SIZES (block size, type size), QK_K
  // 256; every size also matches ggml-common.h's block_* static_asserts.
  struct Row {
    uint32_t id;
    core::DType dtype;
    int64_t block_elems, block_bytes;
  };
  constexpr int64_t kQkK = 256;
  const std::vector<Row> rows = {
      {0, core::DType::kF32, 1, 4},
      {1, core::DType::kF16, 1, 2},
      {2, core::DType::kQ4_0, 32, 2 + 16},
      {3, core::DType::kQ4_1, 32, 2 + 2 + 16},
      {6, core::DType::kQ5_0, 32, 2 + 4 + 16},
      {7, core::DType::kQ5_1, 32, 2 + 2 + 4 + 16},
      {8, core::DType::kQ8_0, 32, 2 + 32},
      // gguf-py still lists Q8_1 as (32, 4 + 4 + 32), from when d and s were floats; ggml-common.h
      // has two ggml_half since 2024 (static_assert sizeof(block_q8_1) == 2*sizeof(ggml_half) + 32),
      // and ggml_type_size, which gguf.cpp uses, follows the struct.
      {9, core::DType::kQ8_1, 32, 2 + 2 + 32},
      {10, core::DType::kQ2_K, 256, 2 + 2 + kQkK / 16 + kQkK / 4},
      {11, core::DType::kQ3_K, 256, 2 + kQkK / 4 + kQkK / 8 + 12},
      {12, core::DType::kQ4_K, 256, 2 + 2 + kQkK / 2 + 12},
      {13, core::DType::kQ5_K, 256, 2 + 2 + kQkK / 2 + kQkK / 8 + 12},
      {14, core::DType::kQ6_K, 256, 2 + kQkK / 2 + kQkK / 4 + kQkK / 16},
      {15, core::DType::kQ8_K, 256, 4 + kQkK + kQkK / 8},
      {16, core::DType::kIQ2_XXS, 256, 2 + kQkK / 4},
      {17, core::DType::kIQ2_XS, 256, 2 + kQkK / 4 + kQkK / 32},
      {18, core::DType::kIQ3_XXS, 256, 2 + kQkK / 4 + kQkK / 8},
      {19, core::DType::kIQ1_S, 256, 2 + kQkK / 8 + kQkK / 16},
      {20, core::DType::kIQ4_NL, 32, 2 + 16},
      {21, core::DType::kIQ3_S, 256, 2 + kQkK / 4 + kQkK / 8 + kQkK / 32 + 4},
      {22, core::DType::kIQ2_S, 256, 2 + kQkK / 4 + kQkK / 16},
      {23, core::DType::kIQ4_XS, 256, 2 + 2 + kQkK / 2 + kQkK / 64},
      {24, core::DType::kI8, 1, 1},
      {25, core::DType::kI16, 1, 2},
      {26, core::DType::kI32, 1, 4},
      {27, core::DType::kI64, 1, 8},
      {28, core::DType::kF64, 1, 8},
      {29, core::DType::kIQ1_M, 256, kQkK / 8 + kQkK / 16 + kQkK / 32},
      {30, core::DType::kBF16, 1, 2},
      {34, core::DType::kTQ1_0, 256, 2 + 4 * 13},
      {35, core::DType::kTQ2_0, 256, 2 + 64},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.id);
    EXPECT_EQ(DTypeFromGgml(r.id), r.dtype);
    EXPECT_EQ(GgmlFromDType(r.dtype), r.id);
    EXPECT_EQ(core::GetDTypeInfo(r.dtype).block_elems, r.block_elems);
    EXPECT_EQ(core::GetDTypeInfo(r.dtype).block_bytes, r.block_bytes);
  }
  for (uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 1000u}) {
    EXPECT_FALSE(DTypeFromGgml(removed).has_value()) << removed;
  }
  EXPECT_FALSE(GgmlFromDType(core::DType::kU8).has_value());
  EXPECT_FALSE(GgmlFromDType(core::DType::kBool).has_value());
}

TEST(GgufRoundTrip, EveryMetadataTypeAndTensorKind) {
  TempDir dir;
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.Add("v.u8", GgufValue::U8(250));
  w.Add("v.i8", GgufValue::I8(-120));
  w.Add("v.u16", GgufValue::U16(65000));
  w.Add("v.i16", GgufValue::I16(-32000));
  w.AddU32("v.u32", 4000000000u);
  w.AddI32("v.i32", -2000000000);
  w.AddF32("v.f32", 0.1f);
  w.AddBool("v.bool", true);
  w.AddU64("v.u64", 18000000000000000000ull);
  w.Add("v.i64", GgufValue::I64(-9000000000000000000ll));
  w.Add("v.f64", GgufValue::F64(0.1));
  w.AddString("v.str", std::string("with\0nul", 8));
  w.AddStringArray("v.strs", {"a", "", "\xe2\x82\xac"});
  w.AddF32Array("v.f32s", {1.5f, -2.0f});
  w.AddI32Array("v.i32s", {});
  w.Add("v.nested", GgufValue::Array(GgufType::kArray,
                                     {GgufValue::Array(GgufType::kU8, {GgufValue::U8(1)}),
                                      GgufValue::Array(GgufType::kString, {GgufValue::String("x")})}));

  std::vector<float> f32 = {1, 2, 3, 4, 5, 6, -7, 8.5f};
  std::vector<uint16_t> f16, bf16;
  for (float v : f32) {
    f16.push_back(core::F32ToF16(v));
    bf16.push_back(core::F32ToBF16(v));
  }
  std::vector<uint8_t> q8(2 * 34);
  for (size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<uint8_t>(i * 7 + 3);
  w.AddTensor("t.f32", core::Tensor(f32.data(), core::DType::kF32, {2, 4}));
  w.AddTensor("t.f16", core::Tensor(f16.data(), core::DType::kF16, {8}));
  w.AddTensor("t.bf16", core::Tensor(bf16.data(), core::DType::kBF16, {2, 2, 1, 2}));
  w.AddTensor("t.q8_0", core::Tensor(q8.data(), core::DType::kQ8_0, {2, 32}));
  const std::string path = dir.File("all.gguf");
  ASSERT_TRUE(w.Write(path).ok());

  auto g = GgufFile::Open(path);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->version(), 3u);
  EXPECT_EQ(g->alignment(), 32u);
  EXPECT_EQ(g->Find("general.alignment"), nullptr);  // written only when not 32
  ASSERT_EQ(g->metadata().size(), 17u);
  EXPECT_EQ(g->metadata()[0].first, "general.architecture");  // insertion order kept
  EXPECT_EQ(g->Find("v.u8")->type, GgufType::kU8);
  EXPECT_EQ(*g->GetInt("v.u8"), 250);
  EXPECT_EQ(*g->GetInt("v.i8"), -120);
  EXPECT_EQ(g->Find("v.u16")->type, GgufType::kU16);
  EXPECT_EQ(*g->GetInt("v.u16"), 65000);
  EXPECT_EQ(*g->GetInt("v.i16"), -32000);
  EXPECT_EQ(*g->GetInt("v.u32"), 4000000000ll);
  EXPECT_EQ(*g->GetInt("v.i32"), -2000000000);
  EXPECT_EQ(*g->GetFloat("v.f32"), static_cast<double>(0.1f));
  EXPECT_EQ(g->Find("v.f32")->type, GgufType::kF32);
  EXPECT_EQ(g->Find("v.bool")->AsBool(), true);
  EXPECT_FALSE(g->Find("v.u64")->AsInt().has_value());  // above INT64_MAX
  EXPECT_EQ(std::get<uint64_t>(g->Find("v.u64")->value), 18000000000000000000ull);
  EXPECT_EQ(*g->GetInt("v.i64"), -9000000000000000000ll);
  EXPECT_EQ(*g->GetFloat("v.f64"), 0.1);
  EXPECT_EQ(*g->GetString("v.str"), std::string("with\0nul", 8));
  const GgufArray* strs = g->Find("v.strs")->AsArray();
  ASSERT_NE(strs, nullptr);
  ASSERT_EQ(strs->values.size(), 3u);
  EXPECT_EQ(*strs->values[2].AsString(), "\xe2\x82\xac");
  EXPECT_EQ(*g->Find("v.f32s")->AsArray()->values[1].AsFloat(), -2.0);
  EXPECT_EQ(g->Find("v.i32s")->AsArray()->element_type, GgufType::kI32);
  EXPECT_TRUE(g->Find("v.i32s")->AsArray()->values.empty());
  const GgufArray* nested = g->Find("v.nested")->AsArray();
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->values.size(), 2u);
  EXPECT_EQ(*nested->values[0].AsArray()->values[0].AsInt(), 1);
  EXPECT_EQ(*nested->values[1].AsArray()->values[0].AsString(), "x");

  ASSERT_EQ(g->tensors().size(), 4u);
  for (const GgufTensorInfo& info : g->tensors()) {
    EXPECT_EQ(info.offset % 32, 0u) << info.name;
    EXPECT_EQ((g->data_offset() + info.offset) % 32, 0u) << info.name;
  }
  auto t = g->GetTensor("t.f32");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->ToString(), "f32[2, 4]");
  EXPECT_EQ(std::memcmp(t->data(), f32.data(), 32), 0);
  EXPECT_EQ(g->FindTensor("t.f32")->ggml_type, 0u);
  t = g->GetTensor("t.f16");
  EXPECT_EQ(t->ToString(), "f16[8]");
  EXPECT_EQ(std::memcmp(t->data(), f16.data(), 16), 0);
  t = g->GetTensor("t.bf16");
  EXPECT_EQ(t->ToString(), "bf16[2, 2, 1, 2]");
  EXPECT_EQ(g->FindTensor("t.bf16")->ggml_type, 30u);
  EXPECT_EQ(std::memcmp(t->data(), bf16.data(), 16), 0);
  t = g->GetTensor("t.q8_0");
  EXPECT_EQ(t->ToString(), "q8_0[2, 32]");
  EXPECT_EQ(g->FindTensor("t.q8_0")->ggml_type, 8u);
  EXPECT_EQ(g->FindTensor("t.q8_0")->nbytes, 68u);
  EXPECT_EQ(std::memcmp(t->data(), q8.data(), q8.size()), 0);
  EXPECT_EQ(g->GetTensor("missing").status().code(), core::StatusCode::kNotFound);

  // Parse from memory gives the same result as Open.
  auto bytes = core::ReadFile(path);
  ASSERT_TRUE(bytes.ok());
  auto mem = GgufFile::Parse(Bytes(*bytes), "in-memory");
  ASSERT_TRUE(mem.ok()) << mem.status().ToString();
  EXPECT_EQ(mem->tensors().size(), 4u);
  EXPECT_EQ(mem->data_offset(), g->data_offset());
}

TEST(GgufRoundTrip, NonDefaultAlignment) {
  TempDir dir;
  GgufWriter w;
  w.SetAlignment(64);
  w.AddU32("k", 1);
  std::vector<float> a(3, 1.0f), b(5, 2.0f);
  w.AddTensor("a", core::Tensor(a.data(), core::DType::kF32, {3}));
  w.AddTensor("b", core::Tensor(b.data(), core::DType::kF32, {5}));
  const std::string path = dir.File("aligned.gguf");
  ASSERT_TRUE(w.Write(path).ok());
  auto g = GgufFile::Open(path);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->alignment(), 64u);
  EXPECT_EQ(*g->GetInt("general.alignment"), 64);
  EXPECT_EQ(g->Find("general.alignment")->type, GgufType::kU32);
  EXPECT_EQ(g->data_offset() % 64, 0u);
  EXPECT_EQ(g->FindTensor("b")->offset, 64u);
  EXPECT_EQ(static_cast<const float*>(g->GetTensor("b")->data())[4], 2.0f);
}

TEST(GgufWeights, ConverterRuleForF32) {
  EXPECT_TRUE(GgufStoresAsF32("blk.0.attn_norm.weight", 1));
  EXPECT_TRUE(GgufStoresAsF32("blk.0.attn_q.bias", 1));
  EXPECT_TRUE(GgufStoresAsF32("x.weight", 0));
  EXPECT_TRUE(GgufStoresAsF32("blk.0.conv_norm.weight", 2));  // "_norm.weight" at any rank
  EXPECT_TRUE(GgufStoresAsF32("blk.0.attn_q.bias", 2));       // not ".weight"
  EXPECT_FALSE(GgufStoresAsF32("blk.0.attn_q.weight", 2));
  EXPECT_FALSE(GgufStoresAsF32("token_embd.weight", 2));
}

// AddWeight widens f16/bf16 norms and biases exactly into its own storage and leaves matrices
// (and f32 tensors) as they are.
TEST(GgufWeights, NormsAndBiasesAreWrittenInF32) {
  TempDir dir;
  const std::vector<float> values = {1.0f, -0.5f, 3.140625f, 256.0f};  // exact in f16 and bf16
  std::vector<uint16_t> f16, bf16;
  for (float v : values) {
    f16.push_back(core::F32ToF16(v));
    bf16.push_back(core::F32ToBF16(v));
  }
  std::vector<uint16_t> norm = bf16, bias = f16;  // overwritten after AddWeight, before Write
  std::vector<float> f32 = values;
  GgufWriter w;
  struct Case {
    std::string name;
    core::Tensor tensor;
    core::DType written;
  };
  const std::vector<Case> cases = {
      {"output_norm.weight", core::Tensor(norm.data(), core::DType::kBF16, {4}), core::DType::kF32},
      {"blk.0.attn_q.bias", core::Tensor(bias.data(), core::DType::kF16, {4}), core::DType::kF32},
      {"blk.0.attn_k_norm.weight", core::Tensor(f32.data(), core::DType::kF32, {4}),
       core::DType::kF32},
      {"blk.0.attn_q.weight", core::Tensor(bf16.data(), core::DType::kBF16, {2, 2}),
       core::DType::kBF16},
      {"blk.0.ffn_up.weight", core::Tensor(f16.data(), core::DType::kF16, {2, 2}),
       core::DType::kF16},
  };
  for (const Case& c : cases) {
    const core::Tensor added = w.AddWeight(c.name, c.tensor);
    EXPECT_EQ(added.dtype(), c.written) << c.name;
    EXPECT_TRUE(std::ranges::equal(added.shape(), c.tensor.shape())) << c.name;
  }
  std::fill(norm.begin(), norm.end(), uint16_t{0});
  std::fill(bias.begin(), bias.end(), uint16_t{0});
  const std::string path = dir.File("weights.gguf");
  ASSERT_TRUE(w.Write(path).ok());
  auto g = GgufFile::Open(path);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  for (const Case& c : cases) {
    auto t = g->GetTensor(c.name);
    ASSERT_TRUE(t.ok()) << c.name;
    EXPECT_EQ(t->dtype(), c.written) << c.name;
  }
  for (const char* name : {"output_norm.weight", "blk.0.attn_q.bias"}) {
    const auto* got = static_cast<const float*>(g->GetTensor(name)->data());
    EXPECT_EQ(std::vector<float>(got, got + 4), values) << name;
  }
}

TEST(GgufReader, UnknownGgmlTypeIsReportedNotFatal) {
  Builder b;
  b.Header(3, 1, 0).TensorInfo("odd", {32}, 31, 0).PadTo(32).Zeros(64);
  auto g = GgufFile::Parse(Bytes(b.str()), "odd.gguf");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->tensors()[0].ggml_type, 31u);
  EXPECT_FALSE(g->tensors()[0].dtype.has_value());
  auto t = g->GetTensor("odd");
  EXPECT_EQ(t.status().code(), core::StatusCode::kUnimplemented);
  EXPECT_NE(t.status().message().find("31"), std::string::npos) << t.status().ToString();
}

TEST(GgufReader, Version2IsRead) {
  Builder b;
  b.Header(2, 0, 1).KvU32("k", 9);
  auto g = GgufFile::Parse(Bytes(b.str()), "v2.gguf");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->version(), 2u);
  EXPECT_EQ(*g->GetInt("k"), 9);
}

TEST(GgufCorrupt, EveryTruncationFails) {
  const std::string full = SmallValidFile();
  ASSERT_TRUE(GgufFile::Parse(Bytes(full), "full.gguf").ok());
  // The tensor's 32 bytes end the file, so every shorter prefix lacks data.
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    ExpectFailsNamingFile(full.substr(0, n), "trunc.gguf");
  }
}

TEST(GgufCorrupt, Table) {
  struct Case {
    const char* what;
    std::string bytes;
  };
  std::vector<Case> cases;
  auto add = [&](const char* what, const Builder& b) { cases.push_back({what, b.str()}); };
  {
    std::string s = SmallValidFile();
    s[0] = 'X';
    cases.push_back({"wrong magic", s});
  }
  add("version 1", Builder().Header(1, 0, 1).KvU32("k", 1));
  add("version 4", Builder().Header(4, 0, 1).KvU32("k", 1));
  add("huge string length", Builder().Header(3, 0, 1).U64(uint64_t{1} << 60).U32(4).U32(1));
  add("huge string value",
      Builder().Header(3, 0, 1).Str("k").U32(8).U64(uint64_t{1} << 62).Zeros(16));
  add("huge array count",
      Builder().Header(3, 0, 1).Str("k").U32(9).U32(4).U64(uint64_t{1} << 60).Zeros(16));
  add("huge array of arrays",
      Builder().Header(3, 0, 1).Str("k").U32(9).U32(9).U64(uint64_t{1} << 40).Zeros(64));
  add("huge tensor count", Builder().Header(3, uint64_t{1} << 60, 0).Zeros(64));
  add("huge kv count", Builder().Header(3, 0, uint64_t{1} << 60).Zeros(64));
  add("unknown metadata type", Builder().Header(3, 0, 1).Str("k").U32(13).U32(1));
  add("unknown array element type",
      Builder().Header(3, 0, 1).Str("k").U32(9).U32(77).U64(1).U32(0));
  add("bool not 0/1", Builder().Header(3, 0, 1).Str("k").U32(7).U8(2));
  add("duplicate key", Builder().Header(3, 0, 2).KvU32("k", 1).KvU32("k", 2));
  add("alignment not a power of two",
      Builder().Header(3, 0, 1).KvU32("general.alignment", 48));
  add("alignment zero", Builder().Header(3, 0, 1).KvU32("general.alignment", 0));
  add("n_dims 0", Builder().Header(3, 1, 0).TensorInfo("t", {}, 0, 0).PadTo(32).Zeros(32));
  add("n_dims 5",
      Builder().Header(3, 1, 0).TensorInfo("t", {1, 1, 1, 1, 1}, 0, 0).PadTo(32).Zeros(32));
  add("dims product overflow", Builder()
                                   .Header(3, 1, 0)
                                   .TensorInfo("t", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, 0)
                                   .PadTo(32)
                                   .Zeros(32));
  add("negative dim",
      Builder().Header(3, 1, 0).TensorInfo("t", {~uint64_t{0}}, 0, 0).PadTo(32).Zeros(32));
  add("byte size overflow", Builder()
                                .Header(3, 1, 0)
                                .TensorInfo("t", {uint64_t{1} << 31, uint64_t{1} << 31}, 0, 0)
                                .PadTo(32)
                                .Zeros(32));
  add("offset past the end",
      Builder().Header(3, 1, 0).TensorInfo("t", {8}, 0, 64).PadTo(32).Zeros(32));
  add("offset near 2^64",
      Builder().Header(3, 1, 0).TensorInfo("t", {8}, 0, ~uint64_t{31}).PadTo(32).Zeros(32));
  add("data runs past the end",
      Builder().Header(3, 1, 0).TensorInfo("t", {16}, 0, 0).PadTo(32).Zeros(32));
  add("unaligned offset",
      Builder().Header(3, 1, 0).TensorInfo("t", {1}, 0, 4).PadTo(32).Zeros(64));
  add("q8_0 row not a block multiple",
      Builder().Header(3, 1, 0).TensorInfo("t", {16}, 8, 0).PadTo(32).Zeros(64));
  add("duplicate tensor name", Builder()
                                   .Header(3, 2, 0)
                                   .TensorInfo("t", {8}, 0, 0)
                                   .TensorInfo("t", {8}, 0, 32)
                                   .PadTo(32)
                                   .Zeros(64));
  add("huge tensor name", Builder().Header(3, 1, 0).U64(uint64_t{1} << 60).Zeros(40));
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ExpectFailsNamingFile(c.bytes, std::string("corrupt-") + c.what + ".gguf");
  }
}

TEST(GgufCorrupt, DeepNestingIsBounded) {
  // 10000 nested arrays of one element each: must be rejected without exhausting the stack.
  Builder b;
  b.Header(3, 0, 1).Str("k").U32(9);
  for (int i = 0; i < 10000; ++i) b.U32(9).U64(1);
  b.U32(0).U64(0);
  ExpectFailsNamingFile(b.str(), "deep.gguf");
}

TEST(GgufCorrupt, OpenNamesMissingFile) {
  auto g = GgufFile::Open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("/nonexistent/dir/model.gguf"), std::string::npos);
}

}  // namespace
}  // namespace arle::io
