// sd_notify without libsystemd (actors/runtime/sd_notify.hpp): what a
// service manager bound to $NOTIFY_SOCKET receives, and what it does not.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>

#include "actors/runtime/sd_notify.hpp"

namespace kvpaxos {
namespace {

// A service manager's end: a datagram socket bound to a path, or to an
// abstract name ("@..."), as systemd binds its notify socket.
class NotifyListener {
 public:
  explicit NotifyListener(std::string address) : address_(std::move(address)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    const bool abstract = address_.front() == '@';
    if (abstract) addr.sun_path[0] = '\0';
    const auto length =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() + (abstract ? 0 : 1));
    EXPECT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), length), 0)
        << address_ << ": " << std::strerror(errno);
  }
  ~NotifyListener() {
    ::close(fd_);
    if (address_.front() == '/') ::unlink(address_.c_str());
  }
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

  const std::string& address() const { return address_; }

  // The next datagram, or nothing within `timeout_ms`.
  std::optional<std::string> receive(int timeout_ms = 2000) const {
    const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  std::string address_;
  int fd_ = -1;
};

std::string unique_suffix() {
  return std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
}

std::string temp_socket_path() {
  return (std::filesystem::temp_directory_path() / ("kvpaxos-notify-" + unique_suffix())).string();
}

// Restores $NOTIFY_SOCKET as the test found it.
class NotifySocketVariable {
 public:
  NotifySocketVariable() {
    const char* was = std::getenv("NOTIFY_SOCKET");
    if (was != nullptr) was_ = was;
  }
  ~NotifySocketVariable() {
    if (was_) {
      ::setenv("NOTIFY_SOCKET", was_->c_str(), 1);
    } else {
      ::unsetenv("NOTIFY_SOCKET");
    }
  }
  NotifySocketVariable(const NotifySocketVariable&) = delete;
  NotifySocketVariable& operator=(const NotifySocketVariable&) = delete;

 private:
  std::optional<std::string> was_;
};

TEST(SdNotify, PathSocketReceivesTheStateAsOneDatagram) {
  const NotifyListener manager(temp_socket_path());
  Result<bool> sent = send_service_notification(manager.address(), "READY=1\nSTATUS=serving");
  ASSERT_TRUE(sent.ok()) << sent.error();
  EXPECT_TRUE(sent.value());
  EXPECT_EQ(manager.receive(), "READY=1\nSTATUS=serving");
  EXPECT_EQ(manager.receive(100), std::nullopt) << "one call sends one datagram";
}

TEST(SdNotify, AtSignNamesAnAbstractSocket) {
  const NotifyListener manager("@kvpaxos-notify-test-" + unique_suffix());
  Result<bool> sent = send_service_notification(manager.address(), "STOPPING=1");
  ASSERT_TRUE(sent.ok()) << sent.error();
  EXPECT_EQ(manager.receive(), "STOPPING=1");
}

TEST(SdNotify, NotifyServiceManagerSendsToNotifySocket) {
  const NotifySocketVariable restore;
  const NotifyListener manager(temp_socket_path());
  ::setenv("NOTIFY_SOCKET", manager.address().c_str(), 1);
  Result<bool> sent = notify_service_manager("READY=1");
  ASSERT_TRUE(sent.ok()) << sent.error();
  EXPECT_TRUE(sent.value());
  EXPECT_EQ(manager.receive(), "READY=1");
}

TEST(SdNotify, UnsetOrEmptyNotifySocketSendsNothing) {
  const NotifySocketVariable restore;
  ::unsetenv("NOTIFY_SOCKET");
  Result<bool> unset = notify_service_manager("READY=1");
  ASSERT_TRUE(unset.ok()) << unset.error();
  EXPECT_FALSE(unset.value());
  ::setenv("NOTIFY_SOCKET", "", 1);
  Result<bool> empty = notify_service_manager("READY=1");
  ASSERT_TRUE(empty.ok()) << empty.error();
  EXPECT_FALSE(empty.value());
}

TEST(SdNotify, NobodyListeningIsAnErrorThatNamesTheSocket) {
  const std::string path = temp_socket_path();
  Result<bool> sent = send_service_notification(path, "READY=1");
  ASSERT_FALSE(sent.ok());
  EXPECT_NE(sent.error().find("NOTIFY_SOCKET=" + path), std::string::npos) << sent.error();
  EXPECT_NE(sent.error().find(std::strerror(ENOENT)), std::string::npos) << sent.error();
}

TEST(SdNotify, RelativeOrOverlongAddressesAreRefusedBeforeAnySend) {
  for (const std::string& bad : {std::string("notify.sock"), std::string("@"), std::string("/"),
                                 "/" + std::string(sizeof(sockaddr_un::sun_path), 'x')}) {
    Result<bool> sent = send_service_notification(bad, "READY=1");
    ASSERT_FALSE(sent.ok()) << bad;
    EXPECT_NE(sent.error().find("NOTIFY_SOCKET="), std::string::npos) << sent.error();
  }
}

}  // namespace
}  // namespace kvpaxos
