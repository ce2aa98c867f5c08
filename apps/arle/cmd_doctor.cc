// `arle --doctor`: what this build and this machine can do, and which model would load.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <dlfcn.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "apps/arle/commands.h"
#include "apps/arle/model_source.h"
#include "apps/arle/version.h"
#include "arle/agent/sandbox.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/context.h"
#include "arle/kernels/cpu_targets.h"

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

std::vector<std::string> CpuFlags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::vector<std::string> wanted = {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
                                     "avx512_bf16", "amx_bf16", "asimd", "sve"};
  std::vector<std::string> found;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0 || line.rfind("Features", 0) == 0) {
      line += ' ';
      for (const auto& w : wanted) {
        if (line.find(' ' + w + ' ') != std::string::npos) found.push_back(w);
      }
      break;
    }
  }
  return found;
}

double MemInfoGiB(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string key;
  long kb = 0;
  while (in >> key >> kb) {
    if (key == field + ":") return kb / 1048576.0;
    in.ignore(256, '\n');
  }
  return 0;
}

// CUDA is usable when the driver library loads and reports at least one device.
nlohmann::json CudaState() {
  nlohmann::json j;
  j["built"] = kernels::CudaCompiled();
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    j["driver"] = false;
    j["devices"] = 0;
    return j;
  }
  j["driver"] = true;
  using InitFn = int (*)(unsigned);
  using CountFn = int (*)(int*);
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<CountFn>(dlsym(lib, "cuDeviceGetCount"));
  int n = 0;
  if (init && count && init(0) == 0 && count(&n) == 0) j["devices"] = n;
  else j["devices"] = 0;
  dlclose(lib);
  return j;
}

nlohmann::json Collect(const std::string& model_spec) {
  nlohmann::json j;
  j["version"] = std::string(kVersion);
#ifdef NDEBUG
  j["build"]["type"] = "release";
#else
  j["build"]["type"] = "debug";
#endif
#if defined(__SANITIZE_ADDRESS__)
  j["build"]["sanitizers"] = "address,undefined";
#else
  j["build"]["sanitizers"] = "none";
#endif
  j["build"]["compiler"] = __VERSION__;
  j["cpu"]["model"] = CpuModel();
  j["cpu"]["logical_cpus"] = std::thread::hardware_concurrency();
  j["cpu"]["physical_cores"] = core::ThreadPool::DefaultThreadCount();
  j["cpu"]["flags"] = CpuFlags();
  // What the kernels dispatch to, best first.
  j["cpu"]["simd_targets"] = kernels::SupportedCpuTargets();
  j["cpu"]["chosen_target"] = kernels::ChosenCpuTarget();
  auto backend = kernels::BackendFromEnvironment();
  j["kernels"]["backend"] = backend.ok() ? kernels::BackendName(*backend) : "";
  if (!backend.ok()) j["kernels"]["error"] = backend.status().ToString();
  j["memory"]["total_gib"] = MemInfoGiB("MemTotal");
  j["memory"]["available_gib"] = MemInfoGiB("MemAvailable");
  j["cuda"] = CudaState();
  const agent::SandboxState& sandbox = agent::ProbeSandbox();
  j["sandbox"]["available"] = sandbox.available;
  j["sandbox"]["detail"] = sandbox.detail;
  auto location = ResolveModel(model_spec);
  if (location.ok()) {
    j["model"]["found"] = true;
    j["model"]["source"] = location->description;
    j["model"]["path"] = location->path;
  } else {
    j["model"]["found"] = false;
    j["model"]["error"] = location.status().message();
  }
  return j;
}

int RunDoctor(const std::string& model_spec, bool json, bool strict) {
  nlohmann::json j = Collect(model_spec);
  std::vector<std::string> problems;
  if (!j["model"]["found"].get<bool>()) problems.push_back("model: " + j["model"]["error"].get<std::string>());
  if (j["cpu"]["simd_targets"].empty()) problems.push_back("no SIMD target available");
  if (j["kernels"].contains("error")) problems.push_back(j["kernels"]["error"].get<std::string>());
  j["problems"] = problems;
  if (json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("arle {} ({} build, sanitizers: {}, {})\n", j["version"].get<std::string>(),
               j["build"]["type"].get<std::string>(), j["build"]["sanitizers"].get<std::string>(),
               j["build"]["compiler"].get<std::string>());
    fmt::print("cpu:     {} ({} logical, {} physical cores)\n", j["cpu"]["model"].get<std::string>(),
               j["cpu"]["logical_cpus"].get<int>(), j["cpu"]["physical_cores"].get<int>());
    fmt::print("flags:   {}\n", fmt::join(j["cpu"]["flags"].get<std::vector<std::string>>(), " "));
    fmt::print("kernels: {} backend (ARLE_KERNELS), SIMD targets {} (using {})\n",
               j["kernels"].contains("error") ? "INVALID" : j["kernels"]["backend"].get<std::string>(),
               fmt::join(j["cpu"]["simd_targets"].get<std::vector<std::string>>(), ", "),
               j["cpu"]["chosen_target"].get<std::string>());
    fmt::print("memory:  {:.1f} GiB total, {:.1f} GiB available\n",
               j["memory"]["total_gib"].get<double>(), j["memory"]["available_gib"].get<double>());
    fmt::print("cuda:    built {}, driver {}, {} device(s)\n",
               j["cuda"]["built"].get<bool>() ? "yes" : "no",
               j["cuda"]["driver"].get<bool>() ? "yes" : "no", j["cuda"]["devices"].get<int>());
    fmt::print("sandbox: {}: {}\n", j["sandbox"]["available"].get<bool>() ? "ok" : "UNAVAILABLE",
               j["sandbox"]["detail"].get<std::string>());
    if (j["model"]["found"].get<bool>()) {
      fmt::print("model:   {}\n", j["model"]["source"].get<std::string>());
    } else {
      fmt::print("model:   not found: {}\n", j["model"]["error"].get<std::string>());
    }
  }
  return strict && !problems.empty() ? kExitFailure : kExitOk;
}

}  // namespace

void RegisterDoctorOption(CLI::App& app, int& exit_code) {
  static bool doctor = false, json = false, strict = false;
  static std::string model;
  app.add_flag("--doctor", doctor, "Report build flags, CPU features, memory, CUDA and the model");
  app.add_flag("--json", json, "With --doctor: print JSON");
  app.add_flag("--strict", strict, "With --doctor: exit 1 when something needed is missing");
  app.add_option("--model", model, "With --doctor: the model to resolve (default: built-in)");
  app.final_callback([&exit_code] {
    if (doctor) exit_code = RunDoctor(model, json, strict);
  });
}

}  // namespace arle::app
