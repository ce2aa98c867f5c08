// Uniform error reporting for subcommands.
#include <fmt/core.h>

#include <cstdio>

#include "apps/arle/commands.h"

namespace arle::app {

int ReportError(const core::Status& status) {
  fmt::print(stderr, "arle: error: {}\n", status.message());
  if (!status.hint().empty()) fmt::print(stderr, "  hint: {}\n", status.hint());
  return status.code() == core::StatusCode::kInternal ? kExitFailure : kExitBadInput;
}

}  // namespace arle::app
