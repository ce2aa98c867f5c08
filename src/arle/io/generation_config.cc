// generation_config.json's token ids.
#include "arle/io/generation_config.h"

#include "arle/io/json_fields.h"

namespace arle::io {

core::StatusOr<GenerationConfig> ParseGenerationConfig(std::string_view json_text,
                                                       const std::string& source) {
  ARLE_ASSIGN_OR_RETURN(nlohmann::json j, ParseJsonObject(json_text, source));
  const JsonFields f(j, source);
  GenerationConfig out;
  ARLE_ASSIGN_OR_RETURN(out.eos_token_ids, f.IntList("eos_token_id"));
  if (f.Has("bos_token_id")) {
    ARLE_ASSIGN_OR_RETURN(int64_t bos, f.Int("bos_token_id"));
    out.bos_token_id = bos;
  }
  return out;
}

std::string GenerationConfigJson(int64_t bos_token_id, const std::vector<int64_t>& eos_token_ids) {
  nlohmann::json j = nlohmann::json::object();
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (!eos_token_ids.empty()) j["eos_token_id"] = TokenIdsToJson(eos_token_ids);
  return j.dump(2) + "\n";
}

}  // namespace arle::io
