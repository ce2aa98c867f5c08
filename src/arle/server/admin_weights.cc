#include "arle/server/admin_weights.h"

#include <fmt/core.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "arle/io/safetensors.h"

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
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(request.body.data()),
                                       request.body.size());
  auto file = io::SafetensorsFile::Parse(bytes, "the request body");
  if (!file.ok()) {
    return SendError(
        writer, 400,
        "the body must be a safetensors file of the model's weights: " + file.status().message());
  }
  const auto config = file->metadata().find("config");
  if (config == file->metadata().end()) {
    return SendError(writer, 400,
                     "the safetensors metadata has no \"config\" (the sender's config.json text)");
  }
  std::vector<models::NamedWeight> weights;
  weights.reserve(file->entries().size());
  for (const io::SafetensorsEntry& entry : file->entries()) {
    auto tensor = file->GetTensor(entry.name);
    if (!tensor.ok()) return SendError(writer, 400, tensor.status().message());
    weights.push_back({entry.name, *tensor});
  }
  const core::Status st =
      state.engine.UpdateWeights([&] { return state.model.SetWeights(config->second, weights); });
  if (!st.ok()) return SendError(writer, HttpStatusFor(st), st.message());

  nlohmann::ordered_json answer;
  answer["object"] = "weights_update";
  answer["version"] = ++state.version;
  answer["tensors"] = weights.size();
  answer["bytes"] = request.body.size();
  if (const auto step = file->metadata().find("step"); step != file->metadata().end()) {
    answer["step"] = step->second;
  }
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
