// Evaluation data readers (see task_data.h). Field errors go through io::JsonFields so they read
// like every other "missing required field" error of the project.
#include "arle/eval/task_data.h"

#include <fmt/format.h>

#include <utility>

#include "arle/io/compressed.h"
#include "arle/io/json_fields.h"

namespace arle::eval {

using nlohmann::json;

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view StripBom(std::string_view bytes) {
  if (bytes.size() >= 3 && bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  return bytes;
}

std::string LineWhere(const std::string& name, int64_t line) {
  return fmt::format("{}:{}", name, line);
}

// Lines with their 1-based numbers; a trailing '\r' is dropped. The same split as
// train/jsonl.h's, which eval cannot include (train and eval are siblings).
struct Line {
  int64_t number;
  std::string_view text;
};
std::vector<Line> SplitLines(std::string_view bytes) {
  std::vector<Line> lines;
  int64_t number = 0;
  while (!bytes.empty()) {
    const size_t end = bytes.find('\n');
    std::string_view line = bytes.substr(0, end);
    bytes = end == std::string_view::npos ? std::string_view() : bytes.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back({++number, line});
  }
  return lines;
}

bool IsBlank(std::string_view s) { return s.find_first_not_of(" \t") == std::string_view::npos; }

core::Status NotAnObject(const std::string& where, const json& j) {
  return core::InvalidArgumentError(
      fmt::format("{}: expected a JSON object, got {}", where, io::JsonTypeName(j)));
}

}  // namespace

core::StatusOr<DataFormat> FormatForPath(const std::string& path) {
  std::string_view name(path);
  if (EndsWith(name, ".gz")) name.remove_suffix(3);
  if (EndsWith(name, ".jsonl") || EndsWith(name, ".ndjson")) return DataFormat::kJsonl;
  if (EndsWith(name, ".json")) return DataFormat::kAuto;  // '[' or not, decided on the bytes
  if (EndsWith(name, ".csv")) return DataFormat::kCsv;
  if (EndsWith(name, ".txt")) return DataFormat::kHellaswagText;
  return core::InvalidArgumentError(fmt::format(
      "{}: unknown data format (expected .jsonl, .json, .csv or .txt, optionally .gz)", path));
}

core::StatusOr<std::vector<Record>> ReadRecords(const std::string& path, DataFormat format,
                                                const std::vector<std::string>& csv_columns) {
  if (format == DataFormat::kAuto) {
    ARLE_ASSIGN_OR_RETURN(format, FormatForPath(path));
  }
  ARLE_ASSIGN_OR_RETURN(const std::string bytes, io::ReadMaybeGzipFile(path));
  switch (format) {
    case DataFormat::kAuto: {
      const std::string_view body = StripBom(bytes);
      const size_t first = body.find_first_not_of(" \t\r\n");
      if (first != std::string_view::npos && body[first] == '[') return ParseJsonArray(bytes, path);
      return ParseJsonl(bytes, path);
    }
    case DataFormat::kJsonl:
      return ParseJsonl(bytes, path);
    case DataFormat::kJsonArray:
      return ParseJsonArray(bytes, path);
    case DataFormat::kCsv:
      return ParseCsv(bytes, path, csv_columns);
    case DataFormat::kHellaswagText:
      return ParseHellaswagText(bytes, path);
  }
  return core::InternalError("unhandled data format");
}

core::StatusOr<std::vector<Record>> ParseJsonl(std::string_view bytes, const std::string& name) {
  std::vector<Record> records;
  for (const Line& line : SplitLines(StripBom(bytes))) {
    if (IsBlank(line.text)) continue;
    Record r;
    r.number = line.number;
    r.where = LineWhere(name, line.number);
    ARLE_ASSIGN_OR_RETURN(r.fields, io::ParseJsonObject(line.text, r.where));
    records.push_back(std::move(r));
  }
  return records;
}

core::StatusOr<std::vector<Record>> ParseJsonArray(std::string_view bytes,
                                                   const std::string& name) {
  bytes = StripBom(bytes);
  json array;
  try {
    array = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    return core::DataLossError(fmt::format("{}: not valid JSON: {}", name, e.what()));
  }
  if (!array.is_array()) {
    return core::InvalidArgumentError(
        fmt::format("{}: expected a JSON array of objects, got {}", name, io::JsonTypeName(array)));
  }
  std::vector<Record> records;
  records.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    Record r;
    r.number = static_cast<int64_t>(i) + 1;
    r.where = fmt::format("{}: record {}", name, r.number);
    if (!array[i].is_object()) return NotAnObject(r.where, array[i]);
    r.fields = std::move(array[i]);
    records.push_back(std::move(r));
  }
  return records;
}

core::StatusOr<std::vector<Record>> ParseCsv(std::string_view bytes, const std::string& name,
                                             const std::vector<std::string>& columns) {
  bytes = StripBom(bytes);
  // Rows as value lists with the line each starts on. Newlines inside quotes belong to the value;
  // CRLF, LF and a lone CR all end a row, as Python's csv reader takes them.
  struct Row {
    int64_t line;
    std::vector<std::string> values;
  };
  std::vector<Row> rows;
  int64_t line = 1;
  size_t i = 0;
  const size_t n = bytes.size();
  auto at_row_end = [&](size_t p) { return p >= n || bytes[p] == '\n' || bytes[p] == '\r'; };
  auto skip_newline = [&]() {
    if (i < n && bytes[i] == '\r') ++i;
    if (i < n && bytes[i] == '\n') ++i;
    ++line;
  };
  while (i < n) {
    if (bytes[i] == '\n' || bytes[i] == '\r') {  // an empty line is no row
      skip_newline();
      continue;
    }
    Row row{line, {}};
    while (true) {
      std::string value;
      if (i < n && bytes[i] == '"') {
        const int64_t quote_line = line;
        ++i;
        while (true) {
          if (i >= n) {
            return core::DataLossError(fmt::format(
                "{}:{}: unterminated quoted value (the quote opened on line {} never closes)", name,
                row.line, quote_line));
          }
          const char c = bytes[i];
          if (c == '"') {
            if (i + 1 < n && bytes[i + 1] == '"') {
              value.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n' || (c == '\r' && !(i + 1 < n && bytes[i + 1] == '\n'))) ++line;
          value.push_back(c);
          ++i;
        }
        if (!at_row_end(i) && bytes[i] != ',') {
          return core::DataLossError(fmt::format(
              "{}:{}: unexpected character '{}' after a closing quote (RFC 4180: a quote inside a "
              "quoted value is written twice)",
              name, line, bytes[i]));
        }
      } else {
        while (!at_row_end(i) && bytes[i] != ',') {
          if (bytes[i] == '"') {
            return core::DataLossError(fmt::format(
                "{}:{}: a quote inside an unquoted value (RFC 4180: quote the whole value and "
                "write the quote twice)",
                name, line));
          }
          value.push_back(bytes[i++]);
        }
      }
      row.values.push_back(std::move(value));
      if (i < n && bytes[i] == ',') {
        ++i;
        continue;
      }
      break;  // at a row end
    }
    if (i < n) skip_newline();
    rows.push_back(std::move(row));
  }

  std::vector<std::string> names = columns;
  size_t first_row = 0;
  if (names.empty()) {
    if (rows.empty()) return std::vector<Record>();
    names = rows[0].values;
    first_row = 1;
    for (size_t a = 0; a < names.size(); ++a) {
      for (size_t b = a + 1; b < names.size(); ++b) {
        if (names[a] == names[b]) {
          return core::InvalidArgumentError(fmt::format(
              "{}:{}: the header names column \"{}\" twice", name, rows[0].line, names[a]));
        }
      }
    }
  }
  std::vector<Record> records;
  records.reserve(rows.size() - first_row);
  for (size_t r = first_row; r < rows.size(); ++r) {
    Row& row = rows[r];
    if (row.values.size() != names.size()) {
      return core::InvalidArgumentError(fmt::format("{}:{}: {} values, expected {} ({})", name,
                                                    row.line, row.values.size(), names.size(),
                                                    fmt::join(names, ",")));
    }
    Record rec;
    rec.number = row.line;
    rec.where = LineWhere(name, row.line);
    rec.fields = json::object();
    for (size_t c = 0; c < names.size(); ++c) rec.fields[names[c]] = std::move(row.values[c]);
    records.push_back(std::move(rec));
  }
  return records;
}

core::StatusOr<std::vector<Record>> ParseHellaswagText(std::string_view bytes,
                                                       const std::string& name) {
  std::vector<Line> lines = SplitLines(StripBom(bytes));
  // Endings may be blank, so only blank lines at the very end are padding.
  while (!lines.empty() && IsBlank(lines.back().text)) lines.pop_back();
  constexpr size_t kLinesPerTask = 6;
  if (lines.size() % kLinesPerTask != 0) {
    const size_t start = lines.size() / kLinesPerTask * kLinesPerTask;
    return core::DataLossError(fmt::format(
        "{}:{}: truncated HellaSwag task: {} of its {} lines (context, label, 4 endings)", name,
        lines[start].number, lines.size() - start, kLinesPerTask));
  }
  std::vector<Record> records;
  records.reserve(lines.size() / kLinesPerTask);
  for (size_t t = 0; t < lines.size(); t += kLinesPerTask) {
    Record r;
    r.number = lines[t].number;
    r.where = LineWhere(name, r.number);
    const std::string_view label_text = lines[t + 1].text;
    int64_t label = 0;
    bool digits = !label_text.empty() && label_text.size() <= 9;
    for (const char c : label_text) {
      if (c < '0' || c > '9') digits = false;
      if (digits) label = label * 10 + (c - '0');
    }
    if (!digits) {
      return core::InvalidArgumentError(
                 fmt::format("{}:{}: field \"label\": the gold label \"{}\" is not an integer",
                             name, lines[t + 1].number, label_text))
          .WithField("label");
    }
    json endings = json::array();
    for (size_t e = 2; e < kLinesPerTask; ++e) endings.push_back(std::string(lines[t + e].text));
    r.fields =
        json{{"context", std::string(lines[t].text)}, {"label", label}, {"endings", endings}};
    records.push_back(std::move(r));
  }
  return records;
}

bool RecordReader::Has(std::string_view key) const {
  return io::JsonFields(record_.fields, record_.where).Has(key);
}

core::Status RecordReader::FieldError(std::string_view key, std::string_view message) const {
  return core::InvalidArgumentError(fmt::format("{}: field \"{}\" {}", record_.where, key, message))
      .WithField(std::string(key));
}

core::StatusOr<std::string> RecordReader::String(std::string_view key) const {
  const io::JsonFields f(record_.fields, record_.where);
  if (!f.Has(key)) return f.Missing(key).WithField(std::string(key));
  const json& v = record_.fields.at(key);
  if (!v.is_string()) return f.WrongType(key, "a string").WithField(std::string(key));
  return v.get<std::string>();
}

core::StatusOr<std::string> RecordReader::StringOrInt(std::string_view key) const {
  const io::JsonFields f(record_.fields, record_.where);
  if (!f.Has(key)) return f.Missing(key).WithField(std::string(key));
  const json& v = record_.fields.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();
  return f.WrongType(key, "a string or an integer").WithField(std::string(key));
}

core::StatusOr<int64_t> RecordReader::IntOrDigits(std::string_view key) const {
  const io::JsonFields f(record_.fields, record_.where);
  if (!f.Has(key)) return f.Missing(key).WithField(std::string(key));
  const json& v = record_.fields.at(key);
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    int64_t value = 0;
    bool digits = !s.empty() && s.size() <= 18;
    for (const char c : s) {
      if (c < '0' || c > '9') digits = false;
      if (digits) value = value * 10 + (c - '0');
    }
    if (digits) return value;
    return FieldError(key, fmt::format("must be an integer, got the string \"{}\"", s));
  }
  if (auto i = io::JsonToInt(v)) return *i;
  return f.WrongType(key, "an integer").WithField(std::string(key));
}

namespace {

core::StatusOr<std::vector<std::string>> StringListOf(const Record& record, const json& object,
                                                      std::string_view key,
                                                      const std::string& prefix) {
  const io::JsonFields f(object, record.where, prefix);
  const std::string field = prefix + std::string(key);
  if (!f.Has(key)) return f.Missing(key).WithField(field);
  const json& v = object.at(key);
  if (!v.is_array()) return f.WrongType(key, "an array of strings").WithField(field);
  if (v.empty()) {
    return core::InvalidArgumentError(fmt::format("{}: field \"{}\" is empty", record.where, field))
        .WithField(field);
  }
  std::vector<std::string> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) {
      return core::InvalidArgumentError(fmt::format("{}: field \"{}[{}]\" must be a string, got {}",
                                                    record.where, field, i, io::JsonTypeName(v[i])))
          .WithField(field);
    }
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

}  // namespace

core::StatusOr<std::vector<std::string>> RecordReader::StringList(std::string_view key) const {
  return StringListOf(record_, record_.fields, key, "");
}

core::StatusOr<std::vector<std::string>> RecordReader::NestedStringList(
    std::string_view object_key, std::string_view key) const {
  const io::JsonFields f(record_.fields, record_.where);
  if (!f.Has(object_key)) return f.Missing(object_key).WithField(std::string(object_key));
  const json& object = record_.fields.at(object_key);
  if (!object.is_object()) {
    return f.WrongType(object_key, "an object").WithField(std::string(object_key));
  }
  return StringListOf(record_, object, key, std::string(object_key) + ".");
}

core::StatusOr<std::optional<std::string>> RecordReader::OptionalId(std::string_view key) const {
  if (!Has(key)) return std::optional<std::string>();
  ARLE_ASSIGN_OR_RETURN(std::string id, StringOrInt(key));
  return std::optional<std::string>(std::move(id));
}

}  // namespace arle::eval
