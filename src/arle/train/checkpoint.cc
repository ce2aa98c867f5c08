// Checkpoint save and load. The crash-safety argument: a step directory only ever appears under its
// final name by one rename of a fully written and fsync'ed temporary directory, and `latest` only
// ever changes by one rename of a symlink onto it, so at any instant `latest` is absent or names a
// complete step. Everything else (temporaries, stale steps, retention) is deleted by first renaming
// it to a ".tmp-" name, so a crash mid-delete leaves only what the next save cleans.
#include "arle/train/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "arle/core/buffer.h"
#include "arle/core/file_util.h"
#include "arle/core/half.h"
#include "arle/io/generation_config.h"

namespace arle::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kManifestName = "arle_checkpoint.json";
constexpr std::string_view kManifestFormat = "arle-checkpoint";
constexpr int kManifestVersion = 1;
constexpr std::string_view kTmpPrefix = ".tmp-";
constexpr std::string_view kStepPrefix = "step_";
constexpr std::string_view kLatest = "latest";
constexpr std::string_view kAdapterDir = "adapter";
constexpr std::string_view kScalarPrefix = "scalar.";
// Files a Hugging Face tokenizer may consist of; those present in tokenizer_dir are copied.
constexpr const char* kTokenizerFiles[] = {
    "tokenizer.json",   "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.json",       "merges.txt",            "tokenizer.model",         "chat_template.jinja",
    "chat_template.json"};
// What every complete checkpoint holds (besides the manifest).
constexpr const char* kRequiredFiles[] = {"config.json",           "generation_config.json",
                                          "tokenizer.json",        "model.safetensors",
                                          "optimizer.safetensors", "trainer_state.json"};

CheckpointFaultHook& FaultHook() {
  static CheckpointFaultHook hook;
  return hook;
}

core::Status Fault(std::string_view point) {
  const CheckpointFaultHook& hook = FaultHook();
  return hook ? hook(point) : core::OkStatus();
}

core::Status OsError(const std::string& what, int err) {
  core::Status s = core::IoError(what + ": " + std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return s.WithHint("free disk space or save to another --out");
  if (err == EACCES || err == EPERM || err == EROFS) {
    return s.WithHint("choose a writable output directory");
  }
  return s;
}

// Writes `data` to a new file and fsyncs it; the caller publishes it by renaming its directory.
core::Status WriteSynced(const std::string& path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return OsError(path + ": cannot create", errno);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return OsError(path + ": write failed", err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return OsError(path + ": fsync failed", err);
  }
  if (::close(fd) != 0) return OsError(path + ": close failed", errno);
  return core::OkStatus();
}

// Makes a directory's entries (created, renamed files) durable.
core::Status SyncDir(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return OsError(path + ": cannot open directory", errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return OsError(path + ": fsync failed", err);
  return core::OkStatus();
}

core::Status Rename(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    return OsError("cannot rename " + from + " to " + to, errno);
  }
  return core::OkStatus();
}

void RemoveAllQuietly(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// Deletes `name` in `out` by renaming it to a temporary name first (see the file comment).
core::Status RemoveEntry(const std::string& out, const std::string& name) {
  const std::string doomed = core::JoinPath(out, std::string(kTmpPrefix) + "rm-" + name);
  RemoveAllQuietly(doomed);
  ARLE_RETURN_IF_ERROR(Rename(core::JoinPath(out, name), doomed));
  std::error_code ec;
  fs::remove_all(doomed, ec);
  if (ec) return core::IoError(doomed + ": cannot remove: " + ec.message());
  return core::OkStatus();
}

// The step of "step_000120", or -1 for other names.
int64_t ParseStepDirName(std::string_view name) {
  if (name.substr(0, kStepPrefix.size()) != kStepPrefix) return -1;
  const std::string_view digits = name.substr(kStepPrefix.size());
  if (digits.size() < 6 || digits.size() > 18) return -1;
  int64_t step = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return -1;
    step = step * 10 + (c - '0');
  }
  return step;
}

// OUT/latest's target name, or "" when there is no such symlink.
std::string ReadLatest(const std::string& out) {
  std::error_code ec;
  const fs::path target = fs::read_symlink(fs::path(out) / kLatest, ec);
  return ec ? std::string() : target.filename().string();
}

std::string StoredDTypeName(core::DType dtype) {
  return dtype == core::DType::kBF16 ? "bfloat16" : dtype == core::DType::kF16 ? "float16"
                                                                               : "float32";
}

// ---------------------------------------------------------------- validation and file texts

core::StatusOr<json> ParseObject(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return core::InvalidArgumentError(what + " is not a JSON object");
  }
  return j;
}

core::Status ValidateContents(int64_t step, const CheckpointContents& c) {
  if (step < 0) return core::InvalidArgumentError("checkpoint step must be >= 0");
  if (c.model_dtype != core::DType::kF32 && c.model_dtype != core::DType::kBF16 &&
      c.model_dtype != core::DType::kF16) {
    return core::InvalidArgumentError("checkpoint model dtype must be f32, bf16 or f16");
  }
  if (c.model.empty()) return core::InvalidArgumentError("checkpoint has no model tensors");
  for (const io::NamedTensor& t : c.model) {
    if (t.tensor.dtype() != core::DType::kF32 || !t.tensor.is_contiguous() ||
        t.tensor.device() != core::Device::kCpu || t.tensor.empty()) {
      return core::InvalidArgumentError("model tensor '" + t.name + "' must be contiguous f32 " +
                                        "on the CPU, got " + t.tensor.ToString());
    }
  }
  for (const auto& [name, value] : c.optimizer_scalars) {
    if (name.empty()) return core::InvalidArgumentError("optimizer scalar with an empty name");
  }
  if (c.tokenizer_dir.empty() ||
      !core::FileExists(core::JoinPath(c.tokenizer_dir, "tokenizer.json"))) {
    return core::InvalidArgumentError(
        "tokenizer_dir '" + c.tokenizer_dir + "' has no tokenizer.json",
        "pass the source model directory so the checkpoint ships its tokenizer");
  }
  for (const std::string& f : c.extra_files) {
    if (!core::FileExists(f)) return core::InvalidArgumentError("extra file '" + f + "' not found");
  }
  if (c.lora) ARLE_RETURN_IF_ERROR(ValidateLoraAdapter(*c.lora, c.model));
  return core::OkStatus();
}

// The model tensors as stored: LoRA targets merged, then converted to the stored dtype. Buffers
// made here are kept in `owned`.
std::vector<io::NamedTensor> StoredModelTensors(const CheckpointContents& c,
                                                std::vector<core::Buffer>* owned) {
  std::vector<io::NamedTensor> out;
  out.reserve(c.model.size());
  for (const io::NamedTensor& t : c.model) {
    core::Tensor f32 = t.tensor;
    if (c.lora) {
      for (const LoraTarget& target : c.lora->targets) {
        if (target.weight_name != t.name) continue;
        const float scale = static_cast<float>(c.lora->alpha / static_cast<double>(c.lora->r));
        owned->push_back(MergeLoraWeight(t.tensor, target.a, target.b, scale));
        f32 = core::Tensor(owned->back().data(), core::DType::kF32, t.tensor.shape());
      }
    }
    if (c.model_dtype == core::DType::kF32) {
      out.push_back({t.name, f32});
      continue;
    }
    const int64_t n = f32.numel();
    owned->emplace_back(static_cast<size_t>(n) * 2);
    uint16_t* dst = owned->back().as<uint16_t>();
    const float* src = f32.data_as<float>();
    const bool bf16 = c.model_dtype == core::DType::kBF16;
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16 ? core::F32ToBF16(src[i]) : core::F32ToF16(src[i]);
    out.push_back({t.name, core::Tensor(owned->back().data(), c.model_dtype, f32.shape())});
  }
  return out;
}

core::StatusOr<std::string> ConfigText(const CheckpointContents& c) {
  ARLE_ASSIGN_OR_RETURN(json j, ParseObject(c.config_json, "config.json text"));
  j["torch_dtype"] = StoredDTypeName(c.model_dtype);
  if (j.contains("dtype")) j["dtype"] = StoredDTypeName(c.model_dtype);  // transformers 5's name
  return j.dump(2) + "\n";
}

core::StatusOr<std::string> GenerationConfigText(const CheckpointContents& c) {
  if (!c.generation_config_json.empty()) {
    ARLE_RETURN_IF_ERROR(ParseObject(c.generation_config_json, "generation_config.json text")
                             .status());
    return c.generation_config_json;
  }
  const std::string source = core::JoinPath(c.tokenizer_dir, "generation_config.json");
  if (core::FileExists(source)) return core::ReadFile(source);
  ARLE_ASSIGN_OR_RETURN(json config, ParseObject(c.config_json, "config.json text"));
  int64_t bos = -1;
  std::vector<int64_t> eos;
  if (config.contains("bos_token_id") && config["bos_token_id"].is_number_integer()) {
    bos = config["bos_token_id"].get<int64_t>();
  }
  const json& e = config.contains("eos_token_id") ? config["eos_token_id"] : json();
  if (e.is_number_integer()) eos.push_back(e.get<int64_t>());
  if (e.is_array()) {
    for (const json& id : e) {
      if (id.is_number_integer()) eos.push_back(id.get<int64_t>());
    }
  }
  return io::GenerationConfigJson(bos, eos);
}

core::StatusOr<std::string> TrainerStateText(const CheckpointContents& c, int64_t step) {
  ARLE_ASSIGN_OR_RETURN(json j, ParseObject(c.trainer_state_json, "trainer_state_json"));
  j["step"] = step;
  return j.dump(2) + "\n";
}

std::map<std::string, std::string> ScalarMetadata(const std::map<std::string, double>& scalars) {
  std::map<std::string, std::string> meta;
  for (const auto& [name, value] : scalars) {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%.17g", value);
    meta[std::string(kScalarPrefix) + name] = buf;
  }
  return meta;
}

// ---------------------------------------------------------------- writing one step directory

// Writes files into `dir` (a fresh temporary directory) and records their sizes for the manifest.
class StepWriter {
 public:
  explicit StepWriter(std::string dir) : dir_(std::move(dir)) {}

  core::Status Text(const std::string& name, std::string_view data) {
    ARLE_RETURN_IF_ERROR(Fault("write:" + name));
    ARLE_RETURN_IF_ERROR(WriteSynced(core::JoinPath(dir_, name), data));
    sizes_[name] = data.size();
    return core::OkStatus();
  }

  core::Status Copy(const std::string& name, const std::string& source) {
    auto data = core::ReadFile(source);
    if (!data.ok()) return data.status();
    return Text(name, *data);
  }

  // WriteSafetensors fsyncs the file before renaming it into place.
  core::Status Safetensors(const std::string& name, const std::vector<io::NamedTensor>& tensors,
                           const std::map<std::string, std::string>& metadata) {
    ARLE_RETURN_IF_ERROR(Fault("write:" + name));
    const std::string path = core::JoinPath(dir_, name);
    ARLE_RETURN_IF_ERROR(io::WriteSafetensors(path, tensors, metadata));
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    if (ec) return core::IoError(path + ": " + ec.message());
    sizes_[name] = size;
    return core::OkStatus();
  }

  core::Status Manifest(int64_t step) {
    json files = json::object();
    for (const auto& [name, size] : sizes_) files[name] = size;
    const json manifest = {{"format", kManifestFormat},
                           {"version", kManifestVersion},
                           {"step", step},
                           {"files", files}};
    return Text(std::string(kManifestName), manifest.dump(2) + "\n");
  }

 private:
  std::string dir_;
  std::map<std::string, uint64_t> sizes_;
};

core::Status WriteStepDir(const std::string& dir, int64_t step, const CheckpointContents& c) {
  ARLE_ASSIGN_OR_RETURN(std::string config_text, ConfigText(c));
  ARLE_ASSIGN_OR_RETURN(std::string generation_text, GenerationConfigText(c));
  ARLE_ASSIGN_OR_RETURN(std::string state_text, TrainerStateText(c, step));

  StepWriter w(dir);
  {
    std::vector<core::Buffer> owned;
    ARLE_RETURN_IF_ERROR(w.Safetensors("model.safetensors", StoredModelTensors(c, &owned),
                                       {{"format", "pt"}}));
  }
  ARLE_RETURN_IF_ERROR(
      w.Safetensors("optimizer.safetensors", c.optimizer, ScalarMetadata(c.optimizer_scalars)));
  if (c.lora) {
    const std::string adapter_dir = core::JoinPath(dir, kAdapterDir);
    if (::mkdir(adapter_dir.c_str(), 0755) != 0) {
      return OsError(adapter_dir + ": cannot create directory", errno);
    }
    const std::string prefix = std::string(kAdapterDir) + "/";
    ARLE_RETURN_IF_ERROR(w.Safetensors(prefix + "adapter_model.safetensors",
                                       PeftAdapterTensors(*c.lora), {{"format", "pt"}}));
    ARLE_RETURN_IF_ERROR(w.Text(prefix + "adapter_config.json", PeftAdapterConfigJson(*c.lora)));
    ARLE_RETURN_IF_ERROR(SyncDir(adapter_dir));
  }
  ARLE_RETURN_IF_ERROR(w.Text("config.json", config_text));
  ARLE_RETURN_IF_ERROR(w.Text("generation_config.json", generation_text));
  for (const char* name : kTokenizerFiles) {
    const std::string source = core::JoinPath(c.tokenizer_dir, name);
    if (core::FileExists(source)) ARLE_RETURN_IF_ERROR(w.Copy(name, source));
  }
  for (const std::string& f : c.extra_files) {
    ARLE_RETURN_IF_ERROR(w.Copy(fs::path(f).filename().string(), f));
  }
  ARLE_RETURN_IF_ERROR(w.Text("trainer_state.json", state_text));
  ARLE_RETURN_IF_ERROR(w.Manifest(step));
  ARLE_RETURN_IF_ERROR(Fault("sync:step"));
  return SyncDir(dir);
}

// Removes the oldest step directories beyond `keep_last`, never `keep`.
core::Status ApplyRetention(const std::string& out, int keep_last, const std::string& keep) {
  if (keep_last <= 0) return core::OkStatus();
  std::vector<std::pair<int64_t, std::string>> steps;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(out, ec)) {
    const std::string name = e.path().filename().string();
    const int64_t s = ParseStepDirName(name);
    if (s >= 0 && e.is_directory(ec)) steps.emplace_back(s, name);
  }
  if (ec) return core::IoError(out + ": cannot list: " + ec.message());
  std::sort(steps.begin(), steps.end());
  const size_t n_remove = steps.size() > static_cast<size_t>(keep_last)
                              ? steps.size() - static_cast<size_t>(keep_last)
                              : 0;
  for (size_t i = 0; i < n_remove; ++i) {
    if (steps[i].second == keep) continue;
    ARLE_RETURN_IF_ERROR(Fault("retention"));
    ARLE_RETURN_IF_ERROR(RemoveEntry(out, steps[i].second));
  }
  return SyncDir(out);
}

}  // namespace

std::string StepDirName(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%06" PRId64, step);
  return buf;
}

void SetCheckpointFaultHookForTesting(CheckpointFaultHook hook) { FaultHook() = std::move(hook); }

core::StatusOr<std::string> SaveCheckpoint(const std::string& out, int64_t step,
                                           const CheckpointContents& contents,
                                           const CheckpointOptions& options) {
  ARLE_RETURN_IF_ERROR(ValidateContents(step, contents));
  ARLE_RETURN_IF_ERROR(core::MakeDirs(out));

  // Leftovers of a crashed or failed save.
  std::error_code ec;
  std::vector<std::string> leftovers;
  for (const fs::directory_entry& e : fs::directory_iterator(out, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(kTmpPrefix)) leftovers.push_back(e.path().string());
  }
  if (ec) return core::IoError(out + ": cannot list: " + ec.message());
  for (const std::string& path : leftovers) RemoveAllQuietly(path);

  const std::string name = StepDirName(step);
  const std::string step_dir = core::JoinPath(out, name);
  const std::string latest_target = ReadLatest(out);
  if (fs::exists(fs::symlink_status(step_dir, ec))) {
    if (latest_target == name) {
      return core::FailedPreconditionError(
          step_dir + " already exists and is the latest checkpoint",
          "resume from it instead of saving the same step again, or use another --out");
    }
    // A step saved by an earlier, abandoned continuation of this run: replaced.
    ARLE_RETURN_IF_ERROR(RemoveEntry(out, name));
  }

  const std::string tmp = core::JoinPath(out, std::string(kTmpPrefix) + name);
  if (::mkdir(tmp.c_str(), 0755) != 0) return OsError(tmp + ": cannot create directory", errno);
  if (core::Status s = WriteStepDir(tmp, step, contents); !s.ok()) {
    RemoveAllQuietly(tmp);
    return s;
  }
  if (core::Status s = Fault("rename:step"); !s.ok()) {
    RemoveAllQuietly(tmp);
    return s;
  }
  if (core::Status s = Rename(tmp, step_dir); !s.ok()) {
    RemoveAllQuietly(tmp);
    return s;
  }
  ARLE_RETURN_IF_ERROR(Fault("sync:out"));
  ARLE_RETURN_IF_ERROR(SyncDir(out));

  // The step is complete and durable; now switch `latest` with one rename.
  const std::string link_tmp = core::JoinPath(out, std::string(kTmpPrefix) + "latest");
  ARLE_RETURN_IF_ERROR(Fault("link:latest"));
  if (::symlink(name.c_str(), link_tmp.c_str()) != 0) {
    return OsError(link_tmp + ": cannot create symlink", errno);
  }
  core::Status switched = Fault("rename:latest");
  if (switched.ok()) switched = Rename(link_tmp, core::JoinPath(out, kLatest));
  if (!switched.ok()) {
    ::unlink(link_tmp.c_str());
    return switched;
  }
  ARLE_RETURN_IF_ERROR(SyncDir(out));
  ARLE_RETURN_IF_ERROR(ApplyRetention(out, options.keep_last, name));
  return step_dir;
}

// ---------------------------------------------------------------- loading

namespace {

// Parses a checkpoint's JSON file; its text goes to `text` when not null.
core::StatusOr<json> ReadJsonObject(const std::string& path, std::string* text_out = nullptr) {
  ARLE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(path));
  if (text_out != nullptr) *text_out = text;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return core::DataLossError(path + ": not a valid JSON object (corrupt or truncated)");
  }
  return j;
}

// The step directory `path` names: itself (it has a manifest), or OUT/latest's target.
core::StatusOr<std::string> ResolveStepDir(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return core::NotFoundError(path + ": no such checkpoint directory");
  if (core::FileExists(core::JoinPath(path, kManifestName))) {
    std::string dir = fs::canonical(path, ec).string();
    return ec ? path : dir;
  }
  const fs::path latest = fs::path(path) / kLatest;
  if (fs::is_symlink(fs::symlink_status(latest, ec))) {
    if (!fs::exists(latest, ec)) {
      return core::DataLossError(latest.string() + " points to a missing step directory");
    }
    return ResolveStepDir(latest.string());
  }
  if (core::FileExists(core::JoinPath(path, "model.safetensors")) ||
      core::FileExists(core::JoinPath(path, "config.json"))) {
    return core::DataLossError(
        path + ": no " + std::string(kManifestName) + ": not a complete checkpoint",
        "load the run directory or its `latest`; partial saves are never linked there");
  }
  return core::NotFoundError(path + ": no checkpoint (no `latest` link yet)");
}

core::StatusOr<io::SafetensorsFile> OpenSafetensors(const std::string& path) {
  auto file = io::SafetensorsFile::Open(path);
  if (!file.ok() && file.status().code() != core::StatusCode::kDataLoss) {
    return core::DataLossError(file.status().message());
  }
  return file;
}

}  // namespace

core::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path) {
  LoadedCheckpoint ckpt;
  ARLE_ASSIGN_OR_RETURN(ckpt.dir, ResolveStepDir(path));
  const std::string manifest_path = core::JoinPath(ckpt.dir, kManifestName);
  ARLE_ASSIGN_OR_RETURN(json manifest, ReadJsonObject(manifest_path));
  if (manifest.value("format", "") != kManifestFormat || !manifest.contains("step") ||
      !manifest["step"].is_number_integer() || !manifest.contains("files") ||
      !manifest["files"].is_object()) {
    return core::DataLossError(manifest_path + ": not an arle checkpoint manifest");
  }
  if (manifest.value("version", 0) > kManifestVersion) {
    return core::UnimplementedError(manifest_path + ": checkpoint format version " +
                                    std::to_string(manifest.value("version", 0)) +
                                    " is newer than this arle reads");
  }
  ckpt.step = manifest["step"].get<int64_t>();
  const json& files = manifest["files"];
  for (const char* name : kRequiredFiles) {
    if (!files.contains(name)) {
      return core::DataLossError(manifest_path + ": does not list " + name);
    }
  }
  for (const auto& [name, size] : files.items()) {
    const std::string file = core::JoinPath(ckpt.dir, name);
    if (name.find("..") != std::string::npos || name.starts_with("/") ||
        !size.is_number_unsigned()) {
      return core::DataLossError(manifest_path + ": bad entry '" + name + "'");
    }
    std::error_code ec;
    const uintmax_t actual = fs::file_size(file, ec);
    if (ec) return core::DataLossError(file + ": missing from the checkpoint");
    if (actual != size.get<uint64_t>()) {
      return core::DataLossError(file + ": " + std::to_string(actual) + " bytes, expected " +
                                 std::to_string(size.get<uint64_t>()) + " (truncated or corrupt)");
    }
  }

  ARLE_ASSIGN_OR_RETURN(ckpt.model, OpenSafetensors(core::JoinPath(ckpt.dir, "model.safetensors")));
  const std::string optimizer_path = core::JoinPath(ckpt.dir, "optimizer.safetensors");
  ARLE_ASSIGN_OR_RETURN(ckpt.optimizer, OpenSafetensors(optimizer_path));
  for (const auto& [key, value] : ckpt.optimizer->metadata()) {
    if (!key.starts_with(kScalarPrefix)) continue;
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size()) {
      return core::DataLossError(optimizer_path + ": scalar '" + key + "' is not a number");
    }
    ckpt.optimizer_scalars[key.substr(kScalarPrefix.size())] = v;
  }

  const std::string state_path = core::JoinPath(ckpt.dir, "trainer_state.json");
  ARLE_ASSIGN_OR_RETURN(json state, ReadJsonObject(state_path, &ckpt.trainer_state_json));
  if (!state.contains("step") || !state["step"].is_number_integer() ||
      state["step"].get<int64_t>() != ckpt.step) {
    return core::DataLossError(state_path + ": step does not match the manifest's " +
                               std::to_string(ckpt.step));
  }
  ARLE_RETURN_IF_ERROR(
      ReadJsonObject(core::JoinPath(ckpt.dir, "config.json"), &ckpt.config_json).status());
  ARLE_RETURN_IF_ERROR(
      ReadJsonObject(core::JoinPath(ckpt.dir, "generation_config.json")).status());

  const std::string adapter_config = std::string(kAdapterDir) + "/adapter_config.json";
  if (files.contains(adapter_config)) {
    ARLE_RETURN_IF_ERROR(
        ReadJsonObject(core::JoinPath(ckpt.dir, adapter_config), &ckpt.adapter_config_json)
            .status());
    ARLE_ASSIGN_OR_RETURN(
        ckpt.adapter,
        OpenSafetensors(core::JoinPath(ckpt.dir, std::string(kAdapterDir) +
                                                     "/adapter_model.safetensors")));
  }
  return ckpt;
}

}  // namespace arle::train
