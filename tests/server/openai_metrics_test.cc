// Metrics: Prometheus text exposition (cumulative buckets, +Inf, _sum/_count, labels) and the JSON
// twin served on /v1/stats.
#include "arle/server/metrics.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace arle::server {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(OpenAiMetricsTest, HistogramBucketsAreCumulativeAndInclusive) {
  Histogram h({0.1, 1.0});
  h.Observe(0.1);   // le=0.1 is inclusive
  h.Observe(0.5);
  h.Observe(5.0);   // only +Inf
  Histogram::Snapshot s = h.Get();
  EXPECT_EQ(s.cumulative_counts, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(s.count, 3);
  EXPECT_DOUBLE_EQ(s.sum, 5.6);
}

TEST(OpenAiMetricsTest, PrometheusText) {
  Metrics m;
  m.RecordRequest(200);
  m.RecordRequest(200);
  m.RecordRequest(400);
  m.RecordRequest(499);
  m.RecordFinish("stop");
  m.RecordFinish("abort");
  m.ObserveTimeToFirstToken(0.003);
  m.ObserveInterTokenLatency(0.02);
  m.ObserveEndToEndLatency(2.0);
  runtime::EngineStats e;
  e.n_waiting = 3;
  e.n_running = 2;
  e.kv_blocks_total = 100;
  e.kv_blocks_used = 10;
  e.kv_blocks_cached = 5;
  e.prefix_queried_tokens = 64;
  e.prefix_hit_tokens = 32;
  e.n_preemptions = 1;
  e.prompt_tokens_total = 70;
  e.generated_tokens_total = 9;
  const std::string t = m.RenderPrometheus(e);
  EXPECT_TRUE(Has(t, "# TYPE arle_requests_total counter")) << t;
  EXPECT_TRUE(Has(t, "arle_requests_total{status=\"200\"} 2"));
  EXPECT_TRUE(Has(t, "arle_requests_total{status=\"400\"} 1"));
  EXPECT_TRUE(Has(t, "arle_requests_total{status=\"499\"} 1"));
  EXPECT_TRUE(Has(t, "arle_request_finish_total{finish_reason=\"abort\"} 1"));
  EXPECT_TRUE(Has(t, "arle_prompt_tokens_total 70"));
  EXPECT_TRUE(Has(t, "arle_generation_tokens_total 9"));
  EXPECT_TRUE(Has(t, "# TYPE arle_time_to_first_token_seconds histogram"));
  EXPECT_TRUE(Has(t, "arle_time_to_first_token_seconds_bucket{le=\"0.001\"} 0"));
  EXPECT_TRUE(Has(t, "arle_time_to_first_token_seconds_bucket{le=\"0.005\"} 1"));
  EXPECT_TRUE(Has(t, "arle_time_to_first_token_seconds_bucket{le=\"+Inf\"} 1"));
  EXPECT_TRUE(Has(t, "arle_time_to_first_token_seconds_count 1"));
  EXPECT_TRUE(Has(t, "arle_inter_token_latency_seconds_bucket{le=\"0.025\"} 1"));
  EXPECT_TRUE(Has(t, "arle_e2e_request_latency_seconds_sum 2"));
  EXPECT_TRUE(Has(t, "arle_num_requests_waiting 3"));
  EXPECT_TRUE(Has(t, "arle_num_requests_running 2"));
  EXPECT_TRUE(Has(t, "arle_kv_blocks_used 10"));
  EXPECT_TRUE(Has(t, "arle_kv_blocks_cached 5"));
  EXPECT_TRUE(Has(t, "arle_kv_blocks_total 100"));
  EXPECT_TRUE(Has(t, "arle_prefix_cache_queries_total 64"));
  EXPECT_TRUE(Has(t, "arle_prefix_cache_hits_total 32"));
  EXPECT_TRUE(Has(t, "arle_preemptions_total 1"));
  // Every sample line belongs to a declared family.
  size_t pos = 0;
  while (pos < t.size()) {
    const size_t end = t.find('\n', pos);
    ASSERT_NE(end, std::string::npos) << "the text must end with a newline";
    const std::string line = t.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    std::string name = line.substr(0, line.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s(suffix);
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
          t.find("# TYPE " + name.substr(0, name.size() - s.size()) + " histogram") != std::string::npos) {
        name = name.substr(0, name.size() - s.size());
      }
    }
    EXPECT_NE(t.find("# TYPE " + name + " "), std::string::npos) << line;
  }
}

TEST(OpenAiMetricsTest, JsonHasTheSameNumbers) {
  Metrics m;
  m.RecordRequest(503);
  m.ObserveEndToEndLatency(0.5);
  runtime::EngineStats e;
  e.kv_blocks_total = 8;
  e.prefix_queried_tokens = 4;
  e.prefix_hit_tokens = 1;
  auto j = nlohmann::json::parse(m.RenderJson(e));
  EXPECT_EQ(j["requests_total"]["503"], 1);
  EXPECT_EQ(j["kv_blocks_total"], 8);
  EXPECT_DOUBLE_EQ(j["prefix_cache_hit_rate"].get<double>(), 0.25);
  EXPECT_EQ(j["e2e_request_latency_seconds"]["count"], 1);
  EXPECT_DOUBLE_EQ(j["e2e_request_latency_seconds"]["mean"].get<double>(), 0.5);
}

}  // namespace
}  // namespace arle::server
