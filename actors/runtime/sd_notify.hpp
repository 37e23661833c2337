// Readiness and status reports to a service manager (systemd's Type=notify),
// by the sd_notify(3) protocol, without libsystemd.
//
// The protocol is one AF_UNIX SOCK_DGRAM datagram of newline-separated
// VARIABLE=value lines ("READY=1", "STOPPING=1", "STATUS=...") sent to the
// socket named in $NOTIFY_SOCKET: a file system path, or an abstract socket
// when it starts with '@'. systemd sets the variable for a Type=notify unit;
// anywhere else it is unset and nothing is sent. A service manager that is
// gone or never listened changes nothing in what the caller does: a failed
// send is reported (to be logged), never fatal.
//
// Called from kvpaxosd's main thread; each call opens, sends on and closes
// its own socket, so calls share no state and may come from any thread.
#pragma once

#include <string>
#include <string_view>

#include "messages/result.hpp"

namespace kvpaxos {

// Sends `state` ("READY=1\nSTATUS=serving") as one datagram to
// `notify_socket` (a path, or "@name" for an abstract socket). Returns
// false, sending nothing, when `notify_socket` is empty (no service manager
// asked); true once sent; an Error that names the socket and the reason when
// it cannot be sent (too long a path, no such socket, nobody bound to it).
Result<bool> send_service_notification(std::string_view notify_socket, std::string_view state);

// The same to the socket in $NOTIFY_SOCKET; false when it is unset or empty.
Result<bool> notify_service_manager(std::string_view state);

}  // namespace kvpaxos
