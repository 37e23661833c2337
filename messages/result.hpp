// Errors that cross a module boundary are values, not exceptions.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace kvpaxos {

// What a caller may decide on when something failed. Most failures are only
// reported (other); a kind exists where some caller acts differently on it,
// so that no caller has to search the message text.
enum class ErrorKind : std::uint8_t {
  other,
  unsupported_version,  // a message of a protocol version this node does not speak
  address_in_use,       // a port to listen on is taken (EADDRINUSE)
};

// Why something failed, in words a user can act on, and its kind.
struct Error {
  std::string message;
  ErrorKind kind = ErrorKind::other;
};

// A value or an Error (a small std::expected; the project builds as C++20).
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}           // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}       // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const std::string& error() const { return std::get<Error>(v_).message; }
  ErrorKind error_kind() const { return std::get<Error>(v_).kind; }

 private:
  std::variant<T, Error> v_;
};

}  // namespace kvpaxos
