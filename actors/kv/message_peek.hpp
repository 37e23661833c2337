// What a client message or a reply is, read off its first bytes without
// decoding it: for the front door's request metrics, which label every
// request by op and every reply by code, including a request refused as
// overloaded before it is decoded and a reply of 16 MiB about to go out.
//
// Both read only the leading msgpack header, tag and fields they need
// (codec.hpp: a body is [type, protocol_version, [fields...]]), never
// allocate and never throw; what they cannot read comes back as "unknown".
#pragma once

#include <optional>
#include <string_view>

#include "actors/observe/metrics.hpp"
#include "messages/messages.hpp"

namespace kvpaxos {

// The op of a client frame: a ClientRequest's OpKind, or the kind of the
// other client messages; ClientOp::invalid when it is neither (or unreadable).
ClientOp peek_request_op(std::string_view body);

struct ReplyKind {
  MessageType type = MessageType::error_reply;
  ReplyCode code = ReplyCode::ok;  // ok for replies without a code (StatusReply, WatchResponse)
  bool watch_created = false;      // a WatchResponse that answers a create
};
// The type and code of a reply the node sends a client; nullopt when the
// body is not one of the client replies or its leading fields are unreadable.
std::optional<ReplyKind> peek_reply(std::string_view body);

// The label of a ClientRequest's op; ClientOp::invalid out of OpKind's range.
ClientOp client_op(OpKind op);

}  // namespace kvpaxos
