// Reading evaluation data files into records: JSON Lines, a JSON array, CSV (RFC 4180), and
// llama.cpp's HellaSwag text format, each optionally gzip-compressed. Every record remembers where
// it came from so task errors can name FILE:LINE and the field. For .cc files only: records are
// nlohmann::json objects (arle_eval links nlohmann_json privately; a test that includes this
// header links it too).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::eval {

enum class DataFormat {
  kAuto,           // from the file name (see FormatForPath)
  kJsonl,          // one JSON object per line; blank lines skipped
  kJsonArray,      // one JSON array of objects
  kCsv,            // RFC 4180: a header row names the columns, unless columns are given
  kHellaswagText,  // llama.cpp / klosax: 6 lines per task (see ReadHellaswagText)
};

// One record of a data file.
struct Record {
  nlohmann::json fields;  // a JSON object
  int64_t number = 0;     // 1-based: the line the record starts on, or its index in a JSON array
  std::string where;      // "FILE:LINE" ("FILE: record N" in a JSON array): its errors' prefix
};

// The format a file name implies, after dropping a ".gz" suffix: .jsonl/.ndjson -> JSONL, .csv ->
// CSV, .txt -> HellaSwag text, .json -> a JSON array when the content starts with '[', else JSONL
// (decided when reading). InvalidArgument naming the file for any other extension.
core::StatusOr<DataFormat> FormatForPath(const std::string& path);

// Reads every record of `path` (gzip-compressed or not, whatever its name). `csv_columns` names
// the columns of a CSV file without a header row (MMLU's question,A,B,C,D,answer); empty: the
// first row is the header. CSV values are JSON strings.
// Errors, each naming the file (and the 1-based line or record where there is one):
// NotFound/IoError when the file cannot be read; DataLoss for text that is not JSON, an
// unterminated CSV quote or a truncated HellaSwag task; InvalidArgument for a record that is not
// a JSON object, a CSV row with the wrong number of values, or a HellaSwag label that is not an
// integer.
core::StatusOr<std::vector<Record>> ReadRecords(const std::string& path,
                                                DataFormat format = DataFormat::kAuto,
                                                const std::vector<std::string>& csv_columns = {});

// Parsers over bytes already read; `name` is the file name used in `where` and in errors.
core::StatusOr<std::vector<Record>> ParseJsonl(std::string_view bytes, const std::string& name);
core::StatusOr<std::vector<Record>> ParseJsonArray(std::string_view bytes, const std::string& name);
core::StatusOr<std::vector<Record>> ParseCsv(std::string_view bytes, const std::string& name,
                                             const std::vector<std::string>& columns = {});
// llama.cpp's hellaswag_val_full.txt: per task the line "activity_label: ctx", the gold label
// (an integer), then 4 endings, one per line. Each task becomes {"context": line 1, "label": int,
// "endings": [4 strings]}; `number` is the task's first line. A trailing '\r' is dropped.
core::StatusOr<std::vector<Record>> ParseHellaswagText(std::string_view bytes,
                                                       const std::string& name);

// Typed reading of one record's fields. Errors are InvalidArgument "WHERE: missing required field
// "KEY"" / "WHERE: field "KEY" must be ..., got ..." with Status::field() set to the key (nested
// keys as "choices.text"), so a caller can report the field without parsing messages.
class RecordReader {
 public:
  explicit RecordReader(const Record& record) : record_(record) {}

  bool Has(std::string_view key) const;
  // A string; a number is not accepted.
  core::StatusOr<std::string> String(std::string_view key) const;
  // A string, or an integer as its decimal text (ids such as 7 -> "7").
  core::StatusOr<std::string> StringOrInt(std::string_view key) const;
  // An integer (exact integral floats accepted) or a string of decimal digits ("3").
  core::StatusOr<int64_t> IntOrDigits(std::string_view key) const;
  // A non-empty array of strings. InvalidArgument "... field "KEY" is empty" when it has none.
  core::StatusOr<std::vector<std::string>> StringList(std::string_view key) const;
  // `object_key`.`key` of a nested object ("choices.text").
  core::StatusOr<std::vector<std::string>> NestedStringList(std::string_view object_key,
                                                            std::string_view key) const;
  // An optional id: absent -> nullopt; a string or integer -> its text.
  core::StatusOr<std::optional<std::string>> OptionalId(std::string_view key) const;

  // InvalidArgument "WHERE: field "KEY" MESSAGE" naming the field, for checks of values.
  core::Status FieldError(std::string_view key, std::string_view message) const;

  const Record& record() const { return record_; }

 private:
  const Record& record_;
};

}  // namespace arle::eval
