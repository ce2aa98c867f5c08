// Status implementation.
#include "arle/core/status.h"

namespace arle::core {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kDataLoss: return "data_loss";
    case StatusCode::kUnimplemented: return "unimplemented";
    case StatusCode::kFailedPrecondition: return "failed_precondition";
    case StatusCode::kOutOfRange: return "out_of_range";
    case StatusCode::kResourceExhausted: return "resource_exhausted";
    case StatusCode::kIoError: return "io_error";
    case StatusCode::kInternal: return "internal";
  }
  return "unknown";
}

Status::Status(StatusCode code, std::string message, std::string hint)
    : code_(code), message_(std::move(message)), hint_(std::move(hint)) {
  ARLE_CHECK(code_ != StatusCode::kOk || (message_.empty() && hint_.empty()))
      << "an OK Status carries no message";
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  Status out = *this;
  out.message_ = std::string(context) + ": " + message_;
  return out;
}

Status Status::WithHint(std::string hint) const {
  if (ok()) return *this;
  Status out = *this;
  out.hint_ = std::move(hint);
  return out;
}

Status Status::WithField(std::string field) const {
  if (ok()) return *this;
  Status out = *this;
  out.field_ = std::move(field);
  return out;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(StatusCodeName(code_));
  out += ": ";
  out += message_;
  if (!hint_.empty()) {
    out += " (hint: ";
    out += hint_;
    out += ")";
  }
  return out;
}

#define ARLE_DEFINE_ERROR_(Name, Code)                            \
  Status Name(std::string message, std::string hint) {            \
    return Status(StatusCode::Code, std::move(message), std::move(hint)); \
  }
ARLE_DEFINE_ERROR_(InvalidArgumentError, kInvalidArgument)
ARLE_DEFINE_ERROR_(NotFoundError, kNotFound)
ARLE_DEFINE_ERROR_(DataLossError, kDataLoss)
ARLE_DEFINE_ERROR_(UnimplementedError, kUnimplemented)
ARLE_DEFINE_ERROR_(FailedPreconditionError, kFailedPrecondition)
ARLE_DEFINE_ERROR_(OutOfRangeError, kOutOfRange)
ARLE_DEFINE_ERROR_(ResourceExhaustedError, kResourceExhausted)
ARLE_DEFINE_ERROR_(IoError, kIoError)
ARLE_DEFINE_ERROR_(InternalError, kInternal)
#undef ARLE_DEFINE_ERROR_

}  // namespace arle::core
