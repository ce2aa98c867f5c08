// Streaming output parsers: the tag-driven Qwen3/Hermes parser (<think>, <tool_call>{json}), the
// delta bookkeeping and the model-family registry.
#include "arle/runtime/output_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

namespace arle::runtime {
namespace {

// Bytes at the end of `s` that form an incomplete UTF-8 sequence (0 when the end is complete or
// the bytes are not valid UTF-8 anyway, which then pass through unchanged).
size_t IncompleteUtf8Suffix(std::string_view s) {
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

// Length of the longest suffix of `s` that is a proper prefix of one of `tags`.
size_t PartialTagSuffix(std::string_view s, const std::vector<std::string_view>& tags) {
  size_t max_len = 0;
  for (std::string_view tag : tags) max_len = std::max(max_len, tag.size());
  for (size_t len = std::min(s.size(), max_len == 0 ? 0 : max_len - 1); len > 0; --len) {
    std::string_view suffix = s.substr(s.size() - len);
    for (std::string_view tag : tags) {
      if (tag.size() > len && tag.substr(0, len) == suffix) return len;
    }
  }
  return 0;
}

class TaggedOutputParser final : public OutputParser {
 public:
  TaggedOutputParser(TaggedParserConfig config, OutputParserOptions options)
      : config_(std::move(config)), options_(std::move(options)) {
    if (config_.think_open.empty() || config_.think_close.empty()) {
      config_.think_open.clear();
      config_.think_close.clear();
    }
    if (config_.tool_open.empty() || config_.tool_close.empty()) {
      config_.tool_open.clear();
      config_.tool_close.clear();
    }
    if (options_.start_in_reasoning && !config_.think_open.empty()) {
      state_ = State::kReasoning;
      redundant_open_allowed_ = true;
    }
  }

  void Feed(std::string_view piece, std::vector<OutputDelta>* deltas) override {
    ARLE_CHECK(!flushed_) << "OutputParser::Feed after Flush";
    pending_.append(piece);
    Process(/*final=*/false, deltas);
  }

  void Flush(std::vector<OutputDelta>* deltas) override {
    ARLE_CHECK(!flushed_) << "OutputParser::Flush called twice";
    flushed_ = true;
    Process(/*final=*/true, deltas);
    switch (state_) {
      case State::kContent:
        break;
      case State::kReasoning:
        MarkMalformed(fmt::format("unclosed {}: the output ended inside reasoning",
                                  config_.think_open));
        break;
      case State::kToolCall: {
        MarkMalformed(fmt::format("unclosed {}: passed through as content", config_.tool_open));
        std::string raw = config_.tool_open + pending_;
        pending_.clear();
        state_ = State::kContent;
        at_segment_start_ = false;
        EmitText(raw, deltas);
        break;
      }
    }
    held_newlines_ = 0;  // trailing newlines of the last segment are formatting
  }

 private:
  enum class State { kContent, kReasoning, kToolCall };

  void Process(bool final, std::vector<OutputDelta>* deltas) {
    while (true) {
      if (state_ == State::kToolCall) {
        size_t pos = pending_.find(config_.tool_close);
        if (pos == std::string::npos) return;  // the body is buffered until its closing tag
        std::string body = pending_.substr(0, pos);
        pending_.erase(0, pos + config_.tool_close.size());
        state_ = State::kContent;
        // Newlines after a tool call are formatting; those held from before it stay held, so
        // text on both sides of the call keeps the separation the model wrote before it.
        at_segment_start_ = true;
        FinishToolCall(body, deltas);
        continue;
      }
      std::vector<std::string_view> tags;
      if (state_ == State::kContent) {
        if (!config_.think_open.empty()) tags.push_back(config_.think_open);
        if (!config_.tool_open.empty()) tags.push_back(config_.tool_open);
      } else {
        tags.push_back(config_.think_close);
        if (redundant_open_allowed_) tags.push_back(config_.think_open);
      }
      size_t best_pos = std::string::npos;
      std::string_view best_tag;
      for (std::string_view tag : tags) {
        size_t pos = pending_.find(tag);
        if (pos < best_pos) {
          best_pos = pos;
          best_tag = tag;
        }
      }
      if (best_pos != std::string::npos && state_ == State::kReasoning &&
          best_tag == config_.think_open) {
        // The prompt opened reasoning but the model opened it again: drop that second opening
        // tag when only newlines precede it, else it is reasoning text.
        redundant_open_allowed_ = false;
        bool only_newlines =
            std::string_view(pending_).substr(0, best_pos).find_first_not_of('\n') ==
            std::string_view::npos;
        size_t end = best_pos + best_tag.size();
        if (only_newlines) {
          pending_.erase(0, end);
          StartSegment();
        } else {
          EmitText(std::string_view(pending_).substr(0, end), deltas);
          pending_.erase(0, end);
        }
        continue;
      }
      if (best_pos != std::string::npos) {
        redundant_open_allowed_ = false;
        EmitText(std::string_view(pending_).substr(0, best_pos), deltas);
        pending_.erase(0, best_pos + best_tag.size());
        if (best_tag == config_.tool_open) {
          state_ = State::kToolCall;  // held newlines wait for the text after the call
          continue;
        }
        // Newlines before and after a reasoning tag are formatting.
        state_ = best_tag == config_.think_open ? State::kReasoning : State::kContent;
        StartSegment();
        continue;
      }
      size_t hold = 0;
      if (!final) {
        hold = PartialTagSuffix(pending_, tags);
        if (hold == 0) hold = IncompleteUtf8Suffix(pending_);
      }
      EmitText(std::string_view(pending_).substr(0, pending_.size() - hold), deltas);
      pending_.erase(0, pending_.size() - hold);
      return;
    }
  }

  void StartSegment() {
    at_segment_start_ = true;
    held_newlines_ = 0;
  }

  // Emits text of the current content/reasoning segment, dropping its leading newlines and
  // holding trailing ones until more text of the same segment follows.
  void EmitText(std::string_view text, std::vector<OutputDelta>* deltas) {
    if (at_segment_start_) {
      size_t skip = text.find_first_not_of('\n');
      if (skip == std::string_view::npos) return;
      text.remove_prefix(skip);
      at_segment_start_ = false;
    }
    if (text.empty()) return;
    size_t last = text.find_last_not_of('\n');
    if (last == std::string_view::npos) {
      held_newlines_ += text.size();
      return;
    }
    std::string_view body = text.substr(0, last + 1);
    OutputDelta delta;
    delta.kind = state_ == State::kReasoning ? OutputDeltaKind::kReasoning
                                             : OutputDeltaKind::kContent;
    delta.text.assign(held_newlines_, '\n');
    delta.text.append(body);
    held_newlines_ = text.size() - body.size();
    redundant_open_allowed_ = false;
    Emit(std::move(delta), deltas);
  }

  void FinishToolCall(const std::string& body, std::vector<OutputDelta>* deltas) {

    std::string problem;
    std::string name;
    std::string arguments;
    using ojson = nlohmann::ordered_json;
    ojson parsed = ojson::parse(body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      problem = "invalid JSON";
    } else if (!parsed.is_object()) {
      problem = "the JSON is not an object";
    } else {
      auto name_it = parsed.find("name");
      if (name_it == parsed.end() || !name_it->is_string() ||
          name_it->get_ref<const std::string&>().empty()) {
        problem = "no \"name\" string";
      } else {
        name = name_it->get<std::string>();
        auto args_it = parsed.find("arguments");
        if (args_it == parsed.end()) args_it = parsed.find("parameters");
        if (args_it == parsed.end() || args_it->is_null()) {
          arguments = "{}";
        } else if (args_it->is_string()) {
          arguments = args_it->get<std::string>();  // already a JSON text
        } else {
          arguments = args_it->dump(-1, ' ', /*ensure_ascii=*/false,
                                    ojson::error_handler_t::replace);
        }
      }
    }
    if (!problem.empty()) {
      MarkMalformed(fmt::format("{} in {} #{}: passed through as content", problem,
                                config_.tool_open, n_tool_blocks_));
      ++n_tool_blocks_;
      at_segment_start_ = false;
      EmitText(config_.tool_open + body + config_.tool_close, deltas);
      at_segment_start_ = true;
      return;
    }
    ++n_tool_blocks_;
    int index = n_tool_calls_++;
    OutputDelta start;
    start.kind = OutputDeltaKind::kToolCallStart;
    start.tool_index = index;
    start.id = options_.call_id_prefix + std::to_string(index);
    start.name = std::move(name);
    Emit(std::move(start), deltas);
    OutputDelta args;
    args.kind = OutputDeltaKind::kToolCallArguments;
    args.tool_index = index;
    args.text = std::move(arguments);
    Emit(std::move(args), deltas);
    OutputDelta end;
    end.kind = OutputDeltaKind::kToolCallEnd;
    end.tool_index = index;
    Emit(std::move(end), deltas);
  }

  TaggedParserConfig config_;
  OutputParserOptions options_;
  State state_ = State::kContent;
  std::string pending_;
  bool at_segment_start_ = true;
  size_t held_newlines_ = 0;
  bool redundant_open_allowed_ = false;  // start_in_reasoning and no reasoning text yet
  int n_tool_calls_ = 0;
  int n_tool_blocks_ = 0;
  bool flushed_ = false;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

std::string_view OutputDeltaKindName(OutputDeltaKind kind) {
  switch (kind) {
    case OutputDeltaKind::kContent:
      return "content";
    case OutputDeltaKind::kReasoning:
      return "reasoning";
    case OutputDeltaKind::kToolCallStart:
      return "tool_call_start";
    case OutputDeltaKind::kToolCallArguments:
      return "tool_call_arguments";
    case OutputDeltaKind::kToolCallEnd:
      return "tool_call_end";
  }
  return "";
}

void ApplyOutputDelta(const OutputDelta& delta, ParsedOutput* out) {
  switch (delta.kind) {
    case OutputDeltaKind::kContent:
      out->content += delta.text;
      break;
    case OutputDeltaKind::kReasoning:
      out->reasoning += delta.text;
      break;
    case OutputDeltaKind::kToolCallStart: {
      ARLE_CHECK_EQ(delta.tool_index, static_cast<int>(out->tool_calls.size()));
      ToolCall call;
      call.id = delta.id;
      call.name = delta.name;
      out->tool_calls.push_back(std::move(call));
      break;
    }
    case OutputDeltaKind::kToolCallArguments:
      ARLE_CHECK(delta.tool_index >= 0 &&
                 delta.tool_index < static_cast<int>(out->tool_calls.size()));
      out->tool_calls[delta.tool_index].arguments += delta.text;
      break;
    case OutputDeltaKind::kToolCallEnd:
      break;
  }
}

void OutputParser::Emit(OutputDelta delta, std::vector<OutputDelta>* deltas) {
  ApplyOutputDelta(delta, &result_);
  deltas->push_back(std::move(delta));
}

void OutputParser::MarkMalformed(std::string problem) {
  result_.malformed = true;
  result_.problems.push_back(std::move(problem));
}

ParsedOutput ParseOutput(OutputParser& parser, std::string_view text) {
  std::vector<OutputDelta> deltas;
  parser.Feed(text, &deltas);
  parser.Flush(&deltas);
  return parser.result();
}

bool PromptEndsInsideReasoning(std::string_view prompt, const TaggedParserConfig& config) {
  if (config.think_open.empty() || config.think_close.empty()) return false;
  size_t open = prompt.rfind(config.think_open);
  if (open == std::string_view::npos) return false;
  size_t close = prompt.rfind(config.think_close);
  return close == std::string_view::npos || close < open;
}

std::unique_ptr<OutputParser> MakeTaggedOutputParser(TaggedParserConfig config,
                                                     OutputParserOptions options) {
  return std::make_unique<TaggedOutputParser>(std::move(config), std::move(options));
}

struct OutputParserRegistry::Impl {
  mutable std::mutex mu;
  std::map<std::string, Factory> factories;
};

OutputParserRegistry::OutputParserRegistry() : impl_(std::make_shared<Impl>()) {}

OutputParserRegistry& OutputParserRegistry::Default() {
  static OutputParserRegistry* registry = [] {
    auto* r = new OutputParserRegistry();
    auto qwen = [](const OutputParserOptions& options) {
      return MakeTaggedOutputParser(TaggedParserConfig{}, options);
    };
    for (const char* family : {"qwen3", "qwen2", "qwen", "hermes"}) {
      ARLE_CHECK(r->Register(family, qwen).ok());
    }
    ARLE_CHECK(r->Register("plain", [](const OutputParserOptions& options) {
                  TaggedParserConfig none{"", "", "", ""};
                  return MakeTaggedOutputParser(none, options);
                }).ok());
    return r;
  }();
  return *registry;
}

core::Status OutputParserRegistry::Register(std::string family, Factory factory) {
  if (family.empty() || !factory) {
    return core::InvalidArgumentError("an output parser needs a family name and a factory");
  }
  family = Lower(family);
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->factories.emplace(family, std::move(factory)).second) {
    return core::InvalidArgumentError(
        fmt::format("an output parser for family \"{}\" is already registered", family));
  }
  return core::OkStatus();
}

core::StatusOr<std::unique_ptr<OutputParser>> OutputParserRegistry::Create(
    std::string_view family, const OutputParserOptions& options) const {
  Factory factory;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->factories.find(Lower(family));
    if (it != impl_->factories.end()) factory = it->second;
  }
  if (!factory) {
    return core::NotFoundError(
        fmt::format("no output parser for model family \"{}\" (known: {})", family,
                    fmt::join(Families(), ", ")));
  }
  return factory(options);
}

std::vector<std::string> OutputParserRegistry::Families() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [name, factory] : impl_->factories) out.push_back(name);
  return out;
}

core::StatusOr<std::unique_ptr<OutputParser>> CreateOutputParser(
    std::string_view family, const OutputParserOptions& options) {
  return OutputParserRegistry::Default().Create(family, options);
}

}  // namespace arle::runtime
