// The model family registry: which family loads a Hugging Face `architectures` value or a GGUF
// `general.architecture`, and each architecture's chat knowledge (output parser, tool-call format,
// stop tokens), read from this one place by run, serve, the agent and `template`. Adding a family
// is a folder (models/NAME/: spec, weights, forward) plus its line in registry.cc.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"
#include "arle/models/model.h"

namespace arle::models {

// How an architecture's chat models talk: what parses their output and how a tool call is
// written. An empty tool_call_open means the format has no tool calls.
struct ChatFormat {
  // runtime::CreateOutputParser family: "qwen3" (<think> reasoning, <tool_call> JSON) or "plain".
  std::string output_parser = "plain";
  std::string tool_call_open;   // "<tool_call>": what starts a call (forced by tool_choice)
  std::string tool_call_close;  // "</tool_call>"
  // Special tokens that end an assistant turn besides the model's EOS ids ("<|im_end|>").
  std::vector<std::string> stop_tokens;

  bool has_tool_calls() const { return !tool_call_open.empty(); }
};

// One architecture a family serves.
struct ArchitectureEntry {
  std::string hf_name;    // config.json `architectures` value ("Qwen3ForCausalLM")
  std::string gguf_name;  // GGUF `general.architecture` ("qwen3")
  ChatFormat chat;
};

using LoadFn = std::function<core::StatusOr<std::unique_ptr<Model>>(const std::string& path,
                                                                    const LoadOptions& options)>;

struct FamilyEntry {
  std::string name;  // its folder: "llama"
  std::vector<ArchitectureEntry> architectures;
  LoadFn load_hf;    // a Hugging Face directory (config.json + safetensors)
  LoadFn load_gguf;  // a .gguf file
};

// Every registered family: arle's own (registry.cc), then those added by RegisterFamily.
std::vector<FamilyEntry> Families();

// Adds a family (tests, and families built outside this tree). A name or architecture already
// registered is replaced. Thread-safe.
void RegisterFamily(FamilyEntry family);

// The family and architecture entry for a Hugging Face `architectures` value or a GGUF
// `general.architecture`; NotFound naming the supported ones.
struct ArchitectureMatch {
  FamilyEntry family;
  ArchitectureEntry architecture;
};
core::StatusOr<ArchitectureMatch> FindHfArchitecture(std::string_view hf_name);
core::StatusOr<ArchitectureMatch> FindGgufArchitecture(std::string_view gguf_name);

// The chat format of an architecture (a loaded model's info().architecture); the plain format
// for one the registry does not know.
ChatFormat ChatFormatFor(std::string_view hf_architecture);

// Loads a Hugging Face model directory (its config.json names the architecture) or a .gguf file
// (its general.architecture) with the family that serves it. Errors name the file and the
// problem; an unknown architecture lists the supported ones.
core::StatusOr<std::unique_ptr<Model>> Load(const std::string& path,
                                            const LoadOptions& options = {});

}  // namespace arle::models
