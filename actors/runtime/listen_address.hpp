#pragma once
// Where a node binds, apart from where others reach it.
//
// Peers and clients reach a node at the address it advertises: the one in
// --cluster (peers) and --client-addr (clients), which may be a host name, as
// a StatefulSet's stable DNS names are. libzmq connects to a host name but
// binds only an address (or an interface, or '*'), so a node binds what its
// advertised host stands for on this host, or what --listen-peer-addr and
// --listen-client-addr say (etcd's listen and advertise URLs).
#include <string>

#include "messages/result.hpp"

namespace kvpaxos {

// "tcp://HOST:PORT" with HOST an IPv4 address, a bracketed IPv6 address or
// '*': an address libzmq can bind as it is.
bool binds_as_given(const std::string& endpoint);

// The endpoint to bind for the advertised `endpoint`: itself when it binds
// as given, else its host name resolved to its first IPv4 address (libzmq
// resolves IPv4 when it connects, too), "tcp://10.0.0.7:7101". An error names
// the host and why it does not resolve.
Result<std::string> resolve_for_bind(const std::string& endpoint);

// True when nothing off this host can reach `endpoint` (a 127.0.0.0/8 or
// ::1 address, or a name that resolves to one). A host that does not resolve
// counts as reachable from elsewhere: the safe answer.
bool is_loopback_endpoint(const std::string& endpoint);

}  // namespace kvpaxos
