// Server metrics: request counts by HTTP status, latency histograms (time to first token,
// inter-token latency, end-to-end) recorded by the OpenAI routes, and the engine's gauges and
// counters, rendered as Prometheus text (GET /metrics) or JSON (GET /v1/stats).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "arle/runtime/engine.h"

namespace arle::server {

// A cumulative histogram with fixed upper bounds (seconds). Thread-safe.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<int64_t> cumulative_counts;  // per bound, then +Inf (size bounds + 1)
    double sum = 0;
    int64_t count = 0;
  };
  Snapshot Get() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<int64_t> counts_;  // per bucket (not cumulative), last = above every bound
  double sum_ = 0;
  int64_t count_ = 0;
};

// Thread-safe: Record* from any thread (I/O and engine threads), rendering from handlers.
class Metrics {
 public:
  Metrics();

  // One finished request to a generation route with the HTTP status it got. A client that went
  // away before the response was complete is counted as 499 (nginx's "client closed request").
  void RecordRequest(int http_status);
  // A finished sample: "stop", "length", "tool_calls", "abort".
  void RecordFinish(std::string_view finish_reason);
  void ObserveTimeToFirstToken(double seconds);
  void ObserveInterTokenLatency(double seconds);
  void ObserveEndToEndLatency(double seconds);

  // Prometheus text exposition format (version 0.0.4), with the engine's counters and gauges:
  // arle_requests_total{status}, arle_request_finish_total{finish_reason},
  // arle_prompt_tokens_total, arle_generation_tokens_total, arle_time_to_first_token_seconds,
  // arle_inter_token_latency_seconds, arle_e2e_request_latency_seconds (histograms),
  // arle_num_requests_waiting, arle_num_requests_running, arle_kv_blocks_used,
  // arle_kv_blocks_cached, arle_kv_blocks_total, arle_prefix_cache_queries_total,
  // arle_prefix_cache_hits_total (tokens), arle_preemptions_total.
  std::string RenderPrometheus(const runtime::EngineStats& engine) const;
  // The same numbers as one JSON object (histograms as {count, sum, mean, buckets}).
  std::string RenderJson(const runtime::EngineStats& engine) const;

  static constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  mutable std::mutex mu_;
  std::map<int, int64_t> requests_by_status_;
  std::map<std::string, int64_t, std::less<>> finishes_;
  Histogram ttft_;
  Histogram itl_;
  Histogram e2e_;
};

}  // namespace arle::server
