// Tests for io/safetensors: the golden file written by tests/io/make_io_goldens.py (PyTorch values,
// reference layout), write/read round trips (all dtypes, metadata, sharded index), directory
// resolution, and a table of corrupt inputs that must fail cleanly with the file named.
#include "arle/io/safetensors.h"

#include <gtest/gtest.h>

#include "tests/common/temp_dir.h"
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/file_util.h"
#include "arle/core/half.h"

namespace arle::io {
namespace {

namespace fs = std::filesystem;
using core::DType;
using json = nlohmann::json;

const std::string kGolden = std::string(ARLE_TEST_DATA_DIR) + "/io/all_dtypes.safetensors";
const std::string kGoldenExpected =
    std::string(ARLE_TEST_DATA_DIR) + "/io/all_dtypes.expected.json";

using ::arle::test::TempDir;

std::string ReadOrDie(const std::string& path) {
  auto s = core::ReadFile(path);
  ARLE_CHECK(s.ok()) << s.status().ToString();
  return *s;
}

void WriteRaw(const std::string& path, const std::string& bytes) {
  ARLE_CHECK(core::WriteFileAtomic(path, bytes).ok());
}

// Element i of a plain-dtype tensor, widened to double (exact for every dtype used here).
double ValueAt(const core::Tensor& t, int64_t i) {
  const uint8_t* p = static_cast<const uint8_t*>(t.data());
  switch (t.dtype()) {
    case DType::kF64: { double v; std::memcpy(&v, p + 8 * i, 8); return v; }
    case DType::kF32: { float v; std::memcpy(&v, p + 4 * i, 4); return v; }
    case DType::kF16: { uint16_t v; std::memcpy(&v, p + 2 * i, 2); return core::F16ToF32(v); }
    case DType::kBF16: { uint16_t v; std::memcpy(&v, p + 2 * i, 2); return core::BF16ToF32(v); }
    case DType::kI64: { int64_t v; std::memcpy(&v, p + 8 * i, 8); return static_cast<double>(v); }
    case DType::kI32: { int32_t v; std::memcpy(&v, p + 4 * i, 4); return v; }
    case DType::kI16: { int16_t v; std::memcpy(&v, p + 2 * i, 2); return v; }
    case DType::kI8: return static_cast<int8_t>(p[i]);
    case DType::kU8: return p[i];
    case DType::kBool: return p[i];
    default: ARLE_CHECK(false) << "unexpected dtype"; return 0;
  }
}

json LoadExpected() { return json::parse(ReadOrDie(kGoldenExpected)); }

TEST(SafetensorsDType, Names) {
  const std::pair<const char*, DType> names[] = {
      {"F64", DType::kF64}, {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16},
      {"I64", DType::kI64}, {"I32", DType::kI32}, {"I16", DType::kI16}, {"I8", DType::kI8},
      {"U8", DType::kU8},   {"BOOL", DType::kBool}};
  for (const auto& [name, dtype] : names) {
    auto d = DTypeFromSafetensors(name);
    ASSERT_TRUE(d.ok()) << name;
    EXPECT_EQ(*d, dtype);
    auto s = DTypeToSafetensors(dtype);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(*s, name);
  }
  EXPECT_FALSE(DTypeFromSafetensors("F33").ok());
  EXPECT_FALSE(DTypeFromSafetensors("f32").ok());
  EXPECT_EQ(DTypeFromSafetensors("F8_E4M3").status().code(), core::StatusCode::kUnimplemented);
  EXPECT_FALSE(DTypeToSafetensors(DType::kQ8_0).ok());
}

TEST(SafetensorsGolden, ReadsPyTorchValues) {
  const json expected = LoadExpected();
  auto file = SafetensorsFile::Open(kGolden);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->path(), kGolden);
  for (auto it = expected["metadata"].begin(); it != expected["metadata"].end(); ++it) {
    ASSERT_TRUE(file->metadata().contains(it.key())) << it.key();
    EXPECT_EQ(file->metadata().at(it.key()), it.value().get<std::string>());
  }
  EXPECT_EQ(file->metadata().size(), expected["metadata"].size());
  ASSERT_EQ(file->entries().size(), expected["tensors"].size());
  // entries() is in data order, which is the order the script wrote.
  for (size_t i = 0; i < file->entries().size(); ++i) {
    EXPECT_EQ(file->entries()[i].name, expected["order"][i].get<std::string>());
  }
  for (auto it = expected["tensors"].begin(); it != expected["tensors"].end(); ++it) {
    SCOPED_TRACE(it.key());
    const json& e = it.value();
    auto t = file->GetTensor(it.key());
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->dtype(), *DTypeFromSafetensors(e["dtype"].get<std::string>()));
    const std::vector<int64_t> shape = e["shape"].get<std::vector<int64_t>>();
    ASSERT_EQ(t->rank(), static_cast<int>(shape.size()));
    for (size_t d = 0; d < shape.size(); ++d) EXPECT_EQ(t->dim(static_cast<int>(d)), shape[d]);
    const SafetensorsEntry* entry = file->Find(it.key());
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->nbytes, static_cast<size_t>(t->numel() * core::ElementSize(t->dtype())));
    const json& values = e["values"];
    ASSERT_EQ(static_cast<int64_t>(values.size()), t->numel());
    for (int64_t k = 0; k < t->numel(); ++k) {
      if (t->dtype() == DType::kI64) {
        int64_t v;
        std::memcpy(&v, static_cast<const uint8_t*>(t->data()) + 8 * k, 8);
        EXPECT_EQ(v, values[k].get<int64_t>()) << k;
      } else {
        EXPECT_EQ(ValueAt(*t, k), values[k].get<double>()) << k;
      }
    }
  }
  EXPECT_EQ(file->Find("nope"), nullptr);
  EXPECT_EQ(file->GetTensor("nope").status().code(), core::StatusCode::kNotFound);
}

TEST(SafetensorsGolden, WriterReproducesReferenceLayout) {
  // The golden is laid out as the reference serializer does (element size descending, then name,
  // header padded with spaces); writing its tensors in that order must give the same bytes.
  const json expected = LoadExpected();
  auto file = SafetensorsFile::Open(kGolden);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::vector<NamedTensor> tensors;
  for (const json& name : expected["order"]) {
    auto t = file->GetTensor(name.get<std::string>());
    ASSERT_TRUE(t.ok());
    tensors.push_back({name.get<std::string>(), *t});
  }
  TempDir dir;
  const std::string out = dir.Path("out.safetensors");
  ASSERT_TRUE(WriteSafetensors(out, tensors,
                               expected["metadata"].get<std::map<std::string, std::string>>())
                  .ok());
  EXPECT_TRUE(ReadOrDie(out) == ReadOrDie(kGolden)) << "written file differs from the golden";
}

// Builds one tensor of each dtype with distinct values, owned by `buffers`.
std::vector<NamedTensor> MakeAllDTypes(std::vector<core::Buffer>* buffers) {
  const std::pair<const char*, DType> specs[] = {
      {"a.bool", DType::kBool}, {"b.u8", DType::kU8},   {"c.f16", DType::kF16},
      {"d.i8", DType::kI8},     {"e.f64", DType::kF64}, {"f.bf16", DType::kBF16},
      {"g.i16", DType::kI16},   {"h.f32", DType::kF32}, {"i.i32", DType::kI32},
      {"j.i64", DType::kI64}};
  std::vector<NamedTensor> out;
  int salt = 1;
  for (const auto& [name, dtype] : specs) {
    const int64_t rows = 3, cols = 5;
    const size_t nbytes = rows * cols * core::ElementSize(dtype);
    buffers->emplace_back(nbytes);
    uint8_t* p = buffers->back().as<uint8_t>();
    for (size_t i = 0; i < nbytes; ++i) p[i] = static_cast<uint8_t>((i * 37 + salt * 11) & 0xff);
    if (dtype == DType::kBool) {
      for (size_t i = 0; i < nbytes; ++i) p[i] &= 1;
    }
    ++salt;
    out.push_back({name, buffers->back().AsTensor(dtype, {rows, cols})});
  }
  return out;
}

// Every tensor of `tensors` (MakeAllDTypes' 3x5 ones) reads back from `file` with its dtype,
// shape and bytes.
void ExpectTensorsRead(const SafetensorsFile& file, const std::vector<NamedTensor>& tensors) {
  for (const NamedTensor& nt : tensors) {
    auto t = file.GetTensor(nt.name);
    ASSERT_TRUE(t.ok()) << nt.name;
    EXPECT_EQ(t->dtype(), nt.tensor.dtype());
    ASSERT_EQ(t->rank(), 2);
    EXPECT_EQ(t->dim(0), 3);
    EXPECT_EQ(t->dim(1), 5);
    ASSERT_EQ(t->nbytes(), nt.tensor.nbytes());
    EXPECT_EQ(std::memcmp(t->data(), nt.tensor.data(), t->nbytes()), 0) << nt.name;
  }
}

TEST(SafetensorsRoundTrip, AllDTypesAndMetadata) {
  std::vector<core::Buffer> buffers;
  std::vector<NamedTensor> tensors = MakeAllDTypes(&buffers);
  TempDir dir;
  const std::string path = dir.Path("model.safetensors");
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"step", "42"},
                                                       {"quote", "a \"b\" \\ c\n"}};
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());
  // Atomic write: nothing but the final file is left in the directory.
  int n_files = 0;
  for (const auto& de : fs::directory_iterator(dir.path())) {
    (void)de;
    ++n_files;
  }
  EXPECT_EQ(n_files, 1);

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  for (const auto& [k, v] : metadata) EXPECT_EQ(file->metadata().at(k), v);
  ASSERT_EQ(file->entries().size(), tensors.size());

  const std::string bytes = ReadOrDie(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  size_t total = 0;
  for (const SafetensorsEntry& e : file->entries()) {
    // Each tensor is aligned to its element size in the file, and the data has no gaps.
    EXPECT_EQ(e.offset % core::ElementSize(e.dtype), 0u) << e.name;
    EXPECT_EQ(e.offset, 8 + header_len + total) << e.name;
    total += e.nbytes;
  }
  EXPECT_EQ(8 + header_len + total, bytes.size());

  ExpectTensorsRead(*file, tensors);
}

TEST(SafetensorsRoundTrip, OverwritesExistingFile) {
  std::vector<core::Buffer> buffers;
  std::vector<NamedTensor> tensors = MakeAllDTypes(&buffers);
  TempDir dir;
  const std::string path = dir.Path("x.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  tensors.resize(2);
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->entries().size(), 2u);
}

TEST(SafetensorsEncode, SameBytesAsTheFileAndParsesBack) {
  std::vector<core::Buffer> buffers;
  std::vector<NamedTensor> tensors = MakeAllDTypes(&buffers);
  const std::map<std::string, std::string> metadata = {{"step", "7"}, {"run", "grpo"}};
  TempDir dir;
  const std::string path = dir.Path("w.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());
  auto encoded = EncodeSafetensors(tensors, metadata);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  EXPECT_TRUE(*encoded == ReadOrDie(path)) << "encoded bytes differ from the written file";

  auto file = SafetensorsFile::Parse(
      std::span(reinterpret_cast<const uint8_t*>(encoded->data()), encoded->size()), "encoded");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  for (const auto& [k, v] : metadata) EXPECT_EQ(file->metadata().at(k), v);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  ASSERT_EQ(file->entries().size(), tensors.size());
  ExpectTensorsRead(*file, tensors);
}

TEST(SafetensorsEncode, EmptyListAndBadInput) {
  auto empty = EncodeSafetensors({});
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  auto file = SafetensorsFile::Parse(
      std::span(reinterpret_cast<const uint8_t*>(empty->data()), empty->size()), "empty");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE(file->entries().empty());

  std::vector<core::Buffer> buffers;
  std::vector<NamedTensor> tensors = MakeAllDTypes(&buffers);
  std::vector<NamedTensor> dup = {tensors[0], tensors[0]};
  EXPECT_EQ(EncodeSafetensors(dup).status().code(), core::StatusCode::kInvalidArgument);
  core::Buffer q(34);
  EXPECT_FALSE(EncodeSafetensors({{"q", q.AsTensor(DType::kQ8_0, {32})}}).ok());
}

TEST(SafetensorsWriter, RejectsBadInput) {
  std::vector<core::Buffer> buffers;
  std::vector<NamedTensor> tensors = MakeAllDTypes(&buffers);
  TempDir dir;
  const std::string path = dir.Path("bad.safetensors");
  std::vector<NamedTensor> dup = {tensors[0], tensors[0]};
  EXPECT_EQ(WriteSafetensors(path, dup).code(), core::StatusCode::kInvalidArgument);
  std::vector<NamedTensor> reserved = {{"__metadata__", tensors[0].tensor}};
  EXPECT_FALSE(WriteSafetensors(path, reserved).ok());
  core::Buffer q(34);
  std::vector<NamedTensor> quant = {{"q", q.AsTensor(DType::kQ8_0, {32})}};
  EXPECT_FALSE(WriteSafetensors(path, quant).ok());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(WriteSafetensors(dir.Path("no/such/dir/x.safetensors"), tensors).ok());
}

TEST(SafetensorsModel, ShardedIndex) {
  std::vector<core::Buffer> buffers;
  std::vector<NamedTensor> tensors = MakeAllDTypes(&buffers);
  TempDir dir;
  std::vector<NamedTensor> first(tensors.begin(), tensors.begin() + 4);
  std::vector<NamedTensor> second(tensors.begin() + 4, tensors.end());
  ASSERT_TRUE(WriteSafetensors(dir.Path("model-00001-of-00002.safetensors"), first).ok());
  ASSERT_TRUE(WriteSafetensors(dir.Path("model-00002-of-00002.safetensors"), second).ok());
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  for (const NamedTensor& nt : first) index["weight_map"][nt.name] = "model-00001-of-00002.safetensors";
  for (const NamedTensor& nt : second) index["weight_map"][nt.name] = "model-00002-of-00002.safetensors";
  WriteRaw(dir.Path("model.safetensors.index.json"), index.dump(2));

  for (const std::string& open_path :
       {dir.path(), dir.Path("model.safetensors.index.json")}) {
    SCOPED_TRACE(open_path);
    auto model = SafetensorsModel::Open(open_path);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    std::vector<std::string> names = model->TensorNames();
    ASSERT_EQ(names.size(), tensors.size());
    for (const NamedTensor& nt : tensors) {
      EXPECT_TRUE(model->Has(nt.name));
      auto t = model->GetTensor(nt.name);
      ASSERT_TRUE(t.ok()) << nt.name;
      EXPECT_EQ(t->dtype(), nt.tensor.dtype());
      ASSERT_EQ(t->nbytes(), nt.tensor.nbytes());
      EXPECT_EQ(std::memcmp(t->data(), nt.tensor.data(), t->nbytes()), 0) << nt.name;
    }
    EXPECT_FALSE(model->Has("missing"));
    EXPECT_EQ(model->GetTensor("missing").status().code(), core::StatusCode::kNotFound);
  }
}

TEST(SafetensorsModel, IndexErrors) {
  std::vector<core::Buffer> buffers;
  std::vector<NamedTensor> tensors = MakeAllDTypes(&buffers);
  TempDir dir;
  ASSERT_TRUE(WriteSafetensors(dir.Path("shard.safetensors"), tensors).ok());
  const std::string index_path = dir.Path("model.safetensors.index.json");
  const std::vector<std::string> bad_indexes = {
      R"({"weight_map": {"not.there": "shard.safetensors"}})",
      R"({"weight_map": {"a.bool": "missing.safetensors"}})",
      R"({"weight_map": {"a.bool": "../shard.safetensors"}})",
      R"({"weight_map": {"a.bool": "/etc/passwd"}})",
      R"({"weight_map": {"a.bool": 3}})",
      R"({"weight_map": []})",
      R"({"no_weight_map": {}})",
      R"([1, 2])",
      R"({"weight_map": {)",
      R"({"weight_map": {"a.bool": "shard.safetensors"}, "metadata": {"total_size": 1e400}})",
  };
  for (const std::string& text : bad_indexes) {
    SCOPED_TRACE(text);
    WriteRaw(index_path, text);
    auto model = SafetensorsModel::Open(dir.path());
    ASSERT_FALSE(model.ok());
    EXPECT_NE(model.status().message().find(dir.path()), std::string::npos)
        << model.status().message();
  }
}

TEST(SafetensorsModel, DirectoryResolution) {
  std::vector<core::Buffer> buffers;
  std::vector<NamedTensor> tensors = MakeAllDTypes(&buffers);
  std::vector<NamedTensor> one(tensors.begin(), tensors.begin() + 1);
  std::vector<NamedTensor> two(tensors.begin() + 1, tensors.begin() + 3);
  {
    TempDir dir;  // empty: NotFound
    auto model = SafetensorsModel::Open(dir.path());
    EXPECT_EQ(model.status().code(), core::StatusCode::kNotFound);
    EXPECT_NE(model.status().message().find(dir.path()), std::string::npos);
  }
  {
    TempDir dir;  // a single file with another name
    ASSERT_TRUE(WriteSafetensors(dir.Path("weights.safetensors"), two).ok());
    auto model = SafetensorsModel::Open(dir.path());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_EQ(model->TensorNames().size(), 2u);
    // A path to the file itself works too.
    auto direct = SafetensorsModel::Open(dir.Path("weights.safetensors"));
    ASSERT_TRUE(direct.ok());
    EXPECT_EQ(direct->TensorNames().size(), 2u);
    // Two candidate files and no index: ambiguous.
    ASSERT_TRUE(WriteSafetensors(dir.Path("other.safetensors"), one).ok());
    EXPECT_FALSE(SafetensorsModel::Open(dir.path()).ok());
    // model.safetensors is preferred over everything else.
    ASSERT_TRUE(WriteSafetensors(dir.Path("model.safetensors"), one).ok());
    auto preferred = SafetensorsModel::Open(dir.path());
    ASSERT_TRUE(preferred.ok()) << preferred.status().ToString();
    ASSERT_EQ(preferred->TensorNames().size(), 1u);
    EXPECT_EQ(preferred->TensorNames()[0], one[0].name);
  }
  EXPECT_EQ(SafetensorsModel::Open("/nonexistent/arle/dir").status().code(),
            core::StatusCode::kNotFound);
}

// ----------------------------------------------------------------------------- corrupt inputs

std::string LenPrefix(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file with `header` as its JSON and `data_bytes` zero bytes of data.
std::string MakeFile(const std::string& header, size_t data_bytes) {
  return LenPrefix(header.size()) + header + std::string(data_bytes, '\0');
}

void ExpectRejected(const std::string& bytes, const std::string& what) {
  SCOPED_TRACE(what);
  const std::string name = "corrupt_" + what + ".safetensors";
  std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  auto parsed = SafetensorsFile::Parse(span, name);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find(name), std::string::npos)
      << parsed.status().message();
}

TEST(SafetensorsCorrupt, EveryTruncationOfTheGolden) {
  const std::string golden = ReadOrDie(kGolden);
  uint64_t header_len = 0;
  std::memcpy(&header_len, golden.data(), 8);
  for (size_t n = 0; n < golden.size(); ++n) {
    const std::string prefix = golden.substr(0, n);
    std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(prefix.data()), prefix.size());
    const std::string name = "truncated_" + std::to_string(n) + ".safetensors";
    auto parsed = SafetensorsFile::Parse(span, name);
    ASSERT_FALSE(parsed.ok()) << "prefix of " << n << " bytes accepted";
    EXPECT_NE(parsed.status().message().find(name), std::string::npos)
        << parsed.status().message();
  }
  // The full file parses (and through a file on disk, too).
  std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(golden.data()), golden.size());
  EXPECT_TRUE(SafetensorsFile::Parse(span, "whole").ok());
}

TEST(SafetensorsCorrupt, Table) {
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  // Sanity: the base case is accepted, so the rejections below are about the change made.
  {
    const std::string bytes = MakeFile("{" + ok_entry + "}", 16);
    std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ASSERT_TRUE(SafetensorsFile::Parse(span, "base").ok());
  }
  struct Case {
    std::string what;
    std::string bytes;
  };
  const std::vector<Case> cases = {
      {"empty", ""},
      {"short_length", std::string(7, '\0')},
      {"length_past_end", LenPrefix(1000) + "{}"},
      {"length_over_100MB", LenPrefix(100'000'001) + std::string(64, ' ')},
      {"length_2^63", LenPrefix(uint64_t{1} << 63) + "{}"},
      {"length_all_ones", LenPrefix(~uint64_t{0}) + "{}"},
      {"not_json", MakeFile("{not json", 0)},
      {"json_array", MakeFile("[1,2,3]", 0)},
      {"json_string", MakeFile("\"hello\"", 0)},
      {"json_number", MakeFile("42", 0)},
      {"json_null", MakeFile("null", 0)},
      {"entry_not_object", MakeFile(R"({"t":[1,2]})", 16)},
      {"missing_dtype", MakeFile(R"({"t":{"shape":[2,2],"data_offsets":[0,16]}})", 16)},
      {"missing_shape", MakeFile(R"({"t":{"dtype":"F32","data_offsets":[0,16]}})", 16)},
      {"missing_offsets", MakeFile(R"({"t":{"dtype":"F32","shape":[2,2]}})", 16)},
      {"dtype_not_string", MakeFile(R"({"t":{"dtype":3,"shape":[2,2],"data_offsets":[0,16]}})", 16)},
      {"bad_dtype", MakeFile(R"({"t":{"dtype":"F31","shape":[2,2],"data_offsets":[0,16]}})", 16)},
      {"lowercase_dtype", MakeFile(R"({"t":{"dtype":"f32","shape":[2,2],"data_offsets":[0,16]}})", 16)},
      {"shape_not_array", MakeFile(R"({"t":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})", 16)},
      {"shape_negative", MakeFile(R"({"t":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}})", 16)},
      {"shape_float", MakeFile(R"({"t":{"dtype":"F32","shape":[2.0,2],"data_offsets":[0,16]}})", 16)},
      {"shape_string", MakeFile(R"({"t":{"dtype":"F32","shape":["2",2],"data_offsets":[0,16]}})", 16)},
      {"shape_mismatch", MakeFile(R"({"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", 16)},
      {"dtype_mismatch", MakeFile(R"({"t":{"dtype":"F64","shape":[2,2],"data_offsets":[0,16]}})", 16)},
      {"shape_overflow",
       MakeFile(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}})", 16)},
      {"shape_overflow_bytes",
       MakeFile(R"({"t":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", 16)},
      {"offsets_past_end", MakeFile(R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}})", 16)},
      {"offsets_far_past_end",
       MakeFile(R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[18446744073709551600,18446744073709551615]}})", 16)},
      {"offsets_reversed", MakeFile(R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[16,0]}})", 16)},
      {"offsets_one", MakeFile(R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[16]}})", 16)},
      {"offsets_three", MakeFile(R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16,32]}})", 16)},
      {"offsets_negative", MakeFile(R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[-16,0]}})", 16)},
      {"offsets_not_array", MakeFile(R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":"0-16"}})", 16)},
      {"metadata_not_object", MakeFile("{\"__metadata__\":[1]," + ok_entry + "}", 16)},
      {"metadata_value_not_string",
       MakeFile("{\"__metadata__\":{\"step\":42}," + ok_entry + "}", 16)},
      {"data_truncated", MakeFile("{" + ok_entry + "}", 15)},
      {"dim_past_uint64",
       MakeFile(R"({"t":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,16]}})", 16)},
      {"number_overflow", MakeFile(R"({"t":{"dtype":"F32","shape":[1e400],"data_offsets":[0,16]}})", 16)},
      {"duplicate_tensor", MakeFile("{" + ok_entry + "," + ok_entry + "}", 16)},
      {"invalid_utf8", MakeFile("{\"\xff\xfe\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0)},
      {"deep_nesting", MakeFile(std::string(100000, '[') + std::string(100000, ']'), 0)},
  };
  for (const Case& c : cases) ExpectRejected(c.bytes, c.what);
}

TEST(SafetensorsCorrupt, OpenNamesTheFile) {
  TempDir dir;
  const std::string path = dir.Path("broken.safetensors");
  WriteRaw(path, MakeFile("[1]", 0));
  auto file = SafetensorsFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find(path), std::string::npos) << file.status().message();
  auto missing = SafetensorsFile::Open(dir.Path("missing.safetensors"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.safetensors"), std::string::npos);
}

TEST(SafetensorsCorrupt, HighRankIsReadableMetadataButNotATensor) {
  // Rank 5 is valid safetensors; the entry parses but a Tensor view (max rank 4) is refused.
  const std::string bytes =
      MakeFile(R"({"t":{"dtype":"U8","shape":[1,1,1,1,2],"data_offsets":[0,2]}})", 2);
  std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  auto file = SafetensorsFile::Parse(span, "rank5");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->GetTensor("t").status().code(), core::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace arle::io
