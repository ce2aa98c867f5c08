#include "arle/server/admin_weights.h"

#include <fmt/core.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "arle/models/weight_update.h"

namespace arle::server {
namespace {

int HttpStatusFor(const core::Status& status) {
  switch (status.code()) {
    case core::StatusCode::kFailedPrecondition:
      return 409;
    case core::StatusCode::kResourceExhausted:
      return 507;
    case core::StatusCode::kInternal:
      return 500;
    default:
      return 400;
  }
}

struct RouteState {
  runtime::Engine& engine;
  models::Model& model;
  std::atomic<int64_t> version{0};
};

void HandleWeights(RouteState& state, const HttpRequest& request, ResponseWriter& writer) {
  auto update = models::DecodeWeightUpdate(request.body);
  if (!update.ok()) return SendError(writer, 400, update.status().message());
  const core::Status st = state.engine.UpdateWeights(
      [&] { return state.model.SetWeights(update->config_json, update->weights); });
  if (!st.ok()) return SendError(writer, HttpStatusFor(st), st.message());

  nlohmann::ordered_json answer;
  answer["object"] = "weights_update";
  answer["version"] = ++state.version;
  answer["tensors"] = update->weights.size();
  answer["bytes"] = request.body.size();
  if (update->step) answer["step"] = *update->step;
  writer.Send(200, "application/json", answer.dump());
}

}  // namespace

size_t AdminWeightsBodyLimit(int64_t n_params) {
  return static_cast<size_t>(n_params) * 4 + (size_t{64} << 20);
}

void RegisterAdminWeightsRoute(HttpServer& server, runtime::Engine& engine, models::Model& model,
                               size_t max_body_bytes) {
  std::shared_ptr<RouteState> state(new RouteState{engine, model});
  server.Route(
      "POST", kAdminWeightsPath,
      [state](const HttpRequest& request, std::shared_ptr<ResponseWriter> writer) {
        HandleWeights(*state, request, *writer);
      },
      /*auth=*/true, max_body_bytes);
}

}  // namespace arle::server
