// GGUF writing: validates everything first, then streams header, metadata, tensor infos and the
// padded tensor data through an AtomicFileWriter. The layout is gguf.cpp's: the data section and
// every tensor are padded with zeros to the alignment, offsets are cumulative padded sizes.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "arle/core/half.h"
#include "arle/io/atomic_writer.h"
#include "arle/io/gguf.h"

namespace arle::io {
namespace {

constexpr uint32_t kGgufVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr size_t kGgmlMaxName = 64;  // GGML_MAX_NAME: names must be shorter

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void PutString(std::string* out, std::string_view s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

uint64_t AlignUp(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

core::Status BadValue(const std::string& key, std::string what) {
  return core::InvalidArgumentError(fmt::format("GGUF metadata key '{}': {}", key, what));
}

// Checks that the variant alternative matches the type tag and the value fits the type.
core::Status ValidateValue(const std::string& key, const GgufValue& v, int depth) {
  const auto in_range_u = [&](uint64_t max) -> core::Status {
    const auto* u = std::get_if<uint64_t>(&v.value);
    if (u == nullptr) return BadValue(key, GgufTypeName(v.type) + " value must hold uint64_t");
    if (*u > max) return BadValue(key, fmt::format("{} does not fit {}", *u, GgufTypeName(v.type)));
    return core::OkStatus();
  };
  const auto in_range_i = [&](int64_t min, int64_t max) -> core::Status {
    const auto* i = std::get_if<int64_t>(&v.value);
    if (i == nullptr) return BadValue(key, GgufTypeName(v.type) + " value must hold int64_t");
    if (*i < min || *i > max) {
      return BadValue(key, fmt::format("{} does not fit {}", *i, GgufTypeName(v.type)));
    }
    return core::OkStatus();
  };
  switch (v.type) {
    case GgufType::kU8: return in_range_u(std::numeric_limits<uint8_t>::max());
    case GgufType::kU16: return in_range_u(std::numeric_limits<uint16_t>::max());
    case GgufType::kU32: return in_range_u(std::numeric_limits<uint32_t>::max());
    case GgufType::kU64: return in_range_u(std::numeric_limits<uint64_t>::max());
    case GgufType::kI8: return in_range_i(INT8_MIN, INT8_MAX);
    case GgufType::kI16: return in_range_i(INT16_MIN, INT16_MAX);
    case GgufType::kI32: return in_range_i(INT32_MIN, INT32_MAX);
    case GgufType::kI64: return in_range_i(INT64_MIN, INT64_MAX);
    case GgufType::kF32:
    case GgufType::kF64:
      if (!std::holds_alternative<double>(v.value)) return BadValue(key, "float must hold double");
      return core::OkStatus();
    case GgufType::kBool:
      if (!std::holds_alternative<bool>(v.value)) return BadValue(key, "bool must hold bool");
      return core::OkStatus();
    case GgufType::kString:
      if (!std::holds_alternative<std::string>(v.value)) {
        return BadValue(key, "str must hold std::string");
      }
      return core::OkStatus();
    case GgufType::kArray: {
      const GgufArray* array = v.AsArray();
      if (array == nullptr) return BadValue(key, "arr must hold a non-null GgufArray");
      if (depth >= 8) return BadValue(key, "arrays nested deeper than 8");
      if (static_cast<uint32_t>(array->element_type) > static_cast<uint32_t>(GgufType::kF64)) {
        return BadValue(key, "array element type is not a GGUF type");
      }
      for (const GgufValue& e : array->values) {
        if (e.type != array->element_type) {
          return BadValue(key, fmt::format("array of {} holds a {} element",
                                           GgufTypeName(array->element_type),
                                           GgufTypeName(e.type)));
        }
        ARLE_RETURN_IF_ERROR(ValidateValue(key, e, depth + 1));
      }
      return core::OkStatus();
    }
  }
  return BadValue(key, fmt::format("unknown type {}", static_cast<uint32_t>(v.type)));
}

// Appends the value without its type tag (ValidateValue ran first).
void PutValue(std::string* out, const GgufValue& v) {
  switch (v.type) {
    case GgufType::kU8: Put<uint8_t>(out, static_cast<uint8_t>(std::get<uint64_t>(v.value))); break;
    case GgufType::kU16: Put<uint16_t>(out, static_cast<uint16_t>(std::get<uint64_t>(v.value))); break;
    case GgufType::kU32: Put<uint32_t>(out, static_cast<uint32_t>(std::get<uint64_t>(v.value))); break;
    case GgufType::kU64: Put<uint64_t>(out, std::get<uint64_t>(v.value)); break;
    case GgufType::kI8: Put<int8_t>(out, static_cast<int8_t>(std::get<int64_t>(v.value))); break;
    case GgufType::kI16: Put<int16_t>(out, static_cast<int16_t>(std::get<int64_t>(v.value))); break;
    case GgufType::kI32: Put<int32_t>(out, static_cast<int32_t>(std::get<int64_t>(v.value))); break;
    case GgufType::kI64: Put<int64_t>(out, std::get<int64_t>(v.value)); break;
    case GgufType::kF32: Put<float>(out, static_cast<float>(std::get<double>(v.value))); break;
    case GgufType::kF64: Put<double>(out, std::get<double>(v.value)); break;
    case GgufType::kBool: Put<uint8_t>(out, std::get<bool>(v.value) ? 1 : 0); break;
    case GgufType::kString: PutString(out, std::get<std::string>(v.value)); break;
    case GgufType::kArray: {
      const GgufArray& array = *v.AsArray();
      Put<uint32_t>(out, static_cast<uint32_t>(array.element_type));
      Put<uint64_t>(out, array.values.size());
      for (const GgufValue& e : array.values) PutValue(out, e);
      break;
    }
  }
}

}  // namespace

void GgufWriter::SetAlignment(uint64_t alignment) {
  ARLE_CHECK(alignment != 0 && (alignment & (alignment - 1)) == 0 &&
             alignment <= std::numeric_limits<uint32_t>::max())
      << "GGUF alignment must be a power of two that fits u32, got " << alignment;
  alignment_ = alignment;
  if (alignment != kDefaultAlignment) {
    AddU32("general.alignment", static_cast<uint32_t>(alignment));
  } else {
    std::erase_if(metadata_, [](const auto& kv) { return kv.first == "general.alignment"; });
  }
}

void GgufWriter::Add(const std::string& key, GgufValue value) {
  for (auto& kv : metadata_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::AddString(const std::string& key, std::string value) {
  Add(key, GgufValue::String(std::move(value)));
}
void GgufWriter::AddU32(const std::string& key, uint32_t value) { Add(key, GgufValue::U32(value)); }
void GgufWriter::AddI32(const std::string& key, int32_t value) { Add(key, GgufValue::I32(value)); }
void GgufWriter::AddU64(const std::string& key, uint64_t value) { Add(key, GgufValue::U64(value)); }
void GgufWriter::AddF32(const std::string& key, float value) { Add(key, GgufValue::F32(value)); }
void GgufWriter::AddBool(const std::string& key, bool value) { Add(key, GgufValue::Bool(value)); }

void GgufWriter::AddStringArray(const std::string& key, const std::vector<std::string>& values) {
  std::vector<GgufValue> elems;
  elems.reserve(values.size());
  for (const std::string& s : values) elems.push_back(GgufValue::String(s));
  Add(key, GgufValue::Array(GgufType::kString, std::move(elems)));
}

void GgufWriter::AddF32Array(const std::string& key, const std::vector<float>& values) {
  std::vector<GgufValue> elems;
  elems.reserve(values.size());
  for (float f : values) elems.push_back(GgufValue::F32(f));
  Add(key, GgufValue::Array(GgufType::kF32, std::move(elems)));
}

void GgufWriter::AddI32Array(const std::string& key, const std::vector<int32_t>& values) {
  std::vector<GgufValue> elems;
  elems.reserve(values.size());
  for (int32_t i : values) elems.push_back(GgufValue::I32(i));
  Add(key, GgufValue::Array(GgufType::kI32, std::move(elems)));
}

void GgufWriter::AddTensor(const std::string& name, const core::Tensor& tensor) {
  tensors_.emplace_back(name, tensor);
}

void GgufWriter::AddTensorCopy(const std::string& name, const core::Tensor& tensor) {
  ARLE_CHECK(tensor.device() == core::Device::kCpu && tensor.is_contiguous() && !tensor.empty())
      << "AddTensorCopy needs a contiguous CPU tensor with data: " << tensor.ToString();
  const auto nbytes = static_cast<size_t>(tensor.nbytes());
  core::Buffer copy(nbytes);
  std::memcpy(copy.data(), tensor.data(), nbytes);
  owned_.push_back(std::move(copy));
  tensors_.emplace_back(name, owned_.back().AsTensor(tensor.dtype(), tensor.shape()));
}

bool GgufStoresAsF32(std::string_view name, int rank) {
  return rank <= 1 || name.ends_with("_norm.weight") || !name.ends_with(".weight");
}

core::Tensor GgufWriter::AddWeight(const std::string& name, const core::Tensor& tensor) {
  const core::DType dtype = tensor.dtype();
  if (!GgufStoresAsF32(name, tensor.rank()) ||
      (dtype != core::DType::kF16 && dtype != core::DType::kBF16)) {
    AddTensor(name, tensor);
    return tensor;
  }
  ARLE_CHECK(tensor.device() == core::Device::kCpu && tensor.is_contiguous() && !tensor.empty())
      << "AddWeight needs a contiguous CPU tensor with data to widen: " << tensor.ToString();
  const int64_t n = tensor.numel();
  core::Buffer wide(static_cast<size_t>(n) * sizeof(float));
  const auto* src = static_cast<const uint16_t*>(tensor.data());
  float* dst = wide.as<float>();
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = dtype == core::DType::kF16 ? core::F16ToF32(src[i]) : core::BF16ToF32(src[i]);
  }
  owned_.push_back(std::move(wide));
  tensors_.emplace_back(name, owned_.back().AsTensor(core::DType::kF32, tensor.shape()));
  return tensors_.back().second;
}

core::Status GgufWriter::Write(const std::string& path) const {
  const auto fail = [&](std::string message) {
    return core::InvalidArgumentError(fmt::format("{}: {}", path, message));
  };

  // Validate everything before creating the file.
  std::set<std::string> keys;
  for (const auto& [key, value] : metadata_) {
    if (key.empty()) return fail("empty metadata key");
    if (!keys.insert(key).second) return fail(fmt::format("duplicate metadata key '{}'", key));
    ARLE_RETURN_IF_ERROR(ValidateValue(key, value, 0).WithContext(path));
  }
  if (auto it = std::find_if(metadata_.begin(), metadata_.end(),
                             [](const auto& kv) { return kv.first == "general.alignment"; });
      it != metadata_.end()) {
    if (it->second.type != GgufType::kU32 || std::get<uint64_t>(it->second.value) != alignment_) {
      return fail("general.alignment must be the u32 set with SetAlignment");
    }
  }

  struct TensorPlan {
    uint32_t ggml_type;
    uint64_t offset;
    uint64_t nbytes;
  };
  std::vector<TensorPlan> plans;
  std::set<std::string> names;
  uint64_t data_size = 0;
  for (const auto& [name, tensor] : tensors_) {
    if (name.empty()) return fail("empty tensor name");
    if (name.size() >= kGgmlMaxName) {
      return fail(fmt::format("tensor name '{}' is {} bytes; llama.cpp needs fewer than {}", name,
                              name.size(), kGgmlMaxName));
    }
    if (!names.insert(name).second) return fail(fmt::format("duplicate tensor name '{}'", name));
    auto ggml_type = GgmlFromDType(tensor.dtype());
    if (!ggml_type) {
      return fail(fmt::format("tensor '{}' has dtype {}, which GGUF cannot store", name,
                              core::DTypeName(tensor.dtype())));
    }
    if (tensor.device() != core::Device::kCpu) {
      return fail(fmt::format("tensor '{}' is not in host memory", name));
    }
    if (!tensor.is_contiguous()) return fail(fmt::format("tensor '{}' is not contiguous", name));
    const auto nbytes = static_cast<uint64_t>(tensor.nbytes());
    if (tensor.data() == nullptr && nbytes > 0) {
      return fail(fmt::format("tensor '{}' has no data", name));
    }
    plans.push_back({*ggml_type, data_size, nbytes});
    data_size += AlignUp(nbytes, alignment_);
  }

  std::string head;
  head.append("GGUF");
  Put<uint32_t>(&head, kGgufVersion);
  Put<uint64_t>(&head, tensors_.size());
  Put<uint64_t>(&head, metadata_.size());
  for (const auto& [key, value] : metadata_) {
    PutString(&head, key);
    Put<uint32_t>(&head, static_cast<uint32_t>(value.type));
    PutValue(&head, value);
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const core::Tensor& t = tensors_[i].second;
    PutString(&head, tensors_[i].first);
    // A scalar is stored as a 1-element vector: the reader (and every GGUF producer) uses 1-4 dims.
    Put<uint32_t>(&head, static_cast<uint32_t>(std::max(t.rank(), 1)));
    if (t.rank() == 0) Put<int64_t>(&head, 1);
    for (int d = t.rank() - 1; d >= 0; --d) Put<int64_t>(&head, t.dim(d));  // ne[]: innermost first
    Put<uint32_t>(&head, plans[i].ggml_type);
    Put<uint64_t>(&head, plans[i].offset);
  }

  ARLE_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(path));
  ARLE_RETURN_IF_ERROR(out.Append(head));
  if (!tensors_.empty()) {
    ARLE_RETURN_IF_ERROR(out.AppendZeros(AlignUp(out.size(), alignment_) - out.size()));
    for (size_t i = 0; i < tensors_.size(); ++i) {
      ARLE_RETURN_IF_ERROR(out.Append(tensors_[i].second.data(), plans[i].nbytes));
      ARLE_RETURN_IF_ERROR(out.AppendZeros(AlignUp(plans[i].nbytes, alignment_) - plans[i].nbytes));
    }
  }
  return out.Commit();
}

}  // namespace arle::io
