// safetensors reading and writing on nlohmann::json. The checks mirror the reference
// implementation's (header size limit, header start, dtype, shape/offset consistency) except that
// gaps and overlaps between tensors are accepted; the writer produces exactly the reference layout.
#include "arle/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "arle/core/file_util.h"
#include "arle/io/atomic_writer.h"

namespace arle::io {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the safetensors header length is read with memcpy");

using nlohmann::json;

// The reference implementation's MAX_HEADER_SIZE.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleFile = "model.safetensors";

struct DTypeName {
  std::string_view name;
  core::DType dtype;
};
constexpr DTypeName kDTypes[] = {
    {"F64", core::DType::kF64}, {"F32", core::DType::kF32}, {"F16", core::DType::kF16},
    {"BF16", core::DType::kBF16}, {"I64", core::DType::kI64}, {"I32", core::DType::kI32},
    {"I16", core::DType::kI16}, {"I8", core::DType::kI8},   {"U8", core::DType::kU8},
    {"BOOL", core::DType::kBool},
};
// Dtypes of the format (safetensors' Dtype enum) that arle has no DType for.
constexpr std::string_view kUnsupportedDTypes[] = {
    "U16", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64",
};

core::Status Corrupt(const std::string& name, std::string message) {
  return core::DataLossError(fmt::format("{}: {}", name, message),
                             "the file is truncated or is not a valid safetensors file");
}

// A non-negative JSON integer, or nullopt.
std::optional<uint64_t> AsUnsigned(const json& j) {
  if (!j.is_number_unsigned()) return std::nullopt;
  return j.get<uint64_t>();
}

// Parses `text` as a JSON object, rejecting duplicate top-level keys (a tensor listed twice would
// otherwise silently resolve to the last entry).
core::StatusOr<json> ParseHeaderJson(std::string_view text, const std::string& name) {
  std::set<std::string> keys;
  std::string duplicate;
  const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event,
                                               json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && duplicate.empty() &&
        parsed.is_string() && !keys.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    return Corrupt(name, fmt::format("header is not valid JSON: {}", e.what()));
  }
  if (!header.is_object()) return Corrupt(name, "header is not a JSON object");
  if (!duplicate.empty()) return Corrupt(name, fmt::format("'{}' appears twice in the header", duplicate));
  return header;
}

}  // namespace

core::StatusOr<core::DType> DTypeFromSafetensors(std::string_view name) {
  for (const DTypeName& d : kDTypes) {
    if (d.name == name) return d.dtype;
  }
  for (std::string_view u : kUnsupportedDTypes) {
    if (u == name) {
      return core::UnimplementedError(
          fmt::format("safetensors dtype {} is not supported (supported: F64 F32 F16 BF16 I64 I32 "
                      "I16 I8 U8 BOOL)", name));
    }
  }
  return core::InvalidArgumentError(fmt::format("'{}' is not a safetensors dtype", name));
}

core::StatusOr<std::string> DTypeToSafetensors(core::DType dtype) {
  for (const DTypeName& d : kDTypes) {
    if (d.dtype == dtype) return std::string(d.name);
  }
  return core::InvalidArgumentError(
      fmt::format("dtype {} cannot be stored in safetensors", core::DTypeName(dtype)));
}

core::StatusOr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  ARLE_ASSIGN_OR_RETURN(core::MappedFile mapped, core::MappedFile::Open(path));
  auto file = std::make_shared<core::MappedFile>(std::move(mapped));
  ARLE_ASSIGN_OR_RETURN(SafetensorsFile st, Parse(file->bytes(), path));
  st.file_ = std::move(file);
  return st;
}

core::StatusOr<SafetensorsFile> SafetensorsFile::Parse(std::span<const uint8_t> bytes,
                                                       const std::string& name) {
  if (bytes.size() < 8) {
    return Corrupt(name, fmt::format("{} bytes is too short for the 8-byte header length",
                                     bytes.size()));
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > kMaxHeaderBytes) {
    return Corrupt(name, fmt::format("header length {} exceeds the 100 MB limit", header_len));
  }
  if (header_len > bytes.size() - 8) {
    return Corrupt(name, fmt::format("header length {} exceeds the {} bytes after it", header_len,
                                     bytes.size() - 8));
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8),
                              static_cast<size_t>(header_len));
  if (text.empty() || text.front() != '{') {
    return Corrupt(name, "header does not start with '{'");
  }
  ARLE_ASSIGN_OR_RETURN(json header, ParseHeaderJson(text, name));

  SafetensorsFile out;
  out.bytes_ = bytes;
  out.path_ = name;
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = bytes.size() - data_start;

  for (const auto& item : header.items()) {
    // Named variables, not a structured binding: clang 14 cannot capture bindings in lambdas.
    const std::string& key = item.key();
    const json& value = item.value();
    if (key == kMetadataKey) {
      if (value.is_null()) continue;
      if (!value.is_object()) return Corrupt(name, "__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          return Corrupt(name, fmt::format("__metadata__ value of '{}' is not a string", mk));
        }
        out.metadata_.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    const auto bad = [&](std::string what) {
      return Corrupt(name, fmt::format("tensor '{}': {}", key, what));
    };
    if (!value.is_object()) return bad("entry is not an object");
    const auto dtype_it = value.find("dtype");
    const auto shape_it = value.find("shape");
    const auto offsets_it = value.find("data_offsets");
    if (dtype_it == value.end()) return bad("missing \"dtype\"");
    if (shape_it == value.end()) return bad("missing \"shape\"");
    if (offsets_it == value.end()) return bad("missing \"data_offsets\"");
    if (!dtype_it->is_string()) return bad("\"dtype\" is not a string");
    auto dtype = DTypeFromSafetensors(dtype_it->get<std::string>());
    if (!dtype.ok()) {
      if (dtype.status().code() == core::StatusCode::kUnimplemented) {
        return dtype.status().WithContext(fmt::format("{}: tensor '{}'", name, key));
      }
      return bad(dtype.status().message());
    }
    if (!shape_it->is_array()) return bad("\"shape\" is not an array");
    SafetensorsEntry entry;
    entry.name = key;
    entry.dtype = *dtype;
    uint64_t n_elems = 1;
    bool overflow = false;
    for (const json& dim : *shape_it) {
      auto d = AsUnsigned(dim);
      if (!d || *d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return bad(fmt::format("shape entry {} is not a non-negative integer", dim.dump()));
      }
      entry.shape.push_back(static_cast<int64_t>(*d));
      if (*d != 0 && n_elems > std::numeric_limits<uint64_t>::max() / *d) overflow = true;
      n_elems *= *d;
    }
    const auto elem_size = static_cast<uint64_t>(core::ElementSize(entry.dtype));
    if (overflow || n_elems > std::numeric_limits<uint64_t>::max() / elem_size) {
      return bad("the shape's byte size overflows");
    }
    const uint64_t expected = n_elems * elem_size;
    if (!offsets_it->is_array() || offsets_it->size() != 2) {
      return bad("\"data_offsets\" is not a [begin, end] pair");
    }
    auto begin = AsUnsigned((*offsets_it)[0]);
    auto end = AsUnsigned((*offsets_it)[1]);
    if (!begin || !end) return bad("\"data_offsets\" are not non-negative integers");
    if (*end < *begin) return bad(fmt::format("data_offsets [{}, {}) end before they begin",
                                              *begin, *end));
    if (*end > data_size) {
      return bad(fmt::format("data_offsets [{}, {}) run past the end of the data ({} bytes)",
                             *begin, *end, data_size));
    }
    if (*end - *begin != expected) {
      return bad(fmt::format("data_offsets [{}, {}) hold {} bytes but {} {} values need {}",
                             *begin, *end, *end - *begin, n_elems, dtype_it->get<std::string>(),
                             expected));
    }
    entry.offset = static_cast<size_t>(data_start + *begin);
    entry.nbytes = static_cast<size_t>(expected);
    out.entries_.push_back(std::move(entry));
  }
  std::sort(out.entries_.begin(), out.entries_.end(), [](const auto& a, const auto& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.name < b.name;
  });
  for (size_t i = 0; i < out.entries_.size(); ++i) out.index_.emplace(out.entries_[i].name, i);
  return out;
}

const SafetensorsEntry* SafetensorsFile::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

core::StatusOr<core::Tensor> SafetensorsFile::GetTensor(const std::string& name) const {
  const SafetensorsEntry* e = Find(name);
  if (e == nullptr) return core::NotFoundError(fmt::format("{}: no tensor '{}'", path_, name));
  if (e->shape.size() > static_cast<size_t>(core::kMaxTensorRank)) {
    return core::UnimplementedError(fmt::format("{}: tensor '{}' has rank {}; arle handles up to {}",
                                                path_, name, e->shape.size(),
                                                core::kMaxTensorRank));
  }
  auto* data = const_cast<uint8_t*>(bytes_.data() + e->offset);
  return core::Tensor(data, e->dtype, std::span<const int64_t>(e->shape));
}

core::StatusOr<SafetensorsModel> SafetensorsModel::Open(const std::string& path) {
  namespace fs = std::filesystem;
  SafetensorsModel model;
  std::string index_path;
  std::string single_path;
  if (core::IsDirectory(path)) {
    // transformers' order: model.safetensors, then the index; else a lone *.safetensors.
    const std::string index = core::JoinPath(path, kIndexFile);
    const std::string single = core::JoinPath(path, kSingleFile);
    if (core::FileExists(single)) {
      single_path = single;
    } else if (core::FileExists(index)) {
      index_path = index;
    } else {
      std::vector<std::string> found;
      std::error_code ec;
      for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
        if (e.is_regular_file(ec) && e.path().extension() == ".safetensors") {
          found.push_back(e.path().string());
        }
      }
      if (found.size() != 1) {
        return core::NotFoundError(
            fmt::format("{}: no {} or {}, and {} other .safetensors files", path, kSingleFile,
                        kIndexFile, found.size()),
            "point at a Hugging Face model directory or a .safetensors file");
      }
      single_path = found[0];
    }
  } else if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    index_path = path;
  } else {
    single_path = path;
  }

  if (!single_path.empty()) {
    ARLE_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(single_path));
    for (const SafetensorsEntry& e : file.entries()) model.which_file_.emplace(e.name, 0);
    model.files_.push_back(std::move(file));
    return model;
  }

  ARLE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(index_path));
  json index;
  try {
    index = json::parse(text);
  } catch (const json::exception& e) {
    return core::DataLossError(fmt::format("{}: not valid JSON: {}", index_path, e.what()));
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return core::DataLossError(
        fmt::format("{}: expected an object with a \"weight_map\" object", index_path));
  }
  const fs::path dir = fs::path(index_path).parent_path();
  std::map<std::string, size_t> shard_ids;
  for (const auto& [tensor, shard_json] : index["weight_map"].items()) {
    if (!shard_json.is_string()) {
      return core::DataLossError(
          fmt::format("{}: weight_map entry for '{}' is not a string", index_path, tensor));
    }
    const std::string shard = shard_json.get<std::string>();
    const fs::path rel(shard);
    const bool escapes = std::any_of(rel.begin(), rel.end(), [](const fs::path& p) {
      return p == "..";
    });
    if (shard.empty() || rel.is_absolute() || escapes) {
      return core::InvalidArgumentError(fmt::format(
          "{}: shard '{}' must be a relative path inside the model directory", index_path, shard));
    }
    auto [it, inserted] = shard_ids.emplace(shard, model.files_.size());
    if (inserted) {
      ARLE_ASSIGN_OR_RETURN(SafetensorsFile file,
                            SafetensorsFile::Open((dir / rel).string()));
      model.files_.push_back(std::move(file));
    }
    if (model.files_[it->second].Find(tensor) == nullptr) {
      return core::DataLossError(fmt::format("{}: maps '{}' to {}, which does not contain it",
                                             index_path, tensor, shard));
    }
    model.which_file_.emplace(tensor, it->second);
  }
  return model;
}

std::vector<std::string> SafetensorsModel::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(which_file_.size());
  for (const auto& [name, file] : which_file_) names.push_back(name);
  return names;
}

bool SafetensorsModel::Has(const std::string& name) const { return which_file_.count(name) != 0; }

const SafetensorsEntry* SafetensorsModel::Find(const std::string& name) const {
  auto it = which_file_.find(name);
  return it == which_file_.end() ? nullptr : files_[it->second].Find(name);
}

core::StatusOr<core::Tensor> SafetensorsModel::GetTensor(const std::string& name) const {
  auto it = which_file_.find(name);
  if (it == which_file_.end()) {
    return core::NotFoundError(fmt::format("no tensor '{}' in the model", name));
  }
  return files_[it->second].GetTensor(name);
}

namespace {

// What a writer emits, validated: the 8-byte header length and the padded JSON header, then the
// tensors' bytes in `order`. Shared by WriteSafetensors and EncodeSafetensors so a file and an
// encoded blob of the same tensors are the same bytes.
struct SafetensorsLayout {
  std::string header;         // the u64 length followed by the header text
  std::vector<size_t> order;  // indices into the tensors, in data order
  uint64_t data_bytes = 0;
};

// Validates `tensors` and lays them out as the reference writer does; `where` (a path, or a name
// for an in-memory encoding) prefixes the errors.
core::StatusOr<SafetensorsLayout> PlanSafetensors(
    const std::vector<NamedTensor>& tensors, const std::map<std::string, std::string>& metadata,
    std::string_view where) {
  const auto fail = [&](std::string message) {
    return core::InvalidArgumentError(fmt::format("{}: {}", where, message));
  };
  std::set<std::string> names;
  for (const NamedTensor& t : tensors) {
    if (t.name.empty()) return fail("empty tensor name");
    if (t.name == kMetadataKey) return fail("a tensor cannot be named __metadata__");
    if (!names.insert(t.name).second) return fail(fmt::format("duplicate tensor '{}'", t.name));
    auto dtype = DTypeToSafetensors(t.tensor.dtype());
    if (!dtype.ok()) {
      return dtype.status().WithContext(fmt::format("{}: tensor '{}'", where, t.name));
    }
    if (t.tensor.device() != core::Device::kCpu) {
      return fail(fmt::format("tensor '{}' is not in host memory", t.name));
    }
    if (!t.tensor.is_contiguous()) return fail(fmt::format("tensor '{}' is not contiguous", t.name));
    if (t.tensor.data() == nullptr && t.tensor.nbytes() > 0) {
      return fail(fmt::format("tensor '{}' has no data", t.name));
    }
  }

  SafetensorsLayout layout;
  // Larger elements first keeps every tensor aligned to its element size without gaps.
  layout.order.resize(tensors.size());
  std::iota(layout.order.begin(), layout.order.end(), size_t{0});
  std::stable_sort(layout.order.begin(), layout.order.end(), [&](size_t a, size_t b) {
    return core::ElementSize(tensors[a].tensor.dtype()) >
           core::ElementSize(tensors[b].tensor.dtype());
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
  for (const auto& [k, v] : metadata) meta[k] = v;
  if (!meta.contains("format")) meta["format"] = "pt";
  header[kMetadataKey] = std::move(meta);
  uint64_t offset = 0;
  for (size_t i : layout.order) {
    const core::Tensor& t = tensors[i].tensor;
    const auto nbytes = static_cast<uint64_t>(t.nbytes());
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = *DTypeToSafetensors(t.dtype());
    entry["shape"] = std::vector<int64_t>(t.shape().begin(), t.shape().end());
    entry["data_offsets"] = {offset, offset + nbytes};
    header[tensors[i].name] = std::move(entry);
    offset += nbytes;
  }
  layout.data_bytes = offset;
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::type_error& e) {
    return fail(fmt::format("tensor names and metadata must be UTF-8: {}", e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();
  layout.header.resize(sizeof(header_len));
  std::memcpy(layout.header.data(), &header_len, sizeof(header_len));
  layout.header += text;
  return layout;
}

// Hands the file's bytes, in order, to `append(const void* data, size_t n)` (returns a Status).
template <typename Append>
core::Status EmitSafetensors(const SafetensorsLayout& layout,
                             const std::vector<NamedTensor>& tensors, Append&& append) {
  ARLE_RETURN_IF_ERROR(append(layout.header.data(), layout.header.size()));
  for (size_t i : layout.order) {
    const core::Tensor& t = tensors[i].tensor;
    ARLE_RETURN_IF_ERROR(append(t.data(), static_cast<size_t>(t.nbytes())));
  }
  return core::OkStatus();
}

}  // namespace

core::Status WriteSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  ARLE_ASSIGN_OR_RETURN(SafetensorsLayout layout, PlanSafetensors(tensors, metadata, path));
  // Streamed to the file: a model's weights are not copied into memory first.
  ARLE_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(path));
  ARLE_RETURN_IF_ERROR(EmitSafetensors(
      layout, tensors, [&](const void* data, size_t n) { return out.Append(data, n); }));
  return out.Commit();
}

core::StatusOr<std::string> EncodeSafetensors(const std::vector<NamedTensor>& tensors,
                                              const std::map<std::string, std::string>& metadata) {
  ARLE_ASSIGN_OR_RETURN(SafetensorsLayout layout,
                        PlanSafetensors(tensors, metadata, "encoding safetensors"));
  std::string bytes;
  bytes.reserve(layout.header.size() + layout.data_bytes);
  ARLE_RETURN_IF_ERROR(EmitSafetensors(layout, tensors, [&](const void* data, size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return core::OkStatus();
  }));
  return bytes;
}

}  // namespace arle::io
