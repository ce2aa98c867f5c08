// `arle` (no arguments) and `arle repl`: the interactive agent. Lines are read with libedit
// (history in ~/.arle-history, a trailing backslash continues a message on the next line), or
// plainly when stdin is not a terminal. Each message runs one agent turn on the in-process
// engine; slash commands manage the conversation. Ctrl-C cancels the running generation or tool;
// at the prompt, a second Ctrl-C in a row exits.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <histedit.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <clocale>
#include <csignal>
#include <cstdlib>
#include <cwchar>
#include <fstream>
#include <iostream>
#include <memory>

#include "apps/arle/commands.h"
#include "apps/arle/generation_flags.h"
#include "apps/arle/run_agent.h"
#include "arle/agent/tools.h"
#include "arle/core/file_util.h"

namespace arle::app {
namespace {

using Json = nlohmann::ordered_json;

// Set by SIGINT; read by the turn (cancel) and the line reader (interrupted prompt).
std::atomic<bool> g_interrupted{false};

extern "C" void OnSigint(int) { g_interrupted.store(true, std::memory_order_relaxed); }

void InstallSigint() {
  struct sigaction sa = {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read returns EINTR
  ::sigaction(SIGINT, &sa, nullptr);
}

struct ReplOptions {
  std::string model;
  // Longer answers and a little cooler than `arle run`'s defaults, for a conversation.
  GenerationFlags gen{.max_tokens = 1024, .temperature = 0.7f};
  int threads = 0;
  std::string chat_template;
  std::string enable_thinking;
  AgentRunSettings agent;
};

class LineReader {
 public:
  enum class Result { kLine, kEof, kInterrupted };
  virtual ~LineReader() = default;
  virtual Result Read(const char* prompt, std::string* line) = 0;
  virtual void Remember(const std::string& /*entry*/) {}
};

// Lines from a pipe or file: no prompt, no editing.
class StreamReader : public LineReader {
 public:
  Result Read(const char*, std::string* line) override {
    if (!std::getline(std::cin, *line)) return Result::kEof;
    return Result::kLine;
  }
};

// libedit with emacs keys and a history file. Characters come through ReadChar so that Ctrl-C
// (SIGINT without SA_RESTART) interrupts the wait for input instead of being retried.
class EditLineReader : public LineReader {
 public:
  EditLineReader() {
    el_ = el_init("arle", stdin, stdout, stderr);
    el_set(el_, EL_EDITOR, "emacs");
    el_set(el_, EL_PROMPT, &EditLineReader::Prompt);
    el_set(el_, EL_GETCFN, &EditLineReader::ReadChar);
    history_ = history_init();
    HistEvent ev;
    history(history_, &ev, H_SETSIZE, 1000);
    if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
      history_path_ = core::JoinPath(home, ".arle-history");
      history(history_, &ev, H_LOAD, history_path_.c_str());
    }
    el_set(el_, EL_HIST, history, history_);
  }
  ~EditLineReader() override {
    history_end(history_);
    el_end(el_);
  }

  Result Read(const char* prompt, std::string* line) override {
    prompt_ = prompt;
    int count = 0;
    const char* text = el_gets(el_, &count);
    if (text == nullptr || count <= 0) {
      if (g_interrupted.load()) {
        el_reset(el_);
        return Result::kInterrupted;
      }
      return Result::kEof;
    }
    line->assign(text, static_cast<size_t>(count));
    if (!line->empty() && line->back() == '\n') line->pop_back();
    return Result::kLine;
  }

  void Remember(const std::string& entry) override {
    HistEvent ev;
    history(history_, &ev, H_ENTER, entry.c_str());
    if (!history_path_.empty()) history(history_, &ev, H_SAVE, history_path_.c_str());
  }

 private:
  static const char* prompt_;
  static char* Prompt(EditLine*) { return const_cast<char*>(prompt_); }

  static int ReadChar(EditLine*, wchar_t* out) {
    static std::mbstate_t state{};
    for (;;) {
      char byte;
      const ssize_t n = ::read(STDIN_FILENO, &byte, 1);
      if (n == 0) return 0;
      if (n < 0) {
        if (errno == EINTR && !g_interrupted.load()) continue;
        return -1;
      }
      wchar_t wc;
      const size_t r = std::mbrtowc(&wc, &byte, 1, &state);
      if (r == static_cast<size_t>(-2)) continue;  // more bytes of this character to come
      if (r == static_cast<size_t>(-1)) {         // invalid: drop the byte
        state = std::mbstate_t{};
        continue;
      }
      *out = wc;
      return 1;
    }
  }

  EditLine* el_ = nullptr;
  History* history_ = nullptr;
  std::string history_path_;
};
const char* EditLineReader::prompt_ = "> ";

constexpr const char* kHelp =
    "Type a message and press Enter (end a line with \\ to continue on the next one).\n"
    "  /help             this list\n"
    "  /reset, /clear    start a new conversation\n"
    "  /tools            the tools and the sandbox\n"
    "  /model            the model, its template and context\n"
    "  /stats            tokens, speed and prefix-cache use of this session\n"
    "  /save FILE        write the conversation (OpenAI messages JSON)\n"
    "  /load FILE        read a conversation written by /save\n"
    "  /export FILE      write the conversation as Markdown\n"
    "  /quit, /exit      leave (so do Ctrl-D and Ctrl-C twice at the prompt)\n"
    "Ctrl-C cancels a running answer or tool.\n";

struct SessionTotals {
  int64_t turns = 0, model_calls = 0, tool_calls = 0;
  agent::TurnUsage usage;  // summed over the turns (ttft_seconds unused)
};

std::string Markdown(const std::vector<agent::AgentMessage>& messages) {
  std::string md = "# arle conversation\n";
  for (const agent::AgentMessage& m : messages) {
    if (m.role == "system") {
      md += "\n**System:** " + m.content + "\n";
    } else if (m.role == "user") {
      md += "\n**User:** " + m.content + "\n";
    } else if (m.role == "assistant") {
      md += "\n**Assistant:**";
      if (!m.reasoning.empty()) {
        md += "\n\n<details><summary>reasoning</summary>\n\n" + m.reasoning + "\n\n</details>";
      }
      md += "\n\n" + m.content + "\n";
      for (const runtime::ToolCall& c : m.tool_calls) {
        const auto code = agent::ToolCodeArgument(c);
        md += "\nTool call `" + c.name + "`:\n\n```" + (c.name == "python" ? "python" : "sh") +
              "\n" + (code.ok() ? *code : c.arguments) + "\n```\n";
      }
    } else if (m.role == "tool") {
      md += "\nResult of `" + m.name + "`:\n\n```\n" + m.content + "```\n";
    }
  }
  return md;
}

class Repl {
 public:
  Repl(AgentSession& session, LineReader& reader, bool interactive)
      : session_(session), reader_(reader), interactive_(interactive) {}

  int Loop() {
    if (interactive_) {
      fmt::print("arle: {} ({} template). /help for commands; Ctrl-C cancels; Ctrl-D exits.\n",
                 session_.loaded().location.description,
                 session_.chat_setup().is_fallback ? "plain fallback" : "chat");
    }
    bool interrupted_at_prompt = false;
    for (;;) {
      g_interrupted = false;
      std::string input;
      const LineReader::Result r = ReadMessage(&input);
      if (r == LineReader::Result::kEof) break;
      if (r == LineReader::Result::kInterrupted) {
        if (interrupted_at_prompt) break;
        interrupted_at_prompt = true;
        fmt::print("\n(Ctrl-C again, or Ctrl-D, to exit)\n");
        continue;
      }
      interrupted_at_prompt = false;
      const size_t first = input.find_first_not_of(" \t\r\n");
      if (first == std::string::npos) continue;
      reader_.Remember(input);
      if (input[first] == '/') {
        if (!Command(input.substr(first))) break;
        continue;
      }
      Turn(input);
    }
    if (interactive_) fmt::print("\n");
    return kExitOk;
  }

 private:
  // One message: lines joined while they end with a backslash.
  LineReader::Result ReadMessage(std::string* message) {
    std::string line;
    const char* prompt = "> ";
    for (;;) {
      const LineReader::Result r = reader_.Read(interactive_ ? prompt : "", &line);
      if (r != LineReader::Result::kLine) return message->empty() ? r : LineReader::Result::kLine;
      if (!line.empty() && line.back() == '\\') {
        line.pop_back();
        *message += line + "\n";
        prompt = "... ";
        continue;
      }
      *message += line;
      return LineReader::Result::kLine;
    }
  }

  void Turn(const std::string& text) {
    const bool tty = ::isatty(STDOUT_FILENO) != 0;
    TurnPrinter printer(stdout, stdout, tty);
    agent::AgentEvents events = printer.Events();
    events.cancelled = [] { return g_interrupted.load(std::memory_order_relaxed); };
    auto result = session_.agent().RunTurn(text, events);
    printer.Finish();
    if (!result.ok()) {
      fmt::print(stderr, "arle: error: {}\n", result.status().ToString());
      return;
    }
    if (core::Status s = session_.WriteTrace(*result); !s.ok()) {
      fmt::print(stderr, "arle: error: {}\n", s.ToString());
    }
    ++totals_.turns;
    totals_.model_calls += static_cast<int64_t>(result->completions.size());
    totals_.tool_calls += static_cast<int64_t>(result->tools.size());
    const agent::TurnUsage u = agent::UsageOf(*result);
    totals_.usage.prompt_tokens += u.prompt_tokens;
    totals_.usage.cached_prompt_tokens += u.cached_prompt_tokens;
    totals_.usage.completion_tokens += u.completion_tokens;
    totals_.usage.seconds += u.seconds;
    const std::string summary = "[" + TurnSummary(*result) + "]";
    // Interactive: a dim line under the answer; piped: on stderr, so stdout is the answers.
    if (interactive_) {
      fmt::print("{}{}{}\n", tty ? "\x1b[2m" : "", summary, tty ? "\x1b[0m" : "");
    } else {
      fmt::print(stderr, "{}\n", summary);
    }
    std::fflush(stdout);
  }

  // Returns false to leave the REPL.
  bool Command(const std::string& line) {
    const size_t space = line.find_first_of(" \t");
    const std::string cmd = line.substr(0, space);
    std::string arg;
    if (space != std::string::npos) {
      const size_t a = line.find_first_not_of(" \t", space);
      const size_t b = line.find_last_not_of(" \t\r\n");
      if (a != std::string::npos) arg = line.substr(a, b - a + 1);
    }
    if (cmd == "/quit" || cmd == "/exit") return false;
    if (cmd == "/help") {
      fmt::print("{}", kHelp);
    } else if (cmd == "/reset" || cmd == "/clear") {
      session_.agent().Reset(session_.settings().system);
      fmt::print("(new conversation)\n");
    } else if (cmd == "/tools") {
      if (!session_.agent().options().tools) {
        fmt::print("tools are off (--no-tools)\n");
      } else {
        for (const agent::ToolSpec& t : agent::BuiltinTools()) {
          fmt::print("{:8} {}\n", t.name, t.description);
        }
        const agent::SandboxState& state = agent::ProbeSandbox();
        fmt::print("sandbox: {}; working directory {}; {} s per call\n",
                   session_.sandbox().unsafe_no_sandbox ? "OFF (--unsafe-no-sandbox)"
                   : state.available                    ? state.detail
                                                        : "unavailable: " + state.detail,
                   session_.sandbox().workdir, session_.sandbox().limits.wall_seconds);
      }
    } else if (cmd == "/model") {
      const models::ModelInfo& info = session_.loaded().model->info();
      fmt::print("{}: {} layers, hidden {}, vocab {} ({}, {} family, {}); template: {}; context {} "
                 "tokens\n",
                 session_.loaded().location.description, info.n_layer, info.n_embd, info.n_vocab,
                 info.architecture, info.family, info.weight_format, session_.chat_setup().source,
                 session_.engine().max_context_tokens());
    } else if (cmd == "/stats") {
      const runtime::EngineStats e = session_.engine().Stats();
      fmt::print(
          "{} turn(s), {} model call(s), {} tool call(s); prompt {} tokens ({} from the prefix "
          "cache), generated {} tokens, {:.1f} tok/s overall; KV blocks {} used, {} cached of {}\n",
          totals_.turns, totals_.model_calls, totals_.tool_calls, totals_.usage.prompt_tokens,
          totals_.usage.cached_prompt_tokens, totals_.usage.completion_tokens,
          totals_.usage.seconds > 0 ? totals_.usage.completion_tokens / totals_.usage.seconds : 0.0,
          e.kv_blocks_used, e.kv_blocks_cached, e.kv_blocks_total);
    } else if (cmd == "/save" || cmd == "/export") {
      if (arg.empty()) {
        fmt::print("usage: {} FILE\n", cmd);
        return true;
      }
      const std::vector<agent::AgentMessage>& m = session_.agent().messages();
      const std::string data = cmd == "/save" ? agent::MessagesToJson(m) + "\n" : Markdown(m);
      if (core::Status s = core::WriteFileAtomic(arg, data); !s.ok()) {
        fmt::print("error: {}\n", s.ToString());
      } else {
        fmt::print("({} messages written to {})\n", m.size(), arg);
      }
    } else if (cmd == "/load") {
      if (arg.empty()) {
        fmt::print("usage: /load FILE\n");
        return true;
      }
      auto text = core::ReadFile(arg);
      auto messages = text.ok() ? agent::MessagesFromJson(*text)
                                : core::StatusOr<std::vector<agent::AgentMessage>>(text.status());
      if (!messages.ok()) {
        fmt::print("error: {}\n", messages.status().ToString());
      } else {
        fmt::print("({} messages loaded from {})\n", messages->size(), arg);
        session_.agent().set_messages(std::move(messages).value());
      }
    } else {
      fmt::print("unknown command {}; /help lists them\n", cmd);
    }
    return true;
  }

  AgentSession& session_;
  LineReader& reader_;
  bool interactive_;
  SessionTotals totals_;
};

int RunRepl(const ReplOptions& o) {
  // libedit needs the locale's character set for UTF-8 input.
  std::setlocale(LC_CTYPE, "");
  if (MB_CUR_MAX == 1) std::setlocale(LC_CTYPE, "C.UTF-8");
  models::LoadOptions load;
  load.n_threads = o.threads;
  auto loaded = LoadModel(o.model, load);
  if (!loaded.ok()) return ReportError(loaded.status());
  auto setup = tokenizer::LoadChatSetup(loaded->location, *loaded->tokenizer, o.chat_template,
                                        loaded->gguf.get());
  if (!setup.ok()) return ReportError(setup.status());
  auto kwargs = tokenizer::ThinkingKwargs(o.enable_thinking);
  if (!kwargs.ok()) return ReportError(kwargs.status());
  runtime::EngineRequest request;
  ApplyGenerationFlags(o.gen, *loaded->model, *loaded->tokenizer, &request.sampling, &request.stop,
                       &request.stop_strings);
  auto session = AgentSession::Create(*loaded, *setup, *kwargs, request, o.agent, &g_interrupted);
  if (!session.ok()) return ReportError(session.status());
  InstallSigint();
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  std::unique_ptr<LineReader> reader;
  if (interactive) {
    reader = std::make_unique<EditLineReader>();
  } else {
    reader = std::make_unique<StreamReader>();
  }
  Repl repl(**session, *reader, interactive);
  return repl.Loop();
}

void AddReplOptions(CLI::App* cmd, ReplOptions& o) {
  cmd->add_option("-m,--model", o.model,
                  "Hugging Face directory, .gguf file or ORG/NAME (default: built-in stories260K)");
  AddGenerationFlags(cmd, o.gen);
  cmd->add_option("-t,--threads", o.threads, "Compute threads (default: physical cores)");
  cmd->add_option("--system", o.agent.system, "System message");
  cmd->add_option("--chat-template", o.chat_template, "Chat template file overriding the model's");
  cmd->add_option("--enable-thinking", o.enable_thinking, "true | false (Qwen3 templates)");
  AddAgentOptions(cmd, o.agent);
}

}  // namespace

void RegisterReplCommand(CLI::App& app, int& exit_code) {
  static ReplOptions o;
  CLI::App* cmd = app.add_subcommand("repl", "The interactive agent (also: arle with no arguments)");
  AddReplOptions(cmd, o);
  cmd->callback([&exit_code] { exit_code = RunRepl(o); });
}

int RunDefaultRepl() { return RunRepl(ReplOptions{}); }

}  // namespace arle::app
