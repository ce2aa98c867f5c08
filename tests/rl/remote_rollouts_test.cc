// Rollouts from rollout servers (`arle train grpo --rollout-url`): two in-process OpenAI servers
// in --accept-weights mode (writable f32 weights, the trainer's product order, f32 K/V) take the
// policy's weights over POST /v1/admin/weights, and then return exactly the tokens, log-probs,
// texts and finish reasons of the policy's own engine; after an update and a push, again. Bad
// pushes (wrong key, read-only weights, another config, a missing tensor, a body that is no
// safetensors) are refused with their reason and leave the server's weights unchanged.
#include "arle/rl/remote_rollouts.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "arle/io/http_client.h"
#include "arle/rl/policy.h"
#include "arle/rl/rollout.h"
#include "arle/server/admin_weights.h"
#include "arle/server/http_server.h"
#include "arle/server/openai_service.h"
#include "tests/models/tiny_model.h"
#include "tests/rl/tiny_policy.h"
#include "tests/runtime/engine_test_util.h"

namespace arle::rl {
namespace {

using runtime::testing::TestTokenizer;
constexpr const char* kKey = "test-key";

models::llama::LlamaConfig Config() { return testing::TinyPolicyConfig(); }

std::unique_ptr<Policy> MakePolicy() {
  PolicyOptions o;
  o.n_threads = 1;
  o.engine.max_batch_tokens = 64;
  return testing::MakeTinyPolicy(11, o);
}

// `arle serve --accept-weights --api-key` in process, starting from other (random) weights.
struct RolloutServer {
  std::unique_ptr<models::llama::LlamaModel> model;
  std::unique_ptr<runtime::Engine> engine;
  std::unique_ptr<server::OpenAiService> service;
  std::unique_ptr<server::HttpServer> http;

  explicit RolloutServer(bool writable, uint64_t seed) {
    const auto config = Config();
    models::LoadOptions load;
    load.n_threads = 1;
    load.writable_weights = writable;
    load.float_matmul = kernels::FloatMatMul::kGemm;
    auto m = models::testing::BuildTiny(
        config, models::testing::TinyModelWeights(config, core::DType::kF32, seed), load);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    model = std::move(*m);
    runtime::EngineOptions eo;
    eo.kv_cache_bytes = 8LL << 20;
    eo.max_batch_tokens = 48;  // other chunking than the policy's engine
    eo.max_seqs = 16;
    auto e = runtime::Engine::Create(*model, TestTokenizer(), eo);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    engine = std::move(*e);
    server::OpenAiServiceOptions so;
    so.served_model_name = "tiny";
    so.default_stop = runtime::DefaultStopParams(*model, TestTokenizer());
    so.render_chat = [](std::string_view, std::string_view, bool,
                        std::string_view) -> core::StatusOr<std::string> {
      return core::UnimplementedError("no chat template");
    };
    service = std::make_unique<server::OpenAiService>(*engine, so);
    server::HttpServerOptions ho;
    ho.port = 0;
    ho.api_key = kKey;
    ho.max_body_bytes = 1 << 16;  // the weights need the route's own, larger limit
    http = std::make_unique<server::HttpServer>(ho);
    service->RegisterRoutes(*http);
    server::RegisterAdminWeightsRoute(*http, *engine, *model,
                                      server::AdminWeightsBodyLimit(model->info().n_params));
    EXPECT_TRUE(http->Start().ok());
  }
  ~RolloutServer() {
    http->Stop(std::chrono::milliseconds(0));
    engine.reset();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(http->port()); }
};

const std::vector<std::vector<int32_t>> kPrompts = {{5, 17, 3}, {42, 8, 8, 1, 60}, {7}};
const std::vector<uint64_t> kSeeds = {101, 202, 303};

RolloutParams Params() {
  RolloutParams p;
  p.n = 5;
  p.temperature = 0.8f;
  p.top_p = 0.95f;
  p.max_tokens = 9;
  return p;
}

void ExpectSame(const std::vector<std::vector<RolloutSample>>& a,
                const std::vector<std::vector<RolloutSample>>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].size(), b[i].size());
    for (size_t g = 0; g < a[i].size(); ++g) {
      SCOPED_TRACE("prompt " + std::to_string(i) + " sample " + std::to_string(g));
      EXPECT_EQ(a[i][g].ids, b[i][g].ids);
      EXPECT_EQ(a[i][g].logprobs, b[i][g].logprobs);  // bit for bit
      EXPECT_EQ(a[i][g].text, b[i][g].text);
      EXPECT_EQ(a[i][g].finish, b[i][g].finish);
    }
  }
}

TEST(RemoteRolloutsTest, ServersSampleExactlyAsTheInProcessEngineBeforeAndAfterAnUpdate) {
  auto policy = MakePolicy();
  RolloutServer s1(true, 77), s2(true, 78);
  auto remote = RemoteRollouts::Create({.urls = {s1.url(), s2.url()}, .api_key = kKey});
  ASSERT_TRUE(remote.ok()) << remote.status().ToString();
  Rollouts local(policy->engine(), policy->model());

  ASSERT_TRUE((*remote)->PushWeights(Config(), policy->engine_weights(), 0).ok());
  auto want = local.Run(kPrompts, Params(), kSeeds);
  auto got = (*remote)->Run(kPrompts, Params(), kSeeds);
  ASSERT_TRUE(want.ok() && got.ok()) << got.status().ToString();
  ExpectSame(*want, *got);

  // An update the servers must see: every weight scaled. Their prefix caches hold the prompts'
  // K/V from the old weights, which must not be reused.
  ASSERT_TRUE(testing::ScaleEveryWeight(*policy, 1.25f).ok());
  ASSERT_TRUE((*remote)->PushWeights(Config(), policy->engine_weights(), 1).ok());
  auto want2 = local.Run(kPrompts, Params(), kSeeds);
  auto got2 = (*remote)->Run(kPrompts, Params(), kSeeds);
  ASSERT_TRUE(want2.ok() && got2.ok()) << got2.status().ToString();
  ExpectSame(*want2, *got2);
  EXPECT_NE((*want)[0][0].logprobs, (*want2)[0][0].logprobs);
}

TEST(RemoteRolloutsTest, BadPushesAreRefusedAndChangeNothing) {
  auto policy = MakePolicy();
  RolloutServer writable(true, 77), read_only(false, 77);
  Rollouts local(policy->engine(), policy->model());
  const auto& w = policy->engine_weights();

  auto wrong_key = RemoteRollouts::Create({.urls = {writable.url()}, .api_key = "nope"});
  ASSERT_FALSE(wrong_key.ok());  // GET /v1/models needs the key too
  EXPECT_NE(wrong_key.status().message().find("401"), std::string::npos)
      << wrong_key.status().ToString();

  auto ro = RemoteRollouts::Create({.urls = {read_only.url()}, .api_key = kKey});
  ASSERT_TRUE(ro.ok());
  core::Status st = (*ro)->PushWeights(Config(), w, 0);
  EXPECT_NE(st.message().find("read-only"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("409"), std::string::npos) << st.ToString();

  auto remote = RemoteRollouts::Create({.urls = {writable.url()}, .api_key = kKey});
  ASSERT_TRUE(remote.ok());
  auto before = (*remote)->Run(kPrompts, Params(), kSeeds);
  ASSERT_TRUE(before.ok()) << before.status().ToString();

  auto other = Config();
  other.norm_eps = 1e-5;
  st = (*remote)->PushWeights(other, w, 0);
  EXPECT_NE(st.message().find("rms_norm_eps"), std::string::npos) << st.ToString();

  models::llama::ModelWeights missing = w;
  missing.layers[1].w_up = core::Tensor();
  st = (*remote)->PushWeights(Config(), missing, 0);
  EXPECT_NE(st.message().find("model.layers.1.mlp.up_proj.weight\" is missing"), std::string::npos)
      << st.ToString();

  auto url = io::ParseServerUrl(writable.url());
  ASSERT_TRUE(url.ok());
  io::ServeClient client(*url, kKey, std::chrono::seconds(10));
  auto junk =
      client.Post(server::kAdminWeightsPath, "not a safetensors file", "application/octet-stream");
  ASSERT_TRUE(junk.ok());
  EXPECT_EQ(junk->status, 400);
  EXPECT_NE(junk->body.find("safetensors"), std::string::npos) << junk->body;

  // None of that changed the server's weights.
  auto after = (*remote)->Run(kPrompts, Params(), kSeeds);
  ASSERT_TRUE(after.ok());
  ExpectSame(*before, *after);
  // And a good push still works.
  ASSERT_TRUE((*remote)->PushWeights(Config(), w, 0).ok());
  auto want = local.Run(kPrompts, Params(), kSeeds);
  auto got = (*remote)->Run(kPrompts, Params(), kSeeds);
  ASSERT_TRUE(want.ok() && got.ok());
  ExpectSame(*want, *got);
}

}  // namespace
}  // namespace arle::rl
