// Streaming tokenizer.json parse: a nlohmann SAX handler that builds a DOM for the small parts and
// flat vectors for model.vocab / model.merges (the DOM's std::map would dominate load time).
#include "arle/tokenizer/json_stream.h"

#include <nlohmann/json.hpp>

namespace arle::tokenizer::internal {
namespace {

using nlohmann::json;

class Handler : public nlohmann::json_sax<json> {
 public:
  Handler(json* root, StreamedModel* model) : root_(root), model_(model) {}

  std::string error;        // schema error inside vocab/merges
  std::string syntax_error;  // JSON syntax error

  bool null() override { return Value(json(nullptr)); }
  bool boolean(bool v) override { return Value(json(v)); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == Mode::kVocab) {
      model_->vocab.emplace_back(std::move(key_), v);
      return true;
    }
    return Value(json(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == Mode::kVocab) {
      // Larger than any valid id either way; keep the sign information simple.
      model_->vocab.emplace_back(std::move(key_), v > INT64_MAX ? INT64_MAX : static_cast<int64_t>(v));
      return true;
    }
    return Value(json(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return Value(json(v)); }
  bool string(string_t& v) override {
    if (mode_ == Mode::kMerges) {
      StreamedMerge m;
      size_t space = v.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 >= v.size()) {
        m.a = std::move(v);
        m.well_formed = false;
      } else {
        m.a = v.substr(0, space);
        m.b = v.substr(space + 1);
      }
      model_->merges.push_back(std::move(m));
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return Value(json(std::move(v)));
  }
  bool binary(binary_t&) override { return Fail("unexpected binary value"); }

  bool start_object(std::size_t) override {
    if (mode_ != Mode::kDom) return Fail(mode_ == Mode::kVocab ? "vocab entry \"" + key_ + "\" must have an integer id"
                                                                : "merges must be strings or [a, b] pairs");
    if (stack_.size() == 2 && stack_[1] == model_obj_ && key_ == "vocab") {
      model_->has_vocab = true;
      mode_ = Mode::kVocab;
      return true;
    }
    json* obj = Push(json::object());
    if (obj == nullptr) return false;
    if (stack_.size() == 2 && stack_[0] == root_ && key_ == "model") model_obj_ = obj;
    return true;
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::kVocab) return Fail("vocab entry \"" + key_ + "\" must have an integer id");
    if (mode_ == Mode::kMergePair) return Fail("merge #" + std::to_string(model_->merges.size()) +
                                               " must be a \"a b\" string or a [a, b] pair");
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_.clear();
      return true;
    }
    if (stack_.size() == 2 && stack_[1] == model_obj_ && key_ == "merges") {
      model_->has_merges = true;
      mode_ = Mode::kMerges;
      return true;
    }
    return Push(json::array()) != nullptr;
  }
  bool end_array() override {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2) {
        return Fail("merge #" + std::to_string(model_->merges.size()) +
                    " must be a \"a b\" string or a [a, b] pair");
      }
      model_->merges.push_back({std::move(pair_[0]), std::move(pair_[1]), true});
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    syntax_error = "not valid JSON at byte " + std::to_string(position) + " (" + e.what() + ")";
    return false;
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };

  bool Fail(std::string message) {
    error = std::move(message);
    return false;
  }
  bool Value(json v) {
    if (mode_ == Mode::kVocab) return Fail("vocab entry \"" + key_ + "\" must have an integer id");
    if (mode_ == Mode::kMerges || mode_ == Mode::kMergePair) {
      return Fail("merge #" + std::to_string(model_->merges.size()) +
                  " must be a \"a b\" string or a [a, b] pair");
    }
    return Insert(std::move(v)) != nullptr;
  }
  json* Insert(json v) {
    if (stack_.empty()) {
      if (inserted_root_) return nullptr;
      *root_ = std::move(v);
      inserted_root_ = true;
      return root_;
    }
    json* parent = stack_.back();
    if (parent->is_array()) {
      parent->push_back(std::move(v));
      return &parent->back();
    }
    json& slot = (*parent)[key_];
    slot = std::move(v);
    return &slot;
  }
  json* Push(json v) {
    json* p = Insert(std::move(v));
    if (p != nullptr) stack_.push_back(p);
    return p;
  }

  json* root_;
  StreamedModel* model_;
  std::vector<json*> stack_;
  json* model_obj_ = nullptr;
  bool inserted_root_ = false;
  Mode mode_ = Mode::kDom;
  std::string key_;
  std::vector<std::string> pair_;
};

}  // namespace

core::Status ParseTokenizerJsonStreaming(std::string_view text, const std::string& source,
                                         json* root, StreamedModel* model) {
  Handler handler(root, model);
  bool ok = json::sax_parse(text.begin(), text.end(), &handler, nlohmann::detail::input_format_t::json,
                            /*strict=*/true);
  if (!handler.error.empty()) return core::InvalidArgumentError(source + ": model: " + handler.error);
  if (!ok || !handler.syntax_error.empty()) {
    return core::DataLossError(source + ": " +
                               (handler.syntax_error.empty() ? std::string("not valid JSON")
                                                            : handler.syntax_error) +
                               " (truncated or corrupt tokenizer.json)");
  }
  return core::OkStatus();
}

}  // namespace arle::tokenizer::internal
