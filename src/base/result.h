// Host side (CLI, keeper, capture, restore front end). Errors are values: an errno plus a chain of
// context, shaped like std::expected so call sites read `if (!r) return r.error().context(...)`.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace vos {

class Error {
 public:
  Error(int err, std::string message) : errno_(err), message_(std::move(message)) {}

  // Prepends what the caller was doing, so the final message reads outermost first.
  Error& context(const std::string& what) & {
    message_ = what + ": " + message_;
    return *this;
  }
  Error&& context(const std::string& what) && {
    message_ = what + ": " + message_;
    return std::move(*this);
  }

  int err() const { return errno_; }
  const std::string& message() const { return message_; }
  // The message with strerror appended when an errno is known.
  std::string describe() const;

 private:
  int errno_;
  std::string message_;
};

// An error from the current errno, e.g. `return sys_error("open {}", path);`.
template <typename... Args>
Error sys_error(fmt::format_string<Args...> f, Args&&... args) {
  int saved = errno;
  return Error(saved, fmt::format(f, std::forward<Args>(args)...));
}

// An error that is not an errno (bad input, corrupt image...); err() is EINVAL unless given.
template <typename... Args>
Error user_error(fmt::format_string<Args...> f, Args&&... args) {
  return Error(0, fmt::format(f, std::forward<Args>(args)...));
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like std::expected
  Result(Error e) : v_(std::move(e)) {}      // NOLINT

  explicit operator bool() const { return v_.index() == 0; }
  bool ok() const { return v_.index() == 0; }
  T& operator*() & { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  Error& error() & { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }
  const Error& error() const& { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)), ok_(false) {}  // NOLINT

  explicit operator bool() const { return ok_; }
  bool ok() const { return ok_; }
  Error& error() & { return e_; }
  Error&& error() && { return std::move(e_); }
  const Error& error() const& { return e_; }

 private:
  Error e_{0, ""};
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace vos

// Propagates an error from an expression returning Result/Status, adding context.
#define VOS_TRY(expr, ...)                                                    \
  do {                                                                        \
    auto vos_try_r_ = (expr);                                                 \
    if (!vos_try_r_) {                                                        \
      return std::move(vos_try_r_).error().context(fmt::format(__VA_ARGS__)); \
    }                                                                         \
  } while (0)
