#include "messages/codec.hpp"

#include <exception>
#include <sstream>

#include "messages/msgpack_scan.hpp"

namespace kvpaxos {

std::string to_string(const Ballot& b) {
  return std::to_string(b.round) + "." + std::to_string(b.node);
}

const char* to_string(Actor a) {
  switch (a) {
    case Actor::acceptor: return "acceptor";
    case Actor::proposer: return "proposer";
    case Actor::learner: return "learner";
    case Actor::applier: return "applier";
    case Actor::front_door: return "front_door";
    case Actor::peer_link: return "peer_link";
    case Actor::control: return "control";
  }
  return "unknown-actor";
}

const char* to_string(ReplyCode c) {
  switch (c) {
    case ReplyCode::ok: return "ok";
    case ReplyCode::bad_request: return "bad_request";
    case ReplyCode::unsupported_version: return "unsupported_version";
    case ReplyCode::stale_request: return "stale_request";
    case ReplyCode::fault_injection_disabled: return "fault_injection_disabled";
    case ReplyCode::unknown_node: return "unknown_node";
    case ReplyCode::shutting_down: return "shutting_down";
    case ReplyCode::overloaded: return "overloaded";
    case ReplyCode::session_expired: return "session_expired";
    case ReplyCode::permission_denied: return "permission_denied";
  }
  return "unknown-code";
}

namespace {

constexpr std::size_t kMaxDepth = 8;

// Checked before unpacking: the first msgpack value is whole, within the
// value and depth bounds, and the only thing in `bytes`.
Result<bool> check_shape(std::string_view bytes, std::size_t max_values, const char* what) {
  Result<MsgpackShape> shape = scan_msgpack(bytes, {max_values, kMaxDepth});
  if (!shape.ok()) return Error{shape.error()};
  if (shape->bytes != bytes.size()) {
    return Error{std::string("trailing bytes after the ") + what + " (" +
                 std::to_string(bytes.size() - shape->bytes) + " bytes)"};
  }
  return true;
}

msgpack::unpack_limit limits_for(std::size_t max_bytes) {
  return msgpack::unpack_limit(kMaxArrayElements, /*map=*/0, /*str=*/max_bytes,
                               /*bin=*/max_bytes, /*ext=*/0, kMaxDepth);
}

// Decodes alternative I of Body if `tag` is its tag.
template <std::size_t I = 0>
Result<Body> decode_fields(std::uint8_t tag, const msgpack::object& fields) {
  if constexpr (I == std::variant_size_v<Body>) {
    return Error{"unknown message type " + std::to_string(tag)};
  } else {
    if (static_cast<std::uint8_t>(Messages::tags[I]) != tag) {
      return decode_fields<I + 1>(tag, fields);
    }
    using T = std::variant_alternative_t<I, Body>;
    T value;
    fields.convert(value);  // throws msgpack::type_error on a shape mismatch
    return Body{std::move(value)};
  }
}

bool drop_rate_in_range(double rate) { return rate >= 0.0 && rate <= 1.0; }  // false for NaN

// What the field types let through but no sender writes: msgpack-c converts
// any integer into an enum, and any number into a double (2^64 among them,
// which its packer then casts to an integer: undefined behaviour when the
// message is sent on). Empty when the fields are in range.
std::string out_of_range_field(const Body& body) {
  if (const auto* r = std::get_if<ClientRequest>(&body)) {
    if (r->op < OpKind::get || r->op > OpKind::member) return "op";
    if (r->member.kind > MemberChangeKind::update) return "member change kind";
    for (const Compare& c : r->compares) {
      if (c.target > CompareTarget::mod_revision) return "compare target";
      if (c.op > CompareOp::greater) return "compare op";
    }
    for (const auto* branch : {&r->success, &r->failure}) {
      for (const RequestOp& o : *branch) {
        if (o.op < OpKind::get || o.op > OpKind::member) return "txn op";
      }
    }
  } else if (const auto* c = std::get_if<ClientReply>(&body)) {
    if (static_cast<std::uint8_t>(c->code) > static_cast<std::uint8_t>(ReplyCode::session_expired)) {
      return "code";
    }
    for (const MemberEntry& m : c->member.config.members) {
      if (m.role != MemberRole::voter && m.role != MemberRole::learner) return "member role";
    }
  } else if (const auto* i = std::get_if<InstanceReport>(&body)) {
    if (static_cast<std::uint8_t>(i->state) > static_cast<std::uint8_t>(InstanceState::forgotten)) {
      return "state";
    }
  } else if (const auto* s = std::get_if<SnapshotSaveReply>(&body)) {
    if (static_cast<std::uint8_t>(s->code) > static_cast<std::uint8_t>(ReplyCode::permission_denied)) {
      return "code";
    }
  } else if (const auto* f = std::get_if<FaultRequest>(&body)) {
    if (!drop_rate_in_range(f->drop_rate)) return "drop_rate (must be within [0, 1])";
  } else if (const auto* fr = std::get_if<FaultReply>(&body)) {
    if (!drop_rate_in_range(fr->drop_rate)) return "drop_rate (must be within [0, 1])";
  }
  return {};
}

}  // namespace

MessageType type_of(const Body& body) { return Messages::tags[body.index()]; }

const char* to_string(MessageType t) {
  switch (t) {
    case MessageType::prepare: return "Prepare";
    case MessageType::promise: return "Promise";
    case MessageType::accept: return "Accept";
    case MessageType::accepted: return "Accepted";
    case MessageType::decided: return "Decided";
    case MessageType::catch_up_request: return "CatchUpRequest";
    case MessageType::heartbeat: return "Heartbeat";
    case MessageType::propose: return "Propose";
    case MessageType::learned: return "Learned";
    case MessageType::apply: return "Apply";
    case MessageType::local_done: return "LocalDone";
    case MessageType::forget_below: return "ForgetBelow";
    case MessageType::local_progress: return "LocalProgress";
    case MessageType::peer_progress: return "PeerProgress";
    case MessageType::learner_progress: return "LearnerProgress";
    case MessageType::instance_query: return "InstanceQuery";
    case MessageType::instance_report: return "InstanceReport";
    case MessageType::from_client: return "FromClient";
    case MessageType::status_from_client: return "StatusFromClient";
    case MessageType::fault_from_client: return "FaultFromClient";
    case MessageType::to_client: return "ToClient";
    case MessageType::client_request: return "ClientRequest";
    case MessageType::client_reply: return "ClientReply";
    case MessageType::status_request: return "StatusRequest";
    case MessageType::status_reply: return "StatusReply";
    case MessageType::fault_request: return "FaultRequest";
    case MessageType::fault_reply: return "FaultReply";
    case MessageType::error_reply: return "ErrorReply";
    case MessageType::snapshot_request: return "SnapshotRequest";
    case MessageType::snapshot_chunk: return "SnapshotChunk";
    case MessageType::snapshot_needed: return "SnapshotNeeded";
    case MessageType::snapshot_installed: return "SnapshotInstalled";
    case MessageType::join_query: return "JoinQuery";
    case MessageType::join_info: return "JoinInfo";
    case MessageType::forward_ops: return "ForwardOps";
    case MessageType::prepare_from: return "PrepareFrom";
    case MessageType::promise_from: return "PromiseFrom";
    case MessageType::snapshot_saved: return "SnapshotSaved";
    case MessageType::watch_request: return "WatchRequest";
    case MessageType::watch_response: return "WatchResponse";
    case MessageType::watch_from_client: return "WatchFromClient";
    case MessageType::config_update: return "ConfigUpdate";
    case MessageType::member_query: return "MemberQuery";
    case MessageType::member_info: return "MemberInfo";
    case MessageType::removed: return "Removed";
    case MessageType::snapshot_save_request: return "SnapshotSaveRequest";
    case MessageType::snapshot_save_reply: return "SnapshotSaveReply";
    case MessageType::snapshot_save_from_client: return "SnapshotSaveFromClient";
    case MessageType::accepted_query: return "AcceptedQuery";
    case MessageType::accepted_bound: return "AcceptedBound";
    case MessageType::step_down: return "StepDown";
  }
  return "Unknown";
}

std::string encode(const Body& body) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(3);
  pk.pack(static_cast<std::uint8_t>(type_of(body)));
  pk.pack(kProtocolVersion);
  std::visit([&pk](const auto& m) { pk.pack(m); }, body);
  return std::string(buf.data(), buf.size());
}

Result<Body> decode(std::string_view bytes, std::size_t max_bytes, std::size_t max_values) {
  if (bytes.size() > max_bytes) {
    return Error{"message of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                 std::to_string(max_bytes)};
  }
  if (max_values == 0) {
    max_values = max_bytes <= kMaxClientFrameBytes ? kMaxClientMessageValues : kMaxPeerMessageValues;
  }
  if (Result<bool> shape = check_shape(bytes, max_values, "message"); !shape.ok()) {
    return Error{shape.error()};
  }
  try {
    std::size_t offset = 0;
    msgpack::object_handle handle =
        msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limits_for(max_bytes));
    const msgpack::object& root = handle.get();
    if (root.type != msgpack::type::ARRAY || root.via.array.size != 3) {
      return Error{"not a message: expected a msgpack array [type, version, fields]"};
    }
    const msgpack::object* items = root.via.array.ptr;
    if (items[0].type != msgpack::type::POSITIVE_INTEGER || items[0].via.u64 > 255) {
      return Error{"message type is not a small unsigned integer"};
    }
    if (items[1].type != msgpack::type::POSITIVE_INTEGER) {
      return Error{"protocol version is not an unsigned integer"};
    }
    if (items[1].via.u64 != kProtocolVersion) {
      return Error{"unsupported protocol version " + std::to_string(items[1].via.u64) +
                       " (this node speaks " + std::to_string(kProtocolVersion) + ")",
                   ErrorKind::unsupported_version};
    }
    const auto tag = static_cast<std::uint8_t>(items[0].via.u64);
    Result<Body> body = decode_fields(tag, items[2]);
    if (!body.ok()) return body;
    if (const std::string field = out_of_range_field(body.value()); !field.empty()) {
      return Error{std::string("out-of-range ") + field + " in " + to_string(type_of(body.value()))};
    }
    return body;
  } catch (const msgpack::unpack_error& e) {
    return Error{std::string("malformed msgpack: ") + e.what()};
  } catch (const msgpack::type_error& e) {
    return Error{std::string("message fields have the wrong shape: ") + e.what()};
  } catch (const std::exception& e) {
    return Error{std::string("undecodable message: ") + e.what()};
  }
}

namespace {
struct WireHeader {
  NodeId to_node = 0;
  std::uint8_t to_actor = 0;
  NodeId from_node = 0;
  std::uint8_t from_actor = 0;
  InstanceId done_below = 0;
  InstanceId decided_below = 0;
  InstanceId forget_below = 0;
  MSGPACK_DEFINE(to_node, to_actor, from_node, from_actor, done_below, decided_below, forget_below)
};

bool valid_actor(std::uint8_t a) { return a >= 1 && a <= kMaxActor; }
}  // namespace

std::string encode_header(const FrameHeader& h) {
  const WireHeader w{h.to.node, static_cast<std::uint8_t>(h.to.actor), h.from.node,
                     static_cast<std::uint8_t>(h.from.actor), h.done_below, h.decided_below,
                     h.forget_below};
  msgpack::sbuffer buf;
  msgpack::pack(buf, w);
  return std::string(buf.data(), buf.size());
}

Result<FrameHeader> decode_header(std::string_view bytes) {
  constexpr std::size_t kMaxHeaderBytes = 128;
  constexpr std::size_t kMaxHeaderValues = 16;  // a header has 8
  if (bytes.size() > kMaxHeaderBytes) return Error{"frame header too large"};
  if (Result<bool> shape = check_shape(bytes, kMaxHeaderValues, "frame header"); !shape.ok()) {
    return Error{"malformed frame header: " + shape.error()};
  }
  try {
    std::size_t offset = 0;
    msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr,
                                                    nullptr, limits_for(kMaxHeaderBytes));
    WireHeader w;
    handle.get().convert(w);
    if (!valid_actor(w.to_actor) || !valid_actor(w.from_actor)) {
      return Error{"frame header names an unknown actor"};
    }
    return FrameHeader{{w.to_node, static_cast<Actor>(w.to_actor)},
                       {w.from_node, static_cast<Actor>(w.from_actor)},
                       w.done_below,
                       w.decided_below,
                       w.forget_below};
  } catch (const std::exception& e) {
    return Error{std::string("malformed frame header: ") + e.what()};
  }
}

}  // namespace kvpaxos
