// SFT records: chat-template rendering, assistant-span discovery by rendering message prefixes,
// tokenization with a per-token loss mask, batching and the dry-run view (see sft_data.h).
#include "arle/train/sft_data.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "arle/io/json_fields.h"
#include "arle/train/jsonl.h"

namespace arle::train {
namespace {

using Json = nlohmann::ordered_json;

size_t CommonPrefix(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

Json Head(const Json& messages, size_t n) {
  Json out = Json::array();
  for (size_t i = 0; i < n; ++i) out.push_back(messages[i]);
  return out;
}

// The string of the last special token in `text`, or "" when it has none.
std::string LastSpecialToken(const tokenizer::Tokenizer& tok, std::string_view text) {
  const std::vector<int32_t> ids = tok.Encode(text, {.add_special_tokens = false});
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    if (tok.IsSpecial(*it)) return std::string(tok.IdToToken(*it));
  }
  return "";
}

// Byte offset of every token in the decoded stream, or false when the decoded bytes are not
// `text` (a normalizer changed it, or a SentencePiece prefix space): then offsets are unusable.
bool TokenOffsets(const tokenizer::Tokenizer& tok, std::span<const int32_t> ids,
                  const std::string& text, std::vector<size_t>* offsets) {
  tokenizer::Tokenizer::DecodeState state;
  std::string bytes;
  offsets->clear();
  for (int32_t id : ids) {
    offsets->push_back(bytes.size());
    tok.DecodeAppend(id, /*skip_special=*/false, &state, &bytes);
  }
  return bytes == text;
}

core::Status ValidateRecord(const Json& record) {
  if (!record.is_object()) return core::InvalidArgumentError("a record must be a JSON object");
  const auto messages = record.find("messages");
  if (messages == record.end() || !messages->is_array() || messages->empty()) {
    return core::InvalidArgumentError("missing or empty \"messages\" array",
                                      "each line must look like {\"messages\": [{\"role\": ...}]}");
  }
  bool has_assistant = false;
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return core::InvalidArgumentError("messages[" + std::to_string(i) +
                                        "] must be an object with a string \"role\"");
    }
    has_assistant |= m["role"] == "assistant";
  }
  if (!has_assistant) {
    return core::InvalidArgumentError("no assistant message: nothing to train on");
  }
  const auto tools = record.find("tools");
  if (tools != record.end() && !tools->is_null() && !tools->is_array()) {
    return core::InvalidArgumentError("\"tools\" must be an array");
  }
  return core::OkStatus();
}

}  // namespace

core::StatusOr<std::vector<TextSpan>> FindAssistantSpans(const tokenizer::ChatSetup& setup,
                                                         const tokenizer::Tokenizer& tok,
                                                         const Json& messages, const Json& tools,
                                                         const Json& kwargs,
                                                         const std::string& text) {
  std::vector<TextSpan> spans;
  size_t prev_end = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].value("role", "") != "assistant") continue;
    const Json head = Head(messages, i);
    std::string before, prompt;  // B and S of the header comment
    if (i > 0) {
      ARLE_ASSIGN_OR_RETURN(before, tokenizer::RenderChat(setup, head, tools, false, kwargs));
      ARLE_ASSIGN_OR_RETURN(prompt, tokenizer::RenderChat(setup, head, tools, true, kwargs));
    }
    ARLE_ASSIGN_OR_RETURN(std::string with_turn,
                          tokenizer::RenderChat(setup, Head(messages, i + 1), tools, false, kwargs));
    const std::string where = "assistant message " + std::to_string(i);
    if (!prompt.starts_with(before) || !with_turn.starts_with(before)) {
      return core::UnimplementedError(
          where + ": the chat template does not render the conversation as a prefix of itself",
          "SFT masks need a template that appends each message to the previous ones");
    }
    const std::string_view gen_prompt = std::string_view(prompt).substr(before.size());
    const std::string_view turn = std::string_view(with_turn).substr(before.size());

    size_t turn_start;
    if (text.starts_with(before) && before.size() >= prev_end) {
      turn_start = before.size();
    } else {
      // The history renders differently inside the whole conversation: find the turn's header.
      const std::string_view header = gen_prompt.substr(0, CommonPrefix(gen_prompt, turn));
      turn_start = header.empty() ? std::string::npos : text.find(header, prev_end);
      if (turn_start == std::string::npos) {
        return core::UnimplementedError(where + ": cannot find its turn in the rendered conversation");
      }
    }
    const size_t begin =
        turn_start + CommonPrefix(std::string_view(text).substr(turn_start), gen_prompt);

    size_t end;
    const std::string marker = LastSpecialToken(tok, turn.substr(CommonPrefix(turn, gen_prompt)));
    if (!marker.empty()) {
      const size_t at = text.find(marker, begin);
      if (at == std::string::npos) {
        return core::UnimplementedError(where + ": its end-of-turn token " + marker +
                                        " is missing from the rendered conversation");
      }
      end = at + marker.size();
    } else {
      const std::string_view body = turn.substr(CommonPrefix(turn, gen_prompt));
      if (text.compare(begin, body.size(), body) != 0) {
        return core::UnimplementedError(where + ": cannot find its text in the rendered conversation");
      }
      end = begin + body.size();
    }
    spans.push_back({begin, end});
    prev_end = end;
  }
  return spans;
}

core::StatusOr<SftExample> TokenizeConversation(const tokenizer::ChatSetup& setup,
                                                const tokenizer::Tokenizer& tok,
                                                const Json& record, const SftOptions& options) {
  ARLE_CHECK(options.seq >= 1);
  ARLE_RETURN_IF_ERROR(ValidateRecord(record));
  const Json& messages = record["messages"];
  const Json tools = record.contains("tools") ? record["tools"] : Json();
  const Json kwargs = options.template_kwargs != nullptr && !options.template_kwargs->is_null()
                          ? *options.template_kwargs
                          : Json::object();
  SftExample ex;
  ARLE_ASSIGN_OR_RETURN(ex.text, tokenizer::RenderChat(setup, messages, tools, false, kwargs));
  ARLE_ASSIGN_OR_RETURN(ex.spans, FindAssistantSpans(setup, tok, messages, tools, kwargs, ex.text));

  // Whole-text encoding (what inference sees); the mask comes from each token's byte offset.
  ex.ids = tok.Encode(ex.text, {.add_special_tokens = false});
  std::vector<size_t> offsets;
  std::vector<uint8_t> mask;
  if (TokenOffsets(tok, ex.ids, ex.text, &offsets)) {
    size_t s = 0;
    for (size_t off : offsets) {
      while (s < ex.spans.size() && ex.spans[s].end <= off) ++s;
      mask.push_back(s < ex.spans.size() && off >= ex.spans[s].begin ? 1 : 0);
    }
  } else {
    // Offsets do not map back to the text: encode span by span so the boundaries are exact.
    ex.ids.clear();
    size_t pos = 0;
    auto append = [&](size_t from, size_t to, uint8_t bit) {
      const std::vector<int32_t> part =
          tok.Encode(std::string_view(ex.text).substr(from, to - from), {.add_special_tokens = false});
      ex.ids.insert(ex.ids.end(), part.begin(), part.end());
      mask.insert(mask.end(), part.size(), bit);
    };
    for (const TextSpan& span : ex.spans) {
      append(pos, span.begin, 0);
      append(span.begin, span.end, 1);
      pos = span.end;
    }
    append(pos, ex.text.size(), 0);
  }
  const size_t n = ex.ids.size();
  std::vector<int32_t> labels(n, kIgnoreIndex);
  for (size_t t = 0; t + 1 < n; ++t) {
    if (mask[t + 1]) labels[t] = ex.ids[t + 1];
  }
  ex.n_untruncated = static_cast<int64_t>(n);
  const size_t keep = std::min(n, static_cast<size_t>(options.seq));
  ex.ids.resize(keep);
  mask.resize(keep);
  labels.resize(keep);
  ex.mask = std::move(mask);
  ex.labels = std::move(labels);
  ex.n_labels = std::count_if(ex.labels.begin(), ex.labels.end(),
                              [](int32_t l) { return l != kIgnoreIndex; });
  return ex;
}

core::StatusOr<SftDataset> LoadSftData(const std::string& path, const tokenizer::ChatSetup& setup,
                                       const tokenizer::Tokenizer& tok, const SftOptions& options) {
  ARLE_ASSIGN_OR_RETURN(std::vector<JsonlLine> lines, ReadJsonlLines(path));
  SftDataset data;
  for (const JsonlLine& line : lines) {
    const std::string where = path + ":" + std::to_string(line.number);
    Json record = Json::parse(line.text, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded()) return core::DataLossError(where + ": not valid JSON");
    auto ex = TokenizeConversation(setup, tok, record, options);
    if (!ex.ok()) return ex.status().WithContext(where);
    ex->line = line.number;
    if (ex->n_labels == 0) {
      ++data.n_dropped;
      continue;
    }
    data.n_truncated += ex->n_untruncated > static_cast<int64_t>(ex->ids.size());
    data.examples.push_back(std::move(ex).value());
  }
  if (data.examples.empty()) {
    return core::InvalidArgumentError(path + ": no SFT example with an assistant token",
                                      "check the file and --seq");
  }
  return data;
}

SftBatch MakeSftBatch(std::span<const SftExample* const> examples, int64_t seq, int32_t pad_id) {
  SftBatch b;
  b.batch_size = static_cast<int64_t>(examples.size());
  b.seq = seq;
  b.ids.assign(b.batch_size * seq, pad_id);
  b.labels.assign(b.batch_size * seq, kIgnoreIndex);
  for (int64_t r = 0; r < b.batch_size; ++r) {
    const SftExample& ex = *examples[r];
    ARLE_CHECK(static_cast<int64_t>(ex.ids.size()) <= seq) << ex.ids.size() << " > " << seq;
    std::copy(ex.ids.begin(), ex.ids.end(), b.ids.begin() + r * seq);
    std::copy(ex.labels.begin(), ex.labels.end(), b.labels.begin() + r * seq);
    b.lengths.push_back(static_cast<int32_t>(ex.ids.size()));
  }
  return b;
}

Json SftDryRunJson(std::span<const SftExample> examples, const tokenizer::Tokenizer& tok,
                   int64_t max_records) {
  Json out = Json::array();
  for (const SftExample& ex : examples) {
    if (static_cast<int64_t>(out.size()) >= max_records) break;
    Json tokens = Json::array();
    for (size_t t = 0; t < ex.ids.size(); ++t) {
      const int32_t id = ex.ids[t];
      tokens.push_back({{"id", id}, {"text", tok.Decode(std::span<const int32_t>(&id, 1))},
                        {"loss", ex.mask[t] != 0}});
    }
    out.push_back({{"line", ex.line}, {"n_tokens", ex.ids.size()},
                   {"n_untruncated", ex.n_untruncated}, {"n_labels", ex.n_labels},
                   {"tokens", std::move(tokens)}});
  }
  return out;
}

}  // namespace arle::train
