// Status and StatusOr<T>: the error values for every failure a user can cause (bad files, bad
// requests, bad parameters). Each carries a code, a message and an optional hint saying what to do.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "arle/core/check.h"

namespace arle::core {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // the caller passed something malformed (a flag, a request field)
  kNotFound,           // a file, model, tensor or key does not exist
  kDataLoss,           // a file is truncated or corrupt
  kUnimplemented,      // valid input that arle does not support (yet)
  kFailedPrecondition, // the system is not in a state to do this
  kOutOfRange,         // a value or offset outside its valid range
  kResourceExhausted,  // out of memory, KV blocks, queue slots
  kIoError,            // the OS refused a read/write/open
  kInternal,           // a bug surfaced as a value rather than a crash
};

// Returns a stable lowercase name such as "invalid_argument".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, std::string hint = {});

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& hint() const { return hint_; }
  // The input field the error is about, when it is one: a request or struct field such as
  // "top_p" or "stop_token_ids", named as the struct that was validated names it (a server maps
  // it to its own parameter name). Empty when the error is not about one field.
  const std::string& field() const { return field_; }

  // Returns a copy whose message is "<context>: <message>", e.g. the file name a parser failed on.
  Status WithContext(std::string_view context) const;
  // Returns a copy with the hint replaced.
  Status WithHint(std::string hint) const;
  // Returns a copy naming `field` (see field()).
  Status WithField(std::string field) const;
  // "invalid_argument: <message> (hint: <hint>)"; "ok" when OK.
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string hint_;
  std::string field_;
};

inline Status OkStatus() { return Status(); }
Status InvalidArgumentError(std::string message, std::string hint = {});
Status NotFoundError(std::string message, std::string hint = {});
Status DataLossError(std::string message, std::string hint = {});
Status UnimplementedError(std::string message, std::string hint = {});
Status FailedPreconditionError(std::string message, std::string hint = {});
Status OutOfRangeError(std::string message, std::string hint = {});
Status ResourceExhaustedError(std::string message, std::string hint = {});
Status IoError(std::string message, std::string hint = {});
Status InternalError(std::string message, std::string hint = {});

// StatusOr<T> holds either a T or a non-OK Status. Accessing value() on an error is a bug (CHECK).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    ARLE_CHECK(!status_.ok()) << "StatusOr constructed from an OK Status without a value";
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  T& value() & {
    CheckOk();
    return *value_;
  }
  const T& value() const& {
    CheckOk();
    return *value_;
  }
  T&& value() && {
    CheckOk();
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void CheckOk() const { ARLE_CHECK(status_.ok()) << "StatusOr has no value: " << status_.ToString(); }

  Status status_;
  std::optional<T> value_;
};

}  // namespace arle::core

#define ARLE_STATUS_CONCAT_INNER_(a, b) a##b
#define ARLE_STATUS_CONCAT_(a, b) ARLE_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define ARLE_RETURN_IF_ERROR(expr)                      \
  do {                                                  \
    ::arle::core::Status arle_status_ = (expr);         \
    if (!arle_status_.ok()) return arle_status_;        \
  } while (false)

// `lhs` = value of `expr` (a StatusOr), or returns its Status from the enclosing function.
#define ARLE_ASSIGN_OR_RETURN(lhs, expr) \
  ARLE_ASSIGN_OR_RETURN_IMPL_(ARLE_STATUS_CONCAT_(arle_statusor_, __LINE__), lhs, expr)
#define ARLE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()
