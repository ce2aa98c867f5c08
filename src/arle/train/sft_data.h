// Supervised fine-tuning data: chat JSONL records rendered with the model's chat template and
// tokenized, with a loss mask over the assistant turns only, truncation and padded batches.
#pragma once

#include <nlohmann/json_fwd.hpp>  // declarations only; callers building JSON include json.hpp

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "arle/core/status.h"
#include "arle/tokenizer/chat_prompt.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::train {

// The label of a position that contributes no loss (torch.nn.CrossEntropyLoss's ignore_index).
inline constexpr int32_t kIgnoreIndex = -100;

struct SftOptions {
  int64_t seq = 2048;  // tokens per sequence; longer records are truncated (see SftExample)
  // Extra template variables, e.g. {"enable_thinking": false}; null or an object.
  const nlohmann::ordered_json* template_kwargs = nullptr;
};

// A byte range [begin, end) of the rendered conversation.
struct TextSpan {
  size_t begin = 0;
  size_t end = 0;
};

// One tokenized conversation.
//   ids: the rendered conversation, encoded whole as transformers' apply_chat_template(tokenize=
//     True) does (no added BOS/EOS, special tokens parsed), cut to its first `seq` tokens.
//   mask[t] = 1 when token t lies in an assistant span (its first byte is inside one), i.e. it is
//     a token the model must learn to produce.
//   labels[t] = ids[t + 1] when mask[t + 1] == 1, else kIgnoreIndex (what cross-entropy at
//     position t predicts). Labels are computed before the cut, so the last kept position still
//     predicts the first dropped token when that one is an assistant token.
struct SftExample {
  int64_t line = 0;              // 1-based JSONL line (0 when not from a file)
  std::string text;              // the rendered conversation
  std::vector<TextSpan> spans;   // assistant spans in `text`, one per assistant message
  std::vector<int32_t> ids;      // [n], n <= seq
  std::vector<uint8_t> mask;     // [n]
  std::vector<int32_t> labels;   // [n]
  int64_t n_untruncated = 0;     // token count before the cut
  int64_t n_labels = 0;          // labels != kIgnoreIndex
};

// The assistant spans of `messages` rendered as `text` (= RenderChat(messages, tools, false,
// kwargs)). For assistant message i, with B = render(messages[:i]), S = render(messages[:i],
// add_generation_prompt=true) and A = render(messages[:i+1]) (no generation prompt):
//   the turn starts where message i starts in `text` (at |B| when `text` begins with B; otherwise
//   at the first occurrence, after the previous span, of the header common to S's generation
//   prompt and A's turn, e.g. "<|im_start|>assistant\n": templates such as Qwen3 render earlier
//   turns' reasoning differently depending on the last message), plus the part of S's generation
//   prompt that `text` repeats there: the span begins right after the generation prompt, i.e.
//   with the first token the model would generate;
//   the span ends right after the turn's end-of-turn token (the last special token of A's turn,
//   e.g. <|im_end|>; what follows it, such as "\n", is not trained), found as its first
//   occurrence from the span's start; a template whose turns hold no special token ends the span
//   with the turn's text.
// Errors: whatever rendering returns, and Unimplemented when a turn cannot be located.
core::StatusOr<std::vector<TextSpan>> FindAssistantSpans(const tokenizer::ChatSetup& setup,
                                                         const tokenizer::Tokenizer& tokenizer,
                                                         const nlohmann::ordered_json& messages,
                                                         const nlohmann::ordered_json& tools,
                                                         const nlohmann::ordered_json& kwargs,
                                                         const std::string& text);

// Renders, locates spans and tokenizes one record {"messages": [...], "tools"?: [...]}.
// InvalidArgument for a record without a "messages" array of objects with string "role", with no
// assistant message, or with "tools" that is not an array.
core::StatusOr<SftExample> TokenizeConversation(const tokenizer::ChatSetup& setup,
                                                const tokenizer::Tokenizer& tokenizer,
                                                const nlohmann::ordered_json& record,
                                                const SftOptions& options);

struct SftDataset {
  std::vector<SftExample> examples;  // in file order
  int64_t n_truncated = 0;           // examples cut to seq tokens
  int64_t n_dropped = 0;             // records left with no label after the cut (not in examples)
};

// Reads a chat JSONL file. Errors name FILE:LINE (bad JSON, bad records); InvalidArgument when no
// example is left.
core::StatusOr<SftDataset> LoadSftData(const std::string& path, const tokenizer::ChatSetup& setup,
                                       const tokenizer::Tokenizer& tokenizer,
                                       const SftOptions& options);

// Rows of a padded batch: ids padded with `pad_id`, labels with kIgnoreIndex, to `seq` columns.
struct SftBatch {
  int64_t batch_size = 0;
  int64_t seq = 0;
  std::vector<int32_t> ids;     // [batch_size, seq]
  std::vector<int32_t> labels;  // [batch_size, seq]
  std::vector<int32_t> lengths; // [batch_size]: tokens before padding
};
// REQUIRES: every example has at most `seq` ids.
SftBatch MakeSftBatch(std::span<const SftExample* const> examples, int64_t seq, int32_t pad_id);

// The dry-run view of the first `max_records` examples for `arle train sft --dry-run --json`:
// [{"line", "n_tokens", "n_untruncated", "n_labels", "tokens": [{"id", "text", "loss"}]}], where
// "text" is the token decoded alone and "loss" its mask bit.
nlohmann::ordered_json SftDryRunJson(std::span<const SftExample> examples,
                                     const tokenizer::Tokenizer& tokenizer, int64_t max_records);

}  // namespace arle::train
