// The registry's table of arle's own families, lookups, and Load's dispatch on the file's
// declared architecture.
#include "arle/models/registry.h"

#include <nlohmann/json.hpp>

#include <mutex>

#include "arle/core/file_util.h"
#include "arle/io/gguf.h"
#include "arle/models/llama/llama_family.h"

namespace arle::models {
namespace {

// arle's own families: one line each.
std::vector<FamilyEntry> BuiltinFamilies() { return {llama::LlamaFamily()}; }

std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}

std::vector<FamilyEntry>& Registered() {
  static std::vector<FamilyEntry> families = BuiltinFamilies();
  return families;
}

std::string SupportedList(bool gguf) {
  std::string out;
  for (const FamilyEntry& f : Families()) {
    for (const ArchitectureEntry& a : f.architectures) {
      out += (out.empty() ? "" : ", ") + (gguf ? a.gguf_name : a.hf_name);
    }
  }
  return out;
}

template <typename Pred>
core::StatusOr<ArchitectureMatch> Find(Pred matches, std::string_view name, bool gguf) {
  for (const FamilyEntry& f : Families()) {
    for (const ArchitectureEntry& a : f.architectures) {
      if (matches(a)) return ArchitectureMatch{f, a};
    }
  }
  return core::UnimplementedError(std::string(gguf ? "GGUF architecture \"" : "architecture \"") +
                                  std::string(name) + "\" is not supported (supported: " +
                                  SupportedList(gguf) + ")");
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// config.json's architectures[0], or the architecture its model_type names.
core::StatusOr<ArchitectureMatch> HfDirectoryArchitecture(const std::string& dir) {
  const std::string path = core::JoinPath(dir, "config.json");
  ARLE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(path));
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return core::InvalidArgumentError(path + ": not a JSON object");
  const auto archs = j.find("architectures");
  if (archs != j.end() && archs->is_array() && !archs->empty() && (*archs)[0].is_string()) {
    const std::string name = (*archs)[0].get<std::string>();
    auto match = FindHfArchitecture(name);
    if (!match.ok()) return match.status().WithContext(path);
    return match;
  }
  const auto model_type = j.find("model_type");
  if (archs == j.end() && model_type != j.end() && model_type->is_string()) {
    auto match = FindGgufArchitecture(model_type->get<std::string>());
    if (!match.ok()) return match.status().WithContext(path);
    return match;
  }
  return core::InvalidArgumentError(path + ": 'architectures' must be a non-empty list of strings",
                                    "config.json names the model class, e.g. Qwen3ForCausalLM");
}

}  // namespace

std::vector<FamilyEntry> Families() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  return Registered();
}

void RegisterFamily(FamilyEntry family) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  std::vector<FamilyEntry>& all = Registered();
  std::erase_if(all, [&](const FamilyEntry& f) {
    if (f.name == family.name) return true;
    for (const ArchitectureEntry& a : f.architectures) {
      for (const ArchitectureEntry& b : family.architectures) {
        if (a.hf_name == b.hf_name || a.gguf_name == b.gguf_name) return true;
      }
    }
    return false;
  });
  all.push_back(std::move(family));
}

core::StatusOr<ArchitectureMatch> FindHfArchitecture(std::string_view hf_name) {
  return Find([&](const ArchitectureEntry& a) { return a.hf_name == hf_name; }, hf_name, false);
}

core::StatusOr<ArchitectureMatch> FindGgufArchitecture(std::string_view gguf_name) {
  return Find([&](const ArchitectureEntry& a) { return a.gguf_name == gguf_name; }, gguf_name,
              true);
}

ChatFormat ChatFormatFor(std::string_view hf_architecture) {
  auto match = FindHfArchitecture(hf_architecture);
  return match.ok() ? match->architecture.chat : ChatFormat{};
}

core::StatusOr<std::unique_ptr<Model>> Load(const std::string& path,
                                            const LoadOptions& options) {
  if (core::IsDirectory(path)) {
    ARLE_ASSIGN_OR_RETURN(ArchitectureMatch match, HfDirectoryArchitecture(path));
    if (!match.family.load_hf) {
      return core::UnimplementedError(path + ": the " + match.family.name +
                                      " family loads no Hugging Face directories");
    }
    return match.family.load_hf(path, options);
  }
  if (EndsWith(path, ".gguf") || core::FileExists(path)) {
    // Only the metadata is read here; the family maps the file again (cheap: mmap).
    ARLE_ASSIGN_OR_RETURN(io::GgufFile file, io::GgufFile::Open(path));
    auto arch = file.GetString("general.architecture");
    if (!arch.ok()) return arch.status().WithContext(path);
    auto match = FindGgufArchitecture(*arch);
    if (!match.ok()) return match.status().WithContext(path);
    if (!match->family.load_gguf) {
      return core::UnimplementedError(path + ": the " + match->family.name +
                                      " family loads no GGUF files");
    }
    return match->family.load_gguf(path, options);
  }
  return core::NotFoundError(path + ": no such model directory or .gguf file",
                             "pass a Hugging Face model directory or a .gguf file");
}

}  // namespace arle::models
