// The Model interface's default behaviour.
#include "arle/models/model.h"

namespace arle::models {

core::Status Model::SetWeights(std::string_view /*config_json*/,
                               std::span<const NamedWeight> /*weights*/) {
  return core::UnimplementedError("the " + info().family + " family does not take weight updates");
}

}  // namespace arle::models
