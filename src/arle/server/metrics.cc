// Metrics rendering. Bucket bounds follow vLLM's, extended below 10 ms because a small model on a
// CPU decodes a token in about a millisecond.
#include "arle/server/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace arle::server {
namespace {

std::vector<double> TtftBounds() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
          2.5,   5.0,   7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}
std::vector<double> ItlBounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
          0.3,   0.4,    0.5,   0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> E2eBounds() {
  return {0.01, 0.05, 0.1,  0.3,  0.5,  0.8,  1.0,   1.5,   2.0,   2.5,    5.0,   10.0, 15.0,
          20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

// Prometheus floats: shortest round-trip form ("0.005", "2.5", "+Inf").
std::string PromNumber(double v) { return fmt::format("{}", v); }

void Family(std::string* out, std::string_view name, std::string_view type, std::string_view help) {
  *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void Sample(std::string* out, std::string_view name, double value) {
  *out += fmt::format("{} {}\n", name, PromNumber(value));
}

void RenderHistogram(std::string* out, std::string_view name, std::string_view help,
                     const Histogram::Snapshot& h) {
  Family(out, name, "histogram", help);
  for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
    *out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, PromNumber(h.upper_bounds[i]),
                        h.cumulative_counts[i]);
  }
  *out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, h.count);
  *out += fmt::format("{}_sum {}\n{}_count {}\n", name, PromNumber(h.sum), name, h.count);
}

nlohmann::ordered_json HistogramJson(const Histogram::Snapshot& h) {
  nlohmann::ordered_json buckets = nlohmann::ordered_json::array();
  for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
    buckets.push_back({{"le", h.upper_bounds[i]}, {"count", h.cumulative_counts[i]}});
  }
  return {{"count", h.count},
          {"sum", h.sum},
          {"mean", h.count > 0 ? h.sum / static_cast<double>(h.count) : 0.0},
          {"buckets", std::move(buckets)}};
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {
  ARLE_CHECK(std::is_sorted(bounds_.begin(), bounds_.end()));
}

void Histogram::Observe(double value) {
  // Bucket i holds values in (bounds[i-1], bounds[i]] ("le" is inclusive).
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  std::lock_guard lock(mu_);
  ++counts_[i];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::Get() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  std::lock_guard lock(mu_);
  int64_t running = 0;
  for (int64_t c : counts_) {
    running += c;
    s.cumulative_counts.push_back(running);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

Metrics::Metrics() : ttft_(TtftBounds()), itl_(ItlBounds()), e2e_(E2eBounds()) {}

void Metrics::RecordRequest(int http_status) {
  std::lock_guard lock(mu_);
  ++requests_by_status_[http_status];
}

void Metrics::RecordFinish(std::string_view finish_reason) {
  std::lock_guard lock(mu_);
  auto it = finishes_.find(finish_reason);
  if (it == finishes_.end()) it = finishes_.emplace(std::string(finish_reason), 0).first;
  ++it->second;
}

void Metrics::ObserveTimeToFirstToken(double seconds) { ttft_.Observe(seconds); }
void Metrics::ObserveInterTokenLatency(double seconds) { itl_.Observe(seconds); }
void Metrics::ObserveEndToEndLatency(double seconds) { e2e_.Observe(seconds); }

std::string Metrics::RenderPrometheus(const runtime::EngineStats& e) const {
  std::string out;
  std::map<int, int64_t> by_status;
  std::map<std::string, int64_t, std::less<>> finishes;
  {
    std::lock_guard lock(mu_);
    by_status = requests_by_status_;
    finishes = finishes_;
  }
  Family(&out, "arle_requests_total", "counter",
         "Finished generation requests by HTTP status (499: the client went away).");
  for (const auto& [status, n] : by_status) {
    out += fmt::format("arle_requests_total{{status=\"{}\"}} {}\n", status, n);
  }
  Family(&out, "arle_request_finish_total", "counter", "Finished samples by finish_reason.");
  for (const auto& [reason, n] : finishes) {
    out += fmt::format("arle_request_finish_total{{finish_reason=\"{}\"}} {}\n", reason, n);
  }
  Family(&out, "arle_prompt_tokens_total", "counter",
         "Prompt tokens of admitted requests (prefix-cache hits included).");
  Sample(&out, "arle_prompt_tokens_total", static_cast<double>(e.prompt_tokens_total));
  Family(&out, "arle_prompt_tokens_computed_total", "counter",
         "Prompt tokens prefilled by the model (not served from the prefix cache).");
  Sample(&out, "arle_prompt_tokens_computed_total",
         static_cast<double>(e.computed_prompt_tokens_total));
  Family(&out, "arle_generation_tokens_total", "counter", "Generated tokens.");
  Sample(&out, "arle_generation_tokens_total", static_cast<double>(e.generated_tokens_total));
  RenderHistogram(&out, "arle_time_to_first_token_seconds",
                  "Time from request arrival to its first generated token.", ttft_.Get());
  RenderHistogram(&out, "arle_inter_token_latency_seconds",
                  "Time between consecutive generated tokens of a sample.", itl_.Get());
  RenderHistogram(&out, "arle_e2e_request_latency_seconds",
                  "Time from request arrival to its last token.", e2e_.Get());
  Family(&out, "arle_num_requests_waiting", "gauge", "Requests queued (preempted ones included).");
  Sample(&out, "arle_num_requests_waiting", static_cast<double>(e.n_waiting));
  Family(&out, "arle_num_requests_running", "gauge", "Sequences holding KV blocks.");
  Sample(&out, "arle_num_requests_running", static_cast<double>(e.n_running));
  Family(&out, "arle_kv_blocks_used", "gauge", "KV blocks referenced by running sequences.");
  Sample(&out, "arle_kv_blocks_used", e.kv_blocks_used);
  Family(&out, "arle_kv_blocks_cached", "gauge",
         "Unreferenced KV blocks kept for prefix reuse (evictable).");
  Sample(&out, "arle_kv_blocks_cached", e.kv_blocks_cached);
  Family(&out, "arle_kv_blocks_total", "gauge", "KV blocks in the pool.");
  Sample(&out, "arle_kv_blocks_total", e.kv_blocks_total);
  Family(&out, "arle_prefix_cache_queries_total", "counter",
         "Prompt tokens looked up in the prefix cache.");
  Sample(&out, "arle_prefix_cache_queries_total", static_cast<double>(e.prefix_queried_tokens));
  Family(&out, "arle_prefix_cache_hits_total", "counter",
         "Prompt tokens found in the prefix cache.");
  Sample(&out, "arle_prefix_cache_hits_total", static_cast<double>(e.prefix_hit_tokens));
  Family(&out, "arle_preemptions_total", "counter",
         "Sequences preempted (blocks freed, recomputed later).");
  Sample(&out, "arle_preemptions_total", static_cast<double>(e.n_preemptions));
  Family(&out, "arle_engine_steps_total", "counter", "Engine steps (batched forwards).");
  Sample(&out, "arle_engine_steps_total", static_cast<double>(e.n_steps));
  return out;
}

std::string Metrics::RenderJson(const runtime::EngineStats& e) const {
  nlohmann::ordered_json requests = nlohmann::ordered_json::object();
  nlohmann::ordered_json finishes = nlohmann::ordered_json::object();
  {
    std::lock_guard lock(mu_);
    for (const auto& [status, n] : requests_by_status_) requests[std::to_string(status)] = n;
    for (const auto& [reason, n] : finishes_) finishes[reason] = n;
  }
  const double hit_rate = e.prefix_queried_tokens > 0
                              ? static_cast<double>(e.prefix_hit_tokens) /
                                    static_cast<double>(e.prefix_queried_tokens)
                              : 0.0;
  nlohmann::ordered_json j = {
      {"requests_total", std::move(requests)},
      {"request_finish_total", std::move(finishes)},
      {"prompt_tokens_total", e.prompt_tokens_total},
      {"prompt_tokens_computed_total", e.computed_prompt_tokens_total},
      {"generation_tokens_total", e.generated_tokens_total},
      {"time_to_first_token_seconds", HistogramJson(ttft_.Get())},
      {"inter_token_latency_seconds", HistogramJson(itl_.Get())},
      {"e2e_request_latency_seconds", HistogramJson(e2e_.Get())},
      {"num_requests_waiting", e.n_waiting},
      {"num_requests_running", e.n_running},
      {"kv_blocks_used", e.kv_blocks_used},
      {"kv_blocks_cached", e.kv_blocks_cached},
      {"kv_blocks_total", e.kv_blocks_total},
      {"kv_block_size", e.block_size},
      {"prefix_cache_queries_total", e.prefix_queried_tokens},
      {"prefix_cache_hits_total", e.prefix_hit_tokens},
      {"prefix_cache_hit_rate", hit_rate},
      {"preemptions_total", e.n_preemptions},
      {"engine_steps_total", e.n_steps},
      {"max_context_tokens", e.max_context_tokens}};
  return j.dump();
}

}  // namespace arle::server
