// `arle --doctor`: what this build and this machine can do.
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <thread>

#include "apps/arle/commands.h"
#include "apps/arle/version.h"
#include "arle/core/thread_pool.h"

namespace arle::app {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto pos = line.find(':');
      if (pos != std::string::npos) return line.substr(pos + 2);
    }
  }
  return "unknown";
}

double MemTotalGiB() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  long kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb / 1048576.0;
    in.ignore(256, '\n');
  }
  return 0;
}

nlohmann::json Collect() {
  nlohmann::json j;
  j["version"] = std::string(kVersion);
#ifdef NDEBUG
  j["build"]["type"] = "release";
#else
  j["build"]["type"] = "debug";
#endif
  j["build"]["compiler"] = __VERSION__;
  j["cpu"]["model"] = CpuModel();
  j["cpu"]["logical_cpus"] = std::thread::hardware_concurrency();
  j["cpu"]["physical_cores"] = core::ThreadPool::DefaultThreadCount();
  j["memory_gib"] = MemTotalGiB();
  return j;
}

int RunDoctor(bool json) {
  nlohmann::json j = Collect();
  if (json) {
    fmt::print("{}\n", j.dump(2));
    return kExitOk;
  }
  fmt::print("arle {} ({} build, {})\n", j["version"].get<std::string>(),
             j["build"]["type"].get<std::string>(), j["build"]["compiler"].get<std::string>());
  fmt::print("cpu:    {} ({} logical, {} physical cores)\n", j["cpu"]["model"].get<std::string>(),
             j["cpu"]["logical_cpus"].get<int>(), j["cpu"]["physical_cores"].get<int>());
  fmt::print("memory: {:.1f} GiB\n", j["memory_gib"].get<double>());
  return kExitOk;
}

}  // namespace

void RegisterDoctorOption(CLI::App& app, int& exit_code) {
  static bool doctor = false, json = false, strict = false;
  app.add_flag("--doctor", doctor, "Report build flags, CPU features, memory, CUDA and model");
  app.add_flag("--json", json, "With --doctor: print JSON");
  app.add_flag("--strict", strict, "With --doctor: exit 1 when something needed is missing");
  app.final_callback([&exit_code] {
    if (doctor) exit_code = RunDoctor(json);
  });
}

}  // namespace arle::app
