// Logging on spdlog; spdlog stays inside this file so headers stay light.
#include "arle/core/logging.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace arle::core {
namespace {

LogLevel InitialLevel() {
  const char* env = std::getenv("ARLE_LOG");
  if (env == nullptr) return LogLevel::kInfo;
  if (std::strcmp(env, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(env, "warn") == 0) return LogLevel::kWarn;
  if (std::strcmp(env, "error") == 0) return LogLevel::kError;
  if (std::strcmp(env, "off") == 0) return LogLevel::kOff;
  return LogLevel::kInfo;
}

std::atomic<LogLevel>& Level() {
  static std::atomic<LogLevel> level{InitialLevel()};
  return level;
}

spdlog::logger& Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("arle", sink);
    l->set_pattern("%^[%H:%M:%S.%e %L]%$ %v");
    l->set_level(spdlog::level::trace);
    return l;
  }();
  return *logger;
}

}  // namespace

void SetLogLevel(LogLevel level) { Level().store(level, std::memory_order_relaxed); }
LogLevel GetLogLevel() { return Level().load(std::memory_order_relaxed); }
bool LogEnabled(LogLevel level) { return level >= GetLogLevel() && level != LogLevel::kOff; }

void LogMessage(LogLevel level, std::string_view message) {
  switch (level) {
    case LogLevel::kDebug: Logger().debug("{}", message); break;
    case LogLevel::kInfo: Logger().info("{}", message); break;
    case LogLevel::kWarn: Logger().warn("{}", message); break;
    case LogLevel::kError: Logger().error("{}", message); break;
    case LogLevel::kOff: break;
  }
}

}  // namespace arle::core
