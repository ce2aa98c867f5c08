// Logging to stderr (stdout is reserved for command output). Use the ARLE_LOG_* macros with
// fmt-style format strings: ARLE_LOG_INFO("loaded {} tensors from {}", n, path).
#pragma once

#include <string_view>

#include <fmt/core.h>

namespace arle::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Sets the minimum level printed. Thread-safe. The initial level is kInfo, or the value of the
// environment variable ARLE_LOG (debug|info|warn|error|off) when set.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool LogEnabled(LogLevel level);
// Writes one line. Thread-safe.
void LogMessage(LogLevel level, std::string_view message);

}  // namespace arle::core

#define ARLE_LOG_AT_(level, ...)                                                 \
  do {                                                                           \
    if (::arle::core::LogEnabled(level))                                         \
      ::arle::core::LogMessage(level, ::fmt::format(__VA_ARGS__));               \
  } while (false)
#define ARLE_LOG_DEBUG(...) ARLE_LOG_AT_(::arle::core::LogLevel::kDebug, __VA_ARGS__)
#define ARLE_LOG_INFO(...) ARLE_LOG_AT_(::arle::core::LogLevel::kInfo, __VA_ARGS__)
#define ARLE_LOG_WARN(...) ARLE_LOG_AT_(::arle::core::LogLevel::kWarn, __VA_ARGS__)
#define ARLE_LOG_ERROR(...) ARLE_LOG_AT_(::arle::core::LogLevel::kError, __VA_ARGS__)
