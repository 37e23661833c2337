#include "actors/runtime/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace kvpaxos {
namespace {

// The socket's address and its length: a path ends in a NUL, an abstract
// name ('@' becomes the leading NUL) is exactly as long as its bytes.
struct NotifyAddress {
  sockaddr_un addr{};
  socklen_t length = 0;
};

Result<NotifyAddress> address_of(std::string_view notify_socket) {
  const std::string named = "NOTIFY_SOCKET=" + std::string(notify_socket);
  if (notify_socket.size() < 2 || (notify_socket.front() != '/' && notify_socket.front() != '@')) {
    return Error{named + " is neither an absolute path nor an @abstract socket name"};
  }
  NotifyAddress a;
  a.addr.sun_family = AF_UNIX;
  const bool abstract = notify_socket.front() == '@';
  // A path needs room for its terminating NUL; an abstract name does not.
  const std::size_t room = sizeof a.addr.sun_path - (abstract ? 0 : 1);
  if (notify_socket.size() > room) {
    return Error{named + " is " + std::to_string(notify_socket.size()) + " bytes; a unix socket "
                 "address holds at most " + std::to_string(room)};
  }
  std::memcpy(a.addr.sun_path, notify_socket.data(), notify_socket.size());
  if (abstract) a.addr.sun_path[0] = '\0';
  a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + notify_socket.size() +
                                    (abstract ? 0 : 1));
  return a;
}

}  // namespace

Result<bool> send_service_notification(std::string_view notify_socket, std::string_view state) {
  if (notify_socket.empty()) return false;
  Result<NotifyAddress> to = address_of(notify_socket);
  if (!to.ok()) return Error{to.error()};
  // Non-blocking: a service manager that stopped reading must not stall the node.
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Error{std::string("cannot open a unix datagram socket: ") + std::strerror(errno)};
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&to->addr), to->length);
  const int sent_errno = errno;
  ::close(fd);
  if (sent < 0) {
    return Error{"cannot notify the service manager at NOTIFY_SOCKET=" + std::string(notify_socket) +
                 ": " + std::strerror(sent_errno)};
  }
  if (static_cast<std::size_t>(sent) != state.size()) {
    return Error{"the service manager at NOTIFY_SOCKET=" + std::string(notify_socket) +
                 " took " + std::to_string(sent) + " of " + std::to_string(state.size()) + " bytes"};
  }
  return true;
}

Result<bool> notify_service_manager(std::string_view state) {
  const char* notify_socket = std::getenv("NOTIFY_SOCKET");
  return send_service_notification(notify_socket == nullptr ? "" : notify_socket, state);
}

}  // namespace kvpaxos
