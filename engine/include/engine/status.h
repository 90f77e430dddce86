// Status and Result<T>: the one error vocabulary of catchall.
//
// Every fallible call returns a Status (or a Result<T> carrying a value or a
// Status). Library errors (RocksDB, librdkafka, Beast, simdjson, libidn2) are
// converted into a Status at the adapter that calls the library, so nothing
// above the adapters sees a third-party error type and no exception crosses a
// module boundary.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace catchall {

// Error codes. Each maps to one HTTP status at the edge (see http_error.h).
enum class Code {
  kOk = 0,
  kInvalidArgument,     // the caller sent something malformed (400)
  kNotFound,            // no such thing (404)
  kTooLarge,            // over a configured limit (413)
  kUnavailable,         // try again later: overloaded, log unreachable (503)
  kTimeout,             // an operation did not finish in time (503/504)
  kCorruption,          // stored data does not decode
  kIoError,             // the disk or the network failed
  kFailedPrecondition,  // the system is not in a state to do this (e.g. topic missing)
  kAborted,             // a transaction was aborted or fenced; retry from a clean state
  kNoSpace,             // the disk is (nearly) full: writes are refused until space returns (507)
  kInternal,            // a bug
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
  static Status NoSpace(std::string m) { return {Code::kNoSpace, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<code name>: <message>", for logs.
  std::string ToString() const;

  // Explicit, searchable way to drop a status on purpose.
  void PermitUnchecked() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // REQUIRES: ok()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  // OK when ok().
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace catchall

// Returns early from the enclosing function when `expr` is not OK.
#define CATCHALL_RETURN_IF_ERROR(expr) \
  do {                                 \
    ::catchall::Status _st = (expr);   \
    if (!_st.ok()) return _st;         \
  } while (0)
