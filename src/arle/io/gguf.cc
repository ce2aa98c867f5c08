// GGUF v2/v3 reader (spec: ggml docs/gguf.md; type ids: ggml.h enum ggml_type). The writer is
// gguf_writer.cc.
// The reader validates every count and length against the bytes left before allocating, so a
// corrupt or hostile file gives a DataLoss Status naming the file, never a huge allocation or crash.
#include "arle/io/gguf.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <utility>

namespace arle::io {
namespace {

using core::DType;
using core::Status;
using core::StatusOr;

static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian host");

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 32;
constexpr uint32_t kMaxDims = 4;
// Minimum on-disk bytes of one tensor info: name length (8), n_dims (4), one dim (8), type (4),
// offset (8).
constexpr uint64_t kMinTensorInfoBytes = 32;
// Minimum on-disk bytes of one key/value: key length (8), type (4), smallest value (1).
constexpr uint64_t kMinKvBytes = 13;
// Bound on metadata values (scalars plus array elements) in one file: each costs ~48 bytes in
// memory, so this caps a file's metadata at under 1 GB whatever its size on disk.
constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 24;

// ggml type id -> DType. Ids 4, 5 (removed Q4_2/Q4_3) and 31-33, 36-38 (removed repacked types)
// have no DType.
struct GgmlTypeEntry {
  uint32_t id;
  DType dtype;
};
constexpr std::array<GgmlTypeEntry, 32> kGgmlTypes = {{
    {0, DType::kF32},      {1, DType::kF16},      {2, DType::kQ4_0},    {3, DType::kQ4_1},
    {6, DType::kQ5_0},     {7, DType::kQ5_1},     {8, DType::kQ8_0},    {9, DType::kQ8_1},
    {10, DType::kQ2_K},    {11, DType::kQ3_K},    {12, DType::kQ4_K},   {13, DType::kQ5_K},
    {14, DType::kQ6_K},    {15, DType::kQ8_K},    {16, DType::kIQ2_XXS}, {17, DType::kIQ2_XS},
    {18, DType::kIQ3_XXS}, {19, DType::kIQ1_S},   {20, DType::kIQ4_NL}, {21, DType::kIQ3_S},
    {22, DType::kIQ2_S},   {23, DType::kIQ4_XS},  {24, DType::kI8},     {25, DType::kI16},
    {26, DType::kI32},     {27, DType::kI64},     {28, DType::kF64},    {29, DType::kIQ1_M},
    {30, DType::kBF16},    {34, DType::kTQ1_0},   {35, DType::kTQ2_0},  {39, DType::kMXFP4},
}};

bool IsValidType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kF64); }

// On-disk size of a fixed-size metadata type; 0 for string and array.
uint64_t FixedSize(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return 0;
}

// Smallest on-disk size of one value of type t (used to bound array counts before allocating).
uint64_t MinValueSize(GgufType t) {
  if (t == GgufType::kString) return 8;
  if (t == GgufType::kArray) return 12;
  return FixedSize(t);
}

std::string TypeName(GgufType t) { return GgufTypeName(t); }

// ggml types without a DType: removed or repacked formats that ggml still names (their data size
// is not derivable, so ggml itself refuses them in files).
struct UnsupportedGgmlType {
  uint32_t id;
  std::string_view name;
};
constexpr std::array<UnsupportedGgmlType, 8> kUnsupportedGgmlTypes = {{
    {4, "q4_2"}, {5, "q4_3"}, {31, "q4_0_4_4"}, {32, "q4_0_4_8"}, {33, "q4_0_8_8"},
    {36, "iq4_nl_4_4"}, {37, "iq4_nl_4_8"}, {38, "iq4_nl_8_8"},
}};

bool IsUnsigned(GgufType t) {
  return t == GgufType::kU8 || t == GgufType::kU16 || t == GgufType::kU32 || t == GgufType::kU64;
}
bool IsSigned(GgufType t) {
  return t == GgufType::kI8 || t == GgufType::kI16 || t == GgufType::kI32 || t == GgufType::kI64;
}
bool IsFloat(GgufType t) { return t == GgufType::kF32 || t == GgufType::kF64; }

// Bounds-checked little-endian cursor over the file bytes.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  const std::string& name() const { return name_; }

  // Counts `n` more metadata values; ResourceExhausted past kMaxMetadataValues.
  Status CountValues(uint64_t n) {
    n_values_ += n;
    if (n_values_ > kMaxMetadataValues) {
      return core::ResourceExhaustedError(
          name_ + ": more than " + std::to_string(kMaxMetadataValues) + " metadata values",
          "arle bounds the memory one GGUF header may take; no real model needs this many");
    }
    return core::OkStatus();
  }

  Status Error(const std::string& what) const {
    return core::DataLossError(name_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }

  template <typename T>
  Status Read(T* out, const char* what) {
    if (remaining() < sizeof(T)) return Error(std::string("truncated while reading ") + what);
    std::memcpy(out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return core::OkStatus();
  }

  Status ReadString(std::string* out, const char* what) {
    uint64_t len = 0;
    ARLE_RETURN_IF_ERROR(Read(&len, what));
    if (len > remaining()) {
      return Error(std::string(what) + " length " + std::to_string(len) + " exceeds the " +
                   std::to_string(remaining()) + " bytes left");
    }
    out->assign(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return core::OkStatus();
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& name_;
  uint64_t pos_ = 0;
  uint64_t n_values_ = 0;
};

Status ReadValue(Cursor* c, GgufType type, int depth, const std::string& key, GgufValue* out);

Status ReadScalar(Cursor* c, GgufType type, GgufValue* out) {
  out->type = type;
  switch (type) {
    case GgufType::kU8: {
      uint8_t v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "u8 value"));
      out->value = uint64_t{v};
      return core::OkStatus();
    }
    case GgufType::kI8: {
      int8_t v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "i8 value"));
      out->value = int64_t{v};
      return core::OkStatus();
    }
    case GgufType::kU16: {
      uint16_t v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "u16 value"));
      out->value = uint64_t{v};
      return core::OkStatus();
    }
    case GgufType::kI16: {
      int16_t v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "i16 value"));
      out->value = int64_t{v};
      return core::OkStatus();
    }
    case GgufType::kU32: {
      uint32_t v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "u32 value"));
      out->value = uint64_t{v};
      return core::OkStatus();
    }
    case GgufType::kI32: {
      int32_t v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "i32 value"));
      out->value = int64_t{v};
      return core::OkStatus();
    }
    case GgufType::kU64: {
      uint64_t v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "u64 value"));
      out->value = v;
      return core::OkStatus();
    }
    case GgufType::kI64: {
      int64_t v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "i64 value"));
      out->value = v;
      return core::OkStatus();
    }
    case GgufType::kF32: {
      float v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "f32 value"));
      out->value = double{v};
      return core::OkStatus();
    }
    case GgufType::kF64: {
      double v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "f64 value"));
      out->value = v;
      return core::OkStatus();
    }
    case GgufType::kBool: {
      uint8_t v;
      ARLE_RETURN_IF_ERROR(c->Read(&v, "bool value"));
      if (v > 1) return c->Error("bool value " + std::to_string(v) + " is neither 0 nor 1");
      out->value = v != 0;
      return core::OkStatus();
    }
    case GgufType::kString: {
      std::string s;
      ARLE_RETURN_IF_ERROR(c->ReadString(&s, "string value"));
      out->value = std::move(s);
      return core::OkStatus();
    }
    case GgufType::kArray:
      break;
  }
  ARLE_CHECK(false) << "ReadScalar called with an array type";
  return core::OkStatus();
}

Status ReadValue(Cursor* c, GgufType type, int depth, const std::string& key, GgufValue* out) {
  if (type != GgufType::kArray) return ReadScalar(c, type, out);
  if (depth >= kMaxArrayDepth) {
    return c->Error("key '" + key + "': arrays nested deeper than " +
                    std::to_string(kMaxArrayDepth));
  }
  uint32_t raw_elem = 0;
  ARLE_RETURN_IF_ERROR(c->Read(&raw_elem, "array element type"));
  if (!IsValidType(raw_elem)) {
    return c->Error("key '" + key + "': unknown array element type " + std::to_string(raw_elem));
  }
  const auto elem = static_cast<GgufType>(raw_elem);
  uint64_t count = 0;
  ARLE_RETURN_IF_ERROR(c->Read(&count, "array length"));
  if (count > c->remaining() / MinValueSize(elem)) {
    return c->Error("key '" + key + "': array of " + std::to_string(count) + " " +
                    std::string(TypeName(elem)) + " values does not fit in the " +
                    std::to_string(c->remaining()) + " bytes left");
  }
  ARLE_RETURN_IF_ERROR(c->CountValues(count));
  auto array = std::make_shared<GgufArray>();
  array->element_type = elem;
  array->values.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    ARLE_RETURN_IF_ERROR(ReadValue(c, elem, depth + 1, key, &array->values[i]));
  }
  out->type = GgufType::kArray;
  out->value = std::move(array);
  return core::OkStatus();
}

bool IsPowerOfTwo(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

// a + pad to a multiple of alignment; nullopt on overflow.
std::optional<uint64_t> AlignUp(uint64_t a, uint64_t alignment) {
  const uint64_t rem = a % alignment;
  if (rem == 0) return a;
  const uint64_t pad = alignment - rem;
  if (a > std::numeric_limits<uint64_t>::max() - pad) return std::nullopt;
  return a + pad;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Type mapping and values.

std::string GgufTypeName(GgufType type) {
  // gguf.cpp's GGUF_TYPE_NAME.
  static constexpr std::array<std::string_view, 13> kNames = {
      "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(type);
  if (i < kNames.size()) return std::string(kNames[i]);
  return "type" + std::to_string(i);
}

std::string GgmlTypeName(uint32_t ggml_type) {
  if (const std::optional<DType> dtype = DTypeFromGgml(ggml_type)) {
    return std::string(core::DTypeName(*dtype));
  }
  for (const UnsupportedGgmlType& t : kUnsupportedGgmlTypes) {
    if (t.id == ggml_type) return std::string(t.name) + " (no arle dtype)";
  }
  return "unknown ggml type " + std::to_string(ggml_type);
}

std::optional<core::DType> DTypeFromGgml(uint32_t ggml_type) {
  for (const GgmlTypeEntry& e : kGgmlTypes) {
    if (e.id == ggml_type) return e.dtype;
  }
  return std::nullopt;
}

std::optional<uint32_t> GgmlFromDType(core::DType dtype) {
  for (const GgmlTypeEntry& e : kGgmlTypes) {
    if (e.dtype == dtype) return e.id;
  }
  return std::nullopt;
}

std::optional<int64_t> GgufValue::AsInt() const {
  if (IsUnsigned(type)) {
    const uint64_t v = std::get<uint64_t>(value);
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (IsSigned(type)) return std::get<int64_t>(value);
  return std::nullopt;
}

std::optional<double> GgufValue::AsFloat() const {
  if (IsUnsigned(type)) return static_cast<double>(std::get<uint64_t>(value));
  if (IsSigned(type)) return static_cast<double>(std::get<int64_t>(value));
  if (IsFloat(type)) return std::get<double>(value);
  return std::nullopt;
}

std::optional<bool> GgufValue::AsBool() const {
  if (type == GgufType::kBool) return std::get<bool>(value);
  return std::nullopt;
}

const std::string* GgufValue::AsString() const {
  if (type != GgufType::kString) return nullptr;
  return std::get_if<std::string>(&value);
}

const GgufArray* GgufValue::AsArray() const {
  if (type != GgufType::kArray) return nullptr;
  const auto* p = std::get_if<std::shared_ptr<GgufArray>>(&value);
  return p != nullptr ? p->get() : nullptr;
}

// ---------------------------------------------------------------------------------------------
// Reader.

core::StatusOr<GgufFile> GgufFile::Open(const std::string& path) {
  ARLE_ASSIGN_OR_RETURN(core::MappedFile mapped, core::MappedFile::Open(path));
  auto file = std::make_shared<core::MappedFile>(std::move(mapped));
  ARLE_ASSIGN_OR_RETURN(GgufFile gguf, Parse(file->bytes(), path));
  gguf.file_ = std::move(file);
  return gguf;
}

core::StatusOr<GgufFile> GgufFile::Parse(std::span<const uint8_t> bytes, const std::string& name) {
  GgufFile out;
  out.bytes_ = bytes;
  out.path_ = name;
  Cursor c(bytes, name);

  uint32_t magic = 0;
  if (bytes.size() < 4) return c.Error("file too short for the GGUF magic");
  ARLE_RETURN_IF_ERROR(c.Read(&magic, "magic"));
  if (magic != kGgufMagic) {
    return core::DataLossError(name + ": not a GGUF file (bad magic)",
                               "expected the bytes 'GGUF' at offset 0");
  }
  ARLE_RETURN_IF_ERROR(c.Read(&out.version_, "version"));
  if (out.version_ == 1) {
    return core::UnimplementedError(name + ": GGUF version 1 is not supported",
                                    "re-convert the model with a current llama.cpp (version 3)");
  }
  if (out.version_ != 2 && out.version_ != 3) {
    if ((out.version_ & 0xFFFF) == 0 && out.version_ != 0) {
      return core::UnimplementedError(name + ": big-endian GGUF files are not supported");
    }
    return core::DataLossError(name + ": unsupported GGUF version " +
                               std::to_string(out.version_) + " (expected 2 or 3)");
  }
  uint64_t n_tensors = 0;
  uint64_t n_kv = 0;
  ARLE_RETURN_IF_ERROR(c.Read(&n_tensors, "tensor count"));
  ARLE_RETURN_IF_ERROR(c.Read(&n_kv, "metadata count"));
  if (n_kv > c.remaining() / kMinKvBytes) {
    return c.Error("metadata count " + std::to_string(n_kv) + " does not fit in the file");
  }
  if (n_tensors > c.remaining() / kMinTensorInfoBytes) {
    return c.Error("tensor count " + std::to_string(n_tensors) + " does not fit in the file");
  }

  out.metadata_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key;
    ARLE_RETURN_IF_ERROR(c.ReadString(&key, "metadata key"));
    uint32_t raw_type = 0;
    ARLE_RETURN_IF_ERROR(c.Read(&raw_type, "metadata type"));
    if (!IsValidType(raw_type)) {
      return c.Error("key '" + key + "' has unknown metadata type " + std::to_string(raw_type));
    }
    ARLE_RETURN_IF_ERROR(c.CountValues(1));
    GgufValue value;
    ARLE_RETURN_IF_ERROR(ReadValue(&c, static_cast<GgufType>(raw_type), 0, key, &value));
    if (!out.metadata_index_.emplace(key, out.metadata_.size()).second) {
      return c.Error("duplicate metadata key '" + key + "'");
    }
    out.metadata_.emplace_back(std::move(key), std::move(value));
  }

  if (const GgufValue* a = out.Find("general.alignment")) {
    const std::optional<int64_t> v = a->AsInt();
    if (!v || !IsPowerOfTwo(static_cast<uint64_t>(*v)) || *v > (int64_t{1} << 30)) {
      return core::DataLossError(name + ": general.alignment must be a power of two integer");
    }
    out.alignment_ = static_cast<uint64_t>(*v);
  }

  out.tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo info;
    ARLE_RETURN_IF_ERROR(c.ReadString(&info.name, "tensor name"));
    uint32_t n_dims = 0;
    ARLE_RETURN_IF_ERROR(c.Read(&n_dims, "tensor n_dims"));
    if (n_dims < 1 || n_dims > kMaxDims) {
      return c.Error("tensor '" + info.name + "' has " + std::to_string(n_dims) +
                     " dimensions (expected 1 to 4)");
    }
    std::array<uint64_t, kMaxDims> ne{};
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ARLE_RETURN_IF_ERROR(c.Read(&ne[d], "tensor dimension"));
      if (ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return c.Error("tensor '" + info.name + "' has a negative or huge dimension");
      }
      if (ne[d] != 0 &&
          numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne[d]) {
        return c.Error("tensor '" + info.name + "': element count overflows");
      }
      numel *= ne[d];
    }
    for (uint32_t d = n_dims; d > 0; --d) info.shape.push_back(static_cast<int64_t>(ne[d - 1]));
    ARLE_RETURN_IF_ERROR(c.Read(&info.ggml_type, "tensor type"));
    ARLE_RETURN_IF_ERROR(c.Read(&info.offset, "tensor offset"));
    info.dtype = DTypeFromGgml(info.ggml_type);
    if (info.dtype) {
      const core::DTypeInfo& dinfo = core::GetDTypeInfo(*info.dtype);
      if (static_cast<int64_t>(ne[0]) % dinfo.block_elems != 0) {
        return c.Error("tensor '" + info.name + "': innermost dimension " +
                       std::to_string(ne[0]) + " is not a multiple of the " +
                       std::string(dinfo.name) + " block size " +
                       std::to_string(dinfo.block_elems));
      }
      const std::optional<int64_t> nbytes =
          core::DTypeBytes(*info.dtype, static_cast<int64_t>(numel));
      if (!nbytes) return c.Error("tensor '" + info.name + "': byte size overflows");
      info.nbytes = static_cast<uint64_t>(*nbytes);
    }
    if (info.offset % out.alignment_ != 0) {
      return c.Error("tensor '" + info.name + "' offset " + std::to_string(info.offset) +
                     " is not a multiple of the alignment " + std::to_string(out.alignment_));
    }
    if (!out.tensor_index_.emplace(info.name, out.tensors_.size()).second) {
      return c.Error("duplicate tensor name '" + info.name + "'");
    }
    out.tensors_.push_back(std::move(info));
  }

  const std::optional<uint64_t> data_offset = AlignUp(c.pos(), out.alignment_);
  // A file without tensors may end right after the header (no padding).
  if (!data_offset || (*data_offset > bytes.size() && !out.tensors_.empty())) {
    return c.Error("the tensor data section starts past the end of the file");
  }
  out.data_offset_ = std::min<uint64_t>(*data_offset, bytes.size());
  const uint64_t data_size = bytes.size() - out.data_offset_;
  for (const GgufTensorInfo& info : out.tensors_) {
    if (info.offset > data_size || info.nbytes > data_size - info.offset) {
      return core::DataLossError(name + ": tensor '" + info.name + "' data [" +
                                 std::to_string(info.offset) + ", +" +
                                 std::to_string(info.nbytes) + ") lies past the end of the " +
                                 std::to_string(data_size) + "-byte data section",
                                 "the file is probably truncated");
    }
  }
  return out;
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  const auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

core::StatusOr<int64_t> GgufFile::GetInt(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return core::NotFoundError(path_ + ": metadata key '" + key + "' not found");
  const std::optional<int64_t> i = v->AsInt();
  if (!i) {
    return core::InvalidArgumentError(path_ + ": metadata key '" + key + "' is a " +
                                      std::string(TypeName(v->type)) +
                                      ", expected an integer (up to INT64_MAX)");
  }
  return *i;
}

core::StatusOr<double> GgufFile::GetFloat(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return core::NotFoundError(path_ + ": metadata key '" + key + "' not found");
  const std::optional<double> f = v->AsFloat();
  if (!f) {
    return core::InvalidArgumentError(path_ + ": metadata key '" + key + "' is a " +
                                      std::string(TypeName(v->type)) + ", expected a number");
  }
  return *f;
}

core::StatusOr<std::string> GgufFile::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return core::NotFoundError(path_ + ": metadata key '" + key + "' not found");
  const std::string* s = v->AsString();
  if (s == nullptr) {
    return core::InvalidArgumentError(path_ + ": metadata key '" + key + "' is a " +
                                      std::string(TypeName(v->type)) + ", expected a string");
  }
  return *s;
}

const GgufTensorInfo* GgufFile::FindTensor(const std::string& name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

core::StatusOr<core::Tensor> GgufFile::GetTensor(const std::string& name) const {
  const GgufTensorInfo* info = FindTensor(name);
  if (info == nullptr) return core::NotFoundError(path_ + ": no tensor named '" + name + "'");
  if (!info->dtype) {
    return core::UnimplementedError(path_ + ": tensor '" + name + "' has ggml type " +
                                    std::to_string(info->ggml_type) + " (" +
                                    GgmlTypeName(info->ggml_type) +
                                    "), which arle does not support");
  }
  // The mapping is read-only; Tensor is a mutable view by design, callers must not write.
  auto* data = const_cast<uint8_t*>(bytes_.data()) + data_offset_ + info->offset;
  return core::Tensor(data, *info->dtype, info->shape);
}

}  // namespace arle::io
