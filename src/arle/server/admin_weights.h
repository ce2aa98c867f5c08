// POST /v1/admin/weights: how an RL trainer (`arle train grpo --rollout-url`) gives a rollout
// server its updated weights. The body is one safetensors file (Content-Type
// application/octet-stream) holding every weight of the model by its Hugging Face name, f32 (f16
// and bf16 are converted), with the sender's config.json text under the metadata key "config".
// The server checks that the config describes its model and that every tensor is there with its
// shape, then swaps the weights between two engine steps (runtime::Engine::UpdateWeights), which
// also drops every prefix-cache entry computed with the old weights. Requests in flight continue
// with the new weights. On any error the weights are unchanged.
//
// Answers: 200 {"object": "weights_update", "version": N (updates taken since start), "tensors",
// "bytes", "step" (the metadata's "step", when sent)}; 400 for a malformed body or a config or
// tensor that does not match (the message names it); 409 when the model's weights are read-only
// (`arle serve` without --accept-weights); 401 without the API key (the route always needs one);
// 413 above the body limit.
#pragma once

#include <cstddef>

#include "arle/models/model.h"
#include "arle/runtime/engine.h"
#include "arle/server/http_server.h"

namespace arle::server {

inline constexpr const char* kAdminWeightsPath = "/v1/admin/weights";

// Registers the route on `server`, whose API key must be set (the route needs it). The engine and
// its model must outlive the server's handlers. `max_body_bytes` bounds the body (the model's
// f32 size plus headroom). The handler blocks its I/O thread until the engine's step ends.
void RegisterAdminWeightsRoute(HttpServer& server, runtime::Engine& engine, models::Model& model,
                               size_t max_body_bytes);

// The body bound for a model of `n_params` parameters (ModelInfo::n_params): its f32 bytes, plus
// 64 MiB for the safetensors header and metadata.
size_t AdminWeightsBodyLimit(int64_t n_params);

}  // namespace arle::server
