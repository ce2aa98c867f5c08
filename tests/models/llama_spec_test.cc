// Tests for the llama spec's config.json side (llama_spec.cc): the real Qwen3-0.6B, Qwen3-4B and
// stories260K config.json files (expected fields extracted from the files by
// tests/io/make_io_goldens.py), rope_scaling variants, errors, ToHfConfigJson and
// ToGenerationConfigJson round trips, and stories260K's Hugging Face safetensors holding what its
// config.json implies.
#include "arle/models/llama/llama_spec.h"

#include <gtest/gtest.h>

#include "tests/common/temp_dir.h"
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "arle/core/file_util.h"
#include "arle/io/compressed.h"
#include "arle/io/safetensors.h"

namespace arle::models::llama {
namespace {

using json = nlohmann::json;

const std::string kDataDir = std::string(ARLE_TEST_DATA_DIR) + "/io";

std::string ReadOrDie(const std::string& path) {
  auto s = core::ReadFile(path);
  ARLE_CHECK(s.ok()) << s.status().ToString();
  return *s;
}

using ::arle::test::TempDir;

core::DType TorchDType(const std::string& name) {
  if (name == "bfloat16") return core::DType::kBF16;
  if (name == "float16") return core::DType::kF16;
  ARLE_CHECK(name == "float32") << name;
  return core::DType::kF32;
}

json Stories() { return json::parse(ReadOrDie(kDataDir + "/stories260K.config.json")); }
json Qwen06() { return json::parse(ReadOrDie(kDataDir + "/Qwen3-0.6B.config.json")); }

core::StatusOr<LlamaConfig> Parse(const json& j, const std::string& source = "test/config.json") {
  return ParseHfConfig(j.dump(), source);
}

void ExpectSameConfig(const LlamaConfig& a, const LlamaConfig& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.hf_architecture, b.hf_architecture);
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.n_layer, b.n_layer);
  EXPECT_EQ(a.n_head, b.n_head);
  EXPECT_EQ(a.n_head_kv, b.n_head_kv);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.n_ff, b.n_ff);
  EXPECT_EQ(a.n_ctx_train, b.n_ctx_train);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position_embeddings,
            b.rope_scaling.original_max_position_embeddings);
  EXPECT_EQ(a.rope_scaling.beta_fast, b.rope_scaling.beta_fast);
  EXPECT_EQ(a.rope_scaling.beta_slow, b.rope_scaling.beta_slow);
  EXPECT_EQ(a.rope_scaling.attention_factor, b.rope_scaling.attention_factor);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.mlp_bias, b.mlp_bias);
  EXPECT_EQ(a.qk_norm, b.qk_norm);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
}

TEST(HfConfig, RealConfigsMatchTheFiles) {
  const json expected = json::parse(ReadOrDie(kDataDir + "/configs.expected.json"));
  ASSERT_EQ(expected.size(), 3u);
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    SCOPED_TRACE(it.key());
    const json& e = it.value();
    const std::string path = kDataDir + "/" + it.key();
    auto c = ParseHfConfig(ReadOrDie(path), path);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    const std::string arch = e["hf_architecture"];
    EXPECT_EQ(c->hf_architecture, arch);
    EXPECT_EQ(c->arch, arch == "Qwen3ForCausalLM" ? Architecture::kQwen3 : Architecture::kLlama);
    EXPECT_EQ(c->n_vocab, e["n_vocab"].get<int64_t>());
    EXPECT_EQ(c->n_embd, e["n_embd"].get<int64_t>());
    EXPECT_EQ(c->n_layer, e["n_layer"].get<int64_t>());
    EXPECT_EQ(c->n_head, e["n_head"].get<int64_t>());
    EXPECT_EQ(c->n_head_kv, e["n_head_kv"].get<int64_t>());
    EXPECT_EQ(c->head_dim, e["head_dim"].get<int64_t>());
    EXPECT_EQ(c->n_ff, e["n_ff"].get<int64_t>());
    EXPECT_EQ(c->n_ctx_train, e["n_ctx_train"].get<int64_t>());
    EXPECT_EQ(c->norm_eps, e["norm_eps"].get<double>());
    EXPECT_EQ(c->rope_theta, e["rope_theta"].get<double>());
    EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kNone);
    EXPECT_EQ(c->tie_word_embeddings, e["tie_word_embeddings"].get<bool>());
    EXPECT_EQ(c->attention_bias, e["attention_bias"].get<bool>());
    EXPECT_FALSE(c->mlp_bias);
    EXPECT_EQ(c->qk_norm, e["qk_norm"].get<bool>());
    EXPECT_EQ(c->bos_token_id, e["bos_token_id"].get<int64_t>());
    EXPECT_EQ(c->eos_token_ids, e["eos_token_ids"].get<std::vector<int64_t>>());
    EXPECT_EQ(c->torch_dtype, TorchDType(e["torch_dtype"]));
  }
}

TEST(HfConfig, LoadDirMergesGenerationConfig) {
  TempDir dir;
  ASSERT_TRUE(core::WriteFileAtomic(dir.Path("config.json"),
                                    ReadOrDie(kDataDir + "/Qwen3-0.6B.config.json"))
                  .ok());
  // Qwen3-0.6B's own generation_config.json ids (plus unrelated sampling fields).
  ASSERT_TRUE(core::WriteFileAtomic(dir.Path("generation_config.json"),
                                    R"({"bos_token_id": 151643, "do_sample": true,
                                        "eos_token_id": [151645, 151643], "temperature": 0.6})")
                  .ok());
  auto c = LoadHfConfig(dir.path());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  EXPECT_EQ(c->bos_token_id, 151643);

  TempDir empty;
  auto missing = LoadHfConfig(empty.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(empty.path()), std::string::npos);

  ASSERT_TRUE(core::WriteFileAtomic(dir.Path("generation_config.json"), "{oops").ok());
  auto bad = LoadHfConfig(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("generation_config.json"), std::string::npos);
}

TEST(HfConfig, MergeGenerationConfigKeepsOrderAndDropsDuplicates) {
  auto c = Parse(Stories());
  ASSERT_TRUE(c.ok());
  LlamaConfig config = *c;
  ASSERT_EQ(config.eos_token_ids, std::vector<int64_t>{2});
  ASSERT_TRUE(MergeGenerationConfig(R"({"eos_token_id": [7, 2, 9, 7]})", "gen.json", &config).ok());
  EXPECT_EQ(config.eos_token_ids, (std::vector<int64_t>{2, 7, 9}));
  EXPECT_EQ(config.bos_token_id, 1);
  ASSERT_TRUE(MergeGenerationConfig(R"({"eos_token_id": 11, "bos_token_id": 5})", "gen.json",
                                    &config)
                  .ok());
  EXPECT_EQ(config.eos_token_ids, (std::vector<int64_t>{2, 7, 9, 11}));
  EXPECT_EQ(config.bos_token_id, 5);
  auto bad = MergeGenerationConfig(R"({"eos_token_id": "two"})", "gen.json", &config);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("gen.json"), std::string::npos);
}

TEST(HfConfig, LlamaDefaults) {
  json j = Stories();
  j.erase("num_key_value_heads");
  j.erase("head_dim");
  j.erase("tie_word_embeddings");
  j.erase("attention_bias");
  j.erase("mlp_bias");
  j.erase("torch_dtype");
  j.erase("rope_theta");
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->n_head_kv, c->n_head);
  EXPECT_EQ(c->head_dim, j["hidden_size"].get<int64_t>() / j["num_attention_heads"].get<int64_t>());
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_FALSE(c->mlp_bias);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_EQ(c->torch_dtype, core::DType::kF32);
  EXPECT_EQ(c->rope_theta, 10000.0);

  j["mlp_bias"] = true;
  j["attention_bias"] = true;
  j["dtype"] = "bfloat16";  // transformers 5 spells torch_dtype "dtype"
  j["eos_token_id"] = json::array({2, 3});
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->mlp_bias);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_EQ(c->torch_dtype, core::DType::kBF16);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{2, 3}));
}

TEST(HfConfig, RopeScaling) {
  // Meta-Llama-3.1-8B's block.
  json j = Stories();
  j["rope_scaling"] = {{"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192},
                       {"rope_type", "llama3"}};
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_EQ(c->rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c->rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);

  // Qwen3's documented YaRN block.
  json q = Qwen06();
  q["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0},
                       {"original_max_position_embeddings", 32768}};
  c = Parse(q);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kYarn);
  EXPECT_EQ(c->rope_scaling.factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 32768);
  EXPECT_EQ(c->rope_scaling.beta_fast, 32.0);
  EXPECT_EQ(c->rope_scaling.beta_slow, 1.0);

  // Legacy "type" key.
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kLinear);
  EXPECT_EQ(c->rope_scaling.factor, 2.0);

  j["rope_scaling"] = {{"rope_type", "default"}};
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kNone);

  for (const char* type : {"dynamic", "longrope", "su", "banana"}) {
    j["rope_scaling"] = {{"rope_type", type}, {"factor", 2.0}};
    c = Parse(j);
    ASSERT_FALSE(c.ok()) << type;
    EXPECT_EQ(c.status().code(), core::StatusCode::kUnimplemented) << type;
    EXPECT_NE(c.status().message().find(type), std::string::npos) << c.status().message();
  }
  j["rope_scaling"] = {{"rope_type", "linear"}};  // no factor
  EXPECT_FALSE(Parse(j).ok());
  j["rope_scaling"] = "llama3";
  EXPECT_FALSE(Parse(j).ok());
}

TEST(HfConfig, MissingRequiredFields) {
  for (const char* field : {"hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "vocab_size"}) {
    for (const json& base : {Stories(), Qwen06()}) {
      json j = base;
      j.erase(field);
      auto c = Parse(j, "some/dir/config.json");
      ASSERT_FALSE(c.ok()) << field;
      EXPECT_EQ(c.status().code(), core::StatusCode::kInvalidArgument) << field;
      EXPECT_NE(c.status().message().find(field), std::string::npos) << c.status().message();
      EXPECT_NE(c.status().message().find("some/dir/config.json"), std::string::npos)
          << c.status().message();
    }
  }
}

TEST(HfConfig, UnknownArchitecture) {
  json j = Stories();
  j["architectures"] = {"MistralForCausalLM"};
  j["model_type"] = "mistral";
  auto c = Parse(j, "m/config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), core::StatusCode::kUnimplemented);
  const std::string& msg = c.status().message();
  EXPECT_NE(msg.find("MistralForCausalLM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Qwen3ForCausalLM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("LlamaForCausalLM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("m/config.json"), std::string::npos) << msg;
}

TEST(HfConfig, InvalidValues) {
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
  };
  const std::vector<Case> cases = {
      {"hidden_size string", [](json& j) { j["hidden_size"] = "64"; }},
      {"hidden_size zero", [](json& j) { j["hidden_size"] = 0; }},
      {"layers negative", [](json& j) { j["num_hidden_layers"] = -5; }},
      {"heads not multiple of kv", [](json& j) { j["num_key_value_heads"] = 3; }},
      {"kv zero", [](json& j) { j["num_key_value_heads"] = 0; }},
      {"eps string", [](json& j) { j["rms_norm_eps"] = "1e-5"; }},
      {"tie not bool", [](json& j) { j["tie_word_embeddings"] = "yes"; }},
      {"eos string", [](json& j) { j["eos_token_id"] = "2"; }},
      {"architectures not list", [](json& j) { j["architectures"] = "LlamaForCausalLM"; }},
      {"bad torch_dtype", [](json& j) { j["torch_dtype"] = "int4"; }},
      {"hidden_act gelu", [](json& j) { j["hidden_act"] = "gelu"; }},
  };
  for (const Case& c : cases) {
    json j = Stories();
    c.edit(j);
    auto r = Parse(j, "cfg/config.json");
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_NE(r.status().message().find("cfg/config.json"), std::string::npos)
        << c.what << ": " << r.status().message();
  }
  // 1e400 overflows a double: nlohmann reports it as out_of_range, which must not escape.
  for (const char* text : {"", "{", "[1,2]", "null", "\"config\"", "{\"hidden_size\": 1e400}",
                           "{\"architectures\": [\"LlamaForCausalLM\"], \"x\": -1e999}"}) {
    auto r = ParseHfConfig(text, "junk/config.json");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find("junk/config.json"), std::string::npos);
  }
}

TEST(HfConfig, ToHfConfigJsonRoundTrips) {
  std::vector<json> inputs;
  for (const char* name : {"Qwen3-0.6B.config.json", "Qwen3-4B.config.json",
                           "stories260K.config.json"}) {
    inputs.push_back(json::parse(ReadOrDie(kDataDir + "/" + name)));
  }
  json llama3 = Stories();
  llama3["rope_scaling"] = {{"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}, {"rope_type", "llama3"}};
  llama3["eos_token_id"] = {128001, 128008, 128009};
  llama3["vocab_size"] = 128256;
  llama3["mlp_bias"] = true;
  inputs.push_back(llama3);
  json yarn = Qwen06();
  yarn["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0},
                          {"original_max_position_embeddings", 32768}, {"beta_fast", 16.0},
                          {"attention_factor", 1.2}};
  yarn["tie_word_embeddings"] = false;
  yarn["attention_bias"] = true;
  yarn["torch_dtype"] = "float16";
  inputs.push_back(yarn);
  json linear = Stories();
  linear["rope_scaling"] = {{"type", "linear"}, {"factor", 2.5}};
  linear.erase("bos_token_id");
  linear.erase("eos_token_id");
  inputs.push_back(linear);

  for (const json& in : inputs) {
    SCOPED_TRACE(in.dump());
    auto a = Parse(in);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    const std::string text = ToHfConfigJson(*a);
    const json out = json::parse(text);
    // The fields transformers writes, with transformers' spellings.
    EXPECT_EQ(out["architectures"], json::array({a->hf_architecture}));
    EXPECT_EQ(out["model_type"], std::string(ArchitectureName(a->arch)));
    EXPECT_EQ(out["hidden_act"], "silu");
    for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "num_key_value_heads", "head_dim",
                            "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta",
                            "rope_scaling", "tie_word_embeddings", "attention_bias",
                            "bos_token_id", "eos_token_id", "torch_dtype"}) {
      EXPECT_TRUE(out.contains(key)) << key;
    }
    if (a->arch == Architecture::kLlama) EXPECT_TRUE(out.contains("mlp_bias"));
    if (a->eos_token_ids.size() == 1) {
      EXPECT_TRUE(out["eos_token_id"].is_number_integer());
    } else if (a->eos_token_ids.size() > 1) {
      EXPECT_TRUE(out["eos_token_id"].is_array());
    }
    if (a->rope_scaling.type == RopeScaling::Type::kNone) {
      EXPECT_TRUE(out["rope_scaling"].is_null());
    }
    // The values of the input file survive.
    for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "vocab_size", "max_position_embeddings",
                            "rms_norm_eps", "tie_word_embeddings"}) {
      EXPECT_EQ(out[key], in[key]) << key;
    }
    auto b = ParseHfConfig(text, "roundtrip/config.json");
    ASSERT_TRUE(b.ok()) << b.status().ToString() << "\n" << text;
    ExpectSameConfig(*a, *b);

    // generation_config.json carries bos/eos.
    LlamaConfig blank = *a;
    blank.eos_token_ids.clear();
    blank.bos_token_id = -1;
    ASSERT_TRUE(MergeGenerationConfig(ToGenerationConfigJson(*a), "gen", &blank).ok());
    EXPECT_EQ(blank.eos_token_ids, a->eos_token_ids);
    EXPECT_EQ(blank.bos_token_id, a->bos_token_id);
  }
}

TEST(HfConfig, Stories260KSafetensorsMatchTheConfig) {
  // A real HF-layout checkpoint (committed gzip-compressed): every tensor a LlamaForCausalLM with
  // this config.json has, with the shapes transformers gives it.
  auto bytes = io::ReadMaybeGzipFile(kDataDir + "/stories260K_hf.safetensors.gz");
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
  auto file = io::SafetensorsFile::Parse(span, "stories260K");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto config = ParseHfConfig(ReadOrDie(kDataDir + "/stories260K.config.json"),
                              "stories260K.config.json");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const int64_t d = config->n_embd, q = config->n_head * config->head_dim,
                kv = config->n_head_kv * config->head_dim, ff = config->n_ff;
  std::map<std::string, std::vector<int64_t>> want = {
      {"model.embed_tokens.weight", {config->n_vocab, d}}, {"model.norm.weight", {d}}};
  if (!config->tie_word_embeddings) want["lm_head.weight"] = {config->n_vocab, d};
  for (int64_t l = 0; l < config->n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    want[p + "input_layernorm.weight"] = {d};
    want[p + "post_attention_layernorm.weight"] = {d};
    want[p + "self_attn.q_proj.weight"] = {q, d};
    want[p + "self_attn.k_proj.weight"] = {kv, d};
    want[p + "self_attn.v_proj.weight"] = {kv, d};
    want[p + "self_attn.o_proj.weight"] = {d, q};
    want[p + "mlp.gate_proj.weight"] = {ff, d};
    want[p + "mlp.up_proj.weight"] = {ff, d};
    want[p + "mlp.down_proj.weight"] = {d, ff};
  }
  ASSERT_EQ(file->entries().size(), want.size());
  for (const auto& [name, shape] : want) {
    const io::SafetensorsEntry* e = file->Find(name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->shape, shape) << name;
    EXPECT_EQ(e->dtype, config->torch_dtype) << name;
  }
}

}  // namespace
}  // namespace arle::models::llama
