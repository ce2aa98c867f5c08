// Version string of the arle binary.
#pragma once

#include <string_view>

namespace arle::app {
inline constexpr std::string_view kVersion = "0.1.0";
}  // namespace arle::app
