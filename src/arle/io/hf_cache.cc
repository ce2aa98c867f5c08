// Hugging Face hub cache lookup (huggingface_hub's layout: models--ORG--NAME/{refs,snapshots}).
#include "arle/io/hf_cache.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

#include <fmt/format.h>

namespace arle::io {
namespace {

namespace fs = std::filesystem;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// The hub cache directories in huggingface_hub's order of precedence (HF_HUB_CACHE, its legacy
// name, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub), without repeats.
std::vector<fs::path> CacheRoots() {
  std::vector<fs::path> roots;
  const auto add = [&](const fs::path& p) {
    if (p.empty()) return;
    for (const fs::path& r : roots) {
      if (r == p) return;
    }
    roots.push_back(p);
  };
  add(Env("HF_HUB_CACHE"));
  add(Env("HUGGINGFACE_HUB_CACHE"));
  if (const std::string home = Env("HF_HOME"); !home.empty()) add(fs::path(home) / "hub");
  if (const std::string xdg = Env("XDG_CACHE_HOME"); !xdg.empty()) {
    add(fs::path(xdg) / "huggingface" / "hub");
  }
  if (const std::string home = Env("HOME"); !home.empty()) {
    add(fs::path(home) / ".cache" / "huggingface" / "hub");
  }
  return roots;
}

bool ValidRepoPart(std::string_view s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string Trim(std::string s) {
  const auto not_space = [](char c) { return c != ' ' && c != '\n' && c != '\r' && c != '\t'; };
  while (!s.empty() && !not_space(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && !not_space(s[i])) ++i;
  return s.substr(i);
}

}  // namespace

core::StatusOr<std::string> ResolveHfCacheModel(std::string_view repo_id) {
  const size_t slash = repo_id.find('/');
  const bool valid =
      slash == std::string_view::npos
          ? ValidRepoPart(repo_id)
          : ValidRepoPart(repo_id.substr(0, slash)) && ValidRepoPart(repo_id.substr(slash + 1));
  if (!valid) {
    return core::InvalidArgumentError(
        fmt::format("'{}' is not a Hugging Face model id", repo_id),
        "use ORG/NAME, e.g. Qwen/Qwen3-0.6B");
  }
  std::string folder = "models--" + std::string(repo_id);
  if (slash != std::string_view::npos) folder.replace(8 + slash, 1, "--");

  std::vector<std::string> searched;
  for (const fs::path& root : CacheRoots()) {
    const fs::path model_dir = root / folder;
    const fs::path snapshots = model_dir / "snapshots";
    std::error_code ec;
    if (!fs::is_directory(snapshots, ec)) {
      searched.push_back(snapshots.string());
      continue;
    }
    const fs::path ref = model_dir / "refs" / "main";
    if (fs::is_regular_file(ref, ec)) {
      std::ifstream in(ref);
      std::string rev((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      rev = Trim(rev);
      const fs::path snapshot = snapshots / rev;
      if (!rev.empty() && rev.find('/') == std::string::npos && fs::is_directory(snapshot, ec)) {
        return snapshot.string();
      }
      return core::NotFoundError(
          fmt::format("{}: refs/main names revision '{}' but {} does not exist", repo_id, rev,
                      snapshot.string()),
          "the download is incomplete; fetch the model again (huggingface-cli download)");
    }
    // No refs/main: the only snapshot, else the most recently modified one.
    fs::path best;
    fs::file_time_type best_time;
    for (const fs::directory_entry& e : fs::directory_iterator(snapshots, ec)) {
      if (!e.is_directory(ec)) continue;
      const fs::file_time_type t = e.last_write_time(ec);
      if (best.empty() || t > best_time || (t == best_time && e.path() > best)) {
        best = e.path();
        best_time = t;
      }
    }
    if (!best.empty()) return best.string();
    searched.push_back(snapshots.string() + " (empty)");
  }
  std::string places;
  for (const std::string& s : searched) places += "\n  " + s;
  return core::NotFoundError(
      fmt::format("model {} is not in the Hugging Face cache; searched:{}", repo_id,
                  places.empty() ? std::string(" (no cache directory: HOME is unset)") : places),
      fmt::format("download it first: huggingface-cli download {}", repo_id));
}

}  // namespace arle::io
