// Finding a model in the Hugging Face hub cache (huggingface_hub's layout:
// CACHE/models--ORG--NAME/{refs,snapshots}).
#pragma once

#include <string>
#include <string_view>

#include "arle/core/status.h"

namespace arle::io {

// Resolves "ORG/NAME" (or a bare legacy "NAME") in the Hugging Face cache:
// CACHE/models--ORG--NAME/snapshots/<rev> where rev comes from refs/main when present, else the
// only/newest snapshot. CACHE is tried in huggingface_hub's order: $HF_HUB_CACHE,
// $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub
// (every one that is set, first hit wins). InvalidArgument for ids that are not ORG/NAME; NotFound
// lists the places searched, or says refs/main names a missing snapshot.
core::StatusOr<std::string> ResolveHfCacheModel(std::string_view repo_id);

}  // namespace arle::io
