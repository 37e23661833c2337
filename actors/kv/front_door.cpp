#include "actors/kv/front_door.hpp"

#include <cassert>
#include <exception>
#include <utility>

#include "actors/core/cluster_config.hpp"
#include "actors/kv/message_peek.hpp"
#include "messages/msgpack_scan.hpp"

namespace kvpaxos {

namespace {

std::string size_refusal(const char* what, std::size_t size, std::size_t limit) {
  if (size <= limit) return {};
  return std::string(what) + " of " + std::to_string(size) + " bytes exceeds the limit of " +
         std::to_string(limit);
}

const char* op_name(OpKind op) {
  switch (op) {
    case OpKind::get: return "get";
    case OpKind::put: return "put";
    case OpKind::append: return "append";
    case OpKind::delete_range: return "delete_range";
    case OpKind::range: return "range";
    case OpKind::txn: return "txn";
    case OpKind::member: return "member";
  }
  return "op";
}

// The fields one op (a request's, or one of a transaction's) may carry.
std::string validate_op(OpKind op, const std::string& key, const std::string& value,
                        const std::string& range_end, std::uint8_t flags) {
  if (std::string why = size_refusal("key", key.size(), kMaxKeyBytes); !why.empty()) return why;
  if (std::string why = size_refusal("value", value.size(), kMaxValueBytes); !why.empty()) return why;
  if (std::string why = size_refusal("range_end", range_end.size(), kMaxKeyBytes); !why.empty()) {
    return why;
  }
  const bool takes_value = op == OpKind::put || op == OpKind::append;
  const bool takes_range = op == OpKind::delete_range || op == OpKind::range;
  if (!takes_value && !value.empty()) return std::string(op_name(op)) + " takes no value";
  if (!takes_range && !range_end.empty()) return std::string(op_name(op)) + " takes no range_end";
  if (op < OpKind::get || op > OpKind::member) {
    return "unknown op " + std::to_string(static_cast<int>(op));
  }
  if (op != OpKind::range && flags != 0) return std::string(op_name(op)) + " takes no flags";
  if ((flags & ~(kRangeKeysOnly | kRangeCountOnly)) != 0) {
    return "unknown range flags " + std::to_string(flags) + " (1: keys only, 2: count only)";
  }
  if (!range_end.empty() && range_end != std::string("\0", 1) && range_end <= key) {
    return "range_end must be above key (or \"\\0\" for every key from key on)";
  }
  return {};
}

std::string validate_branch(const std::vector<RequestOp>& ops, const char* name) {
  if (ops.size() > kMaxTxnOps) {
    return std::string("txn has ") + std::to_string(ops.size()) + " " + name +
           " ops; the limit is " + std::to_string(kMaxTxnOps);
  }
  for (const RequestOp& o : ops) {
    if (o.op == OpKind::txn) return "a txn may not hold another txn";
    if (o.op == OpKind::member) {
      return "a txn may not hold a member change (send it alone: kvctl member ...)";
    }
    if (o.op != OpKind::range && o.limit != 0) {
      return std::string("txn ") + name + " op: only range takes a limit";
    }
    if (std::string why = validate_op(o.op, o.key, o.value, o.range_end, o.flags); !why.empty()) {
      return std::string("txn ") + name + " op: " + why;
    }
  }
  return {};
}

// tcp://HOST:PORT or inproc://NAME, what a member's endpoints may be.
std::string endpoint_refusal(const char* what, const std::string& endpoint) {
  constexpr std::string_view tcp = "tcp://";
  constexpr std::string_view inproc = "inproc://";
  if (endpoint.size() > 2 * kMaxNodeNameBytes + tcp.size() + 6) {
    return std::string(what) + " is too long";
  }
  if (endpoint.starts_with(inproc) && endpoint.size() > inproc.size()) return {};
  if (endpoint.starts_with(tcp)) {
    if (Result<std::string> ok = tcp_endpoint(std::string_view(endpoint).substr(tcp.size()));
        !ok.ok()) {
      return std::string(what) + ": " + ok.error();
    }
    return {};
  }
  return std::string(what) + " '" + endpoint + "' is not tcp://HOST:PORT or inproc://NAME";
}

// 40 Z85 characters (ZeroMQ RFC 32) that decode to 32 bytes: each group of
// five stands for a 32-bit value. (messages/key_file.hpp has libzmq's check;
// the logic does not link libzmq.)
bool is_z85_key(std::string_view text) {
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (text.size() != 40) return false;
  for (std::size_t group = 0; group < text.size(); group += 5) {
    std::uint64_t value = 0;
    for (std::size_t i = group; i < group + 5; ++i) {
      const std::size_t digit = kAlphabet.find(text[i]);
      if (digit == std::string_view::npos) return false;
      value = value * 85 + digit;
    }
    if (value > 0xFFFFFFFFu) return false;
  }
  return true;
}

// The kvctl command of a change (kvctl member add, ...), for refusals.
const char* member_command(MemberChangeKind k) {
  switch (k) {
    case MemberChangeKind::add_learner: return "add";
    case MemberChangeKind::promote: return "promote";
    case MemberChangeKind::remove: return "remove";
    case MemberChangeKind::replace: return "replace";
    case MemberChangeKind::update: return "update";
    case MemberChangeKind::list: return "list";
  }
  return "change";
}

// The fields each kind of change takes, and nothing else: a stray field is
// a client's mistake the state machine would silently ignore.
std::string validate_member(const MemberChange& c) {
  if (c.kind > MemberChangeKind::update) {
    return "unknown member change kind " + std::to_string(static_cast<int>(c.kind));
  }
  const std::string kind = std::string("member ") + member_command(c.kind);
  const bool adds = c.kind == MemberChangeKind::add_learner;
  const bool targets = !adds && c.kind != MemberChangeKind::list;
  const bool endpoints = adds || c.kind == MemberChangeKind::update;
  const bool incarnation = c.kind == MemberChangeKind::promote || c.kind == MemberChangeKind::replace;
  if (c.kind == MemberChangeKind::list && c.expected_epoch != 0) return "member list takes no epoch";
  if (!targets && c.target != 0) return kind + " takes no target";
  if (c.kind != MemberChangeKind::replace && c.other != 0) return kind + " takes no other member";
  const bool keys = adds || c.kind == MemberChangeKind::update;
  if (!adds && !c.name.empty()) return kind + " takes no name";
  if (!keys && !c.peer_key.empty()) return kind + " takes no key";
  if (!endpoints && (!c.peer_endpoint.empty() || !c.client_endpoint.empty())) {
    return kind + " takes no endpoints";
  }
  if (!incarnation && !adds && c.incarnation != 0) return kind + " takes no incarnation";
  if (c.kind == MemberChangeKind::replace && c.target == c.other) {
    return "member replace needs two members: the voter going and the learner taking its place";
  }
  if (adds && !valid_member_name(c.name)) {
    return "member name '" + c.name + "': 1 to " + std::to_string(kMaxNodeNameBytes) +
           " letters, digits, '-', '_' or '.'";
  }
  if (adds && c.peer_endpoint.empty()) return "member add needs a peer endpoint";
  if (c.kind == MemberChangeKind::update && c.peer_endpoint.empty() && c.client_endpoint.empty() &&
      c.peer_key.empty()) {
    return "member update needs a peer or a client endpoint, or a key";
  }
  if (!c.peer_key.empty() && !is_z85_key(c.peer_key)) {
    return "member peer key must be a Z85 CURVE public key of 40 characters";
  }
  for (const auto& [what, endpoint] : {std::pair{"peer endpoint", &c.peer_endpoint},
                                       std::pair{"client endpoint", &c.client_endpoint}}) {
    if (endpoint->empty()) continue;
    if (std::string why = endpoint_refusal(what, *endpoint); !why.empty()) return why;
  }
  return {};
}

}  // namespace

std::string validate(const ClientRequest& r) {
  if (r.client_id == 0) return "client_id must be non-zero";
  if (r.seq == 0) return "seq must start at 1";
  if (r.ack >= r.seq) return "ack must be below seq";
  if (std::string why = validate_op(r.op, r.key, r.value, r.range_end, r.flags); !why.empty()) {
    return why;
  }
  if (r.op != OpKind::range && r.limit != 0) return std::string(op_name(r.op)) + " takes no limit";
  if (r.op == OpKind::member) {
    if (!r.key.empty()) return "member takes no key";
  } else if (r.member != MemberChange{}) {
    return std::string(op_name(r.op)) + " takes no member change (only member does)";
  }
  if (r.op != OpKind::txn) {
    if (r.op == OpKind::member) {
      if (std::string why = validate_member(r.member); !why.empty()) return why;
    }
    if (!r.compares.empty() || !r.success.empty() || !r.failure.empty()) {
      return std::string(op_name(r.op)) + " takes no compares or branches (only txn does)";
    }
    return {};
  }
  if (!r.key.empty()) return "txn takes no key (its compares and ops name theirs)";
  if (r.compares.size() > kMaxTxnCompares) {
    return "txn has " + std::to_string(r.compares.size()) + " compares; the limit is " +
           std::to_string(kMaxTxnCompares);
  }
  for (const Compare& c : r.compares) {
    if (c.target > CompareTarget::mod_revision || c.op > CompareOp::greater) {
      return "compare of an unknown target or operator";
    }
    if (std::string why = size_refusal("compare key", c.key.size(), kMaxKeyBytes); !why.empty()) {
      return why;
    }
    if (std::string why = size_refusal("compare value", c.value.size(), kMaxValueBytes);
        !why.empty()) {
      return why;
    }
  }
  if (std::string why = validate_branch(r.success, "success"); !why.empty()) return why;
  return validate_branch(r.failure, "failure");
}

std::string validate(const WatchRequest& r) {
  if (r.cancel || r.ack) return {};
  return validate_op(OpKind::range, r.key, {}, r.range_end, 0);
}

Result<KvOp> validate_forwarded_op(std::string_view bytes) {
  if (bytes.size() > kMaxClientFrameBytes) {
    return Error{"forwarded op of " + std::to_string(bytes.size()) +
                 " bytes exceeds the client frame limit of " + std::to_string(kMaxClientFrameBytes)};
  }
  KvOp op;
  if (Result<MsgpackShape> shape = scan_msgpack(bytes, {.max_values = kMaxOpValues, .max_depth = 4});
      !shape.ok()) {
    return Error{"undecodable forwarded op: " + shape.error()};
  }
  try {
    std::size_t offset = 0;
    msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size(), offset);
    if (offset != bytes.size()) {
      return Error{"forwarded op has " + std::to_string(bytes.size() - offset) +
                   " trailing bytes"};
    }
    handle.get().convert(op);
  } catch (const std::exception& e) {
    return Error{std::string("undecodable forwarded op: ") + e.what()};
  }
  if (op.noop) return Error{"a no-op was forwarded; only client ops are"};
  if (op.op < OpKind::get || op.op > OpKind::member) {
    return Error{"forwarded op has an unknown operation"};
  }
  ClientRequest as_request{op.client_id, op.seq,   op.ack,      op.op,      op.key,
                           op.value,     op.range_end, op.limit, op.flags, op.compares,
                           op.success,   op.failure};
  if (op.op == OpKind::member) {
    // The change travels encoded in `value`: checked as the client's
    // request, and only in the encoding KvOp::from gives it, so that no
    // replica meets bytes the front doors never let through.
    Result<MemberChange> change = op.member_change();
    if (!change.ok()) return Error{"invalid forwarded op: " + change.error()};
    as_request.member = std::move(change.value());
    as_request.value.clear();
    if (KvOp::from(as_request).value != op.value) {
      return Error{"invalid forwarded op: its member change is not encoded as a node encodes it"};
    }
  }
  if (std::string why = validate(as_request); !why.empty()) {
    return Error{"invalid forwarded op: " + why};
  }
  return op;
}

void FrontDoor::reject(Receipt of, std::string route, ReplyCode code, std::string why,
                       Outbox& out) {
  ++rejected_;
  refusal_ = of;
  out.push_back({{self_, Actor::front_door}, ToClient{std::move(route), encode(ErrorReply{code, std::move(why)})}});
}

std::size_t FrontDoor::bytes_in_flight(const std::string& route) const {
  const auto it = connection_bytes_.find(route);
  return it == connection_bytes_.end() ? 0 : it->second;
}

std::string FrontDoor::admission_refusal(const std::string& route, std::size_t bytes) const {
  const std::size_t connection = bytes_in_flight(route);
  if (connection > 0 && connection + bytes > limits_.connection_bytes) {
    return "overloaded: " + std::to_string(connection) +
           " bytes in flight from this connection (limit " +
           std::to_string(limits_.connection_bytes) +
           "); wait for the replies, then retry later with the same seq";
  }
  if (node_bytes_ > 0 && node_bytes_ + bytes > limits_.node_bytes) {
    return "overloaded: " + std::to_string(node_bytes_) + " bytes in flight on this node (limit " +
           std::to_string(limits_.node_bytes) + "); retry later with the same seq";
  }
  return {};
}

void FrontDoor::admit(const std::string& route, const ClientRequest& r, std::size_t bytes,
                      Time now) {
  // A retry of the same request replaces its earlier copy (the applier keeps one).
  if (auto it = in_flight_.find({r.client_id, r.seq}); it != in_flight_.end()) release(it);
  in_flight_[{r.client_id, r.seq}] = InFlight{route, bytes, {client_op(r.op), now}};
  connection_bytes_[route] += bytes;
  node_bytes_ += bytes;
  check_invariants();
}

void FrontDoor::release(std::map<std::pair<ClientId, std::uint64_t>, InFlight>::iterator it) {
  auto connection = connection_bytes_.find(it->second.route);
  assert(connection != connection_bytes_.end() && connection->second >= it->second.bytes);
  connection->second -= it->second.bytes;
  if (connection->second == 0) connection_bytes_.erase(connection);
  node_bytes_ -= it->second.bytes;
  in_flight_.erase(it);
}

void FrontDoor::count_reply(const ToClient& reply, Time now) {
  const std::optional<Receipt> refusal = std::exchange(refusal_, std::nullopt);
  if (metrics_ == nullptr) return;
  const std::optional<ReplyKind> kind = peek_reply(reply.body);
  if (!kind) return;  // not a reply this node's actors send a client
  std::optional<Receipt> timed;
  ClientOp op = ClientOp::invalid;
  if (reply.client_id != 0) {
    const auto it = in_flight_.find({reply.client_id, reply.seq});
    if (it == in_flight_.end()) return;  // its request is not one this door admitted
    timed = it->second.receipt;
  } else if (refusal) {
    timed = refusal;
  } else if (kind->type == MessageType::status_reply) {
    op = ClientOp::status;
  } else if (kind->type == MessageType::fault_reply) {
    op = ClientOp::fault;
  } else if (kind->type == MessageType::snapshot_save_reply) {
    op = ClientOp::snapshot_save;
  } else if (kind->type == MessageType::watch_response && kind->watch_created) {
    op = ClientOp::watch;
  } else {
    return;  // a watch's events or progress: no request answered
  }
  if (timed) {
    op = timed->op;
    metrics_->observe(op, now - timed->received);
  }
  metrics_->count(op, kind->code);
}

void FrontDoor::on_reply(const ToClient& reply, Time now) {
  count_reply(reply, now);
  if (reply.client_id == 0) return;  // answers no ClientRequest
  // Everything of this client up to the answered seq: an older request the
  // applier replaced by a newer one gets no reply of its own.
  auto it = in_flight_.lower_bound({reply.client_id, 0});
  while (it != in_flight_.end() && it->first.first == reply.client_id &&
         it->first.second <= reply.seq) {
    release(it++);
  }
  check_invariants();
}

void FrontDoor::check_invariants() const {
#ifndef NDEBUG
  std::size_t sum = 0;
  for (const auto& [route, bytes] : connection_bytes_) sum += bytes;
  assert(sum == node_bytes_);
  assert(in_flight_.empty() == (node_bytes_ == 0));
#endif
}

// A snapshot holds every key: only an admin may fetch one. The refusal is
// a SnapshotSaveReply, so the client reads it where it reads the chunks.
void FrontDoor::on_snapshot_save(std::string route, const SnapshotSaveRequest& m, bool admin,
                                 Outbox& out, Time now) {
  if (!admin) {
    ++rejected_;
    refusal_ = Receipt{ClientOp::snapshot_save, now};
    const SnapshotSaveReply r{.code = ReplyCode::permission_denied,
                              .error = "saving a snapshot needs an admin key: give kvctl the "
                                       "--key of a client whose public key is in the nodes' "
                                       "--admin-keys"};
    out.push_back({{self_, Actor::front_door}, ToClient{std::move(route), encode(r)}});
    return;
  }
  out.push_back({{self_, Actor::applier}, SnapshotSaveFromClient{std::move(route), m}});
}

void FrontDoor::on_client_request(std::string route, ClientRequest& r, std::size_t charge,
                                  Outbox& out, bool admin, Time now) {
  const Receipt of{client_op(r.op), now};
  if (std::string why = validate(r); !why.empty()) {
    reject(of, std::move(route), ReplyCode::bad_request, std::move(why), out);
    return;
  }
  // Who votes, and whose keys the peer ports let in, is the cluster's
  // security: changing it is an admin request, as saving a snapshot is.
  // Reading it (member list) is not.
  if (!admin && r.op == OpKind::member && r.member.kind != MemberChangeKind::list) {
    reject(of, std::move(route), ReplyCode::permission_denied,
           std::string("member ") + member_command(r.member.kind) +
               ": changing the membership needs an admin key: give kvctl the --key of a client "
               "whose public key is in the nodes' --admin-keys (member list needs none)",
           out);
    return;
  }
  if (peer_keys_required_ && r.op == OpKind::member &&
      r.member.kind == MemberChangeKind::add_learner && r.member.peer_key.empty()) {
    reject(of, std::move(route), ReplyCode::bad_request,
           "member add: this cluster runs with keys, and peers accept a member only by the "
           "public key of its entry; give the new member's key (kvctl member add " +
               r.member.name + " ... --peer-key " + r.member.name + ".key)",
           out);
    return;
  }
  admit(route, r, charge, now);
  out.push_back({{self_, Actor::applier}, FromClient{std::move(route), std::move(r)}});
}

void FrontDoor::on_malformed_message(std::string route, std::size_t parts, Outbox& out, Time now) {
  reject({ClientOp::invalid, now}, std::move(route), ReplyCode::bad_request,
         "expected one frame per request, got " + std::to_string(parts), out);
}

void FrontDoor::on_client_frame(std::string route, std::string_view body, Outbox& out,
                                bool admin, Time now) {
  const std::size_t charge = body.size() + limits_.request_overhead_bytes;
  if (std::string why = admission_refusal(route, charge); !why.empty()) {
    ++overloaded_;
    reject({peek_request_op(body), now}, std::move(route), ReplyCode::overloaded, std::move(why),
           out);
    return;
  }
  Result<Body> decoded = decode(body, kMaxClientFrameBytes);
  if (!decoded.ok()) {
    const bool version = decoded.error_kind() == ErrorKind::unsupported_version;
    reject({ClientOp::invalid, now}, std::move(route),
           version ? ReplyCode::unsupported_version : ReplyCode::bad_request, decoded.error(), out);
    return;
  }
  Body& msg = decoded.value();
  if (auto* r = std::get_if<ClientRequest>(&msg)) {
    on_client_request(std::move(route), *r, charge, out, admin, now);
  } else if (auto* w = std::get_if<WatchRequest>(&msg)) {
    if (std::string why = validate(*w); !why.empty()) {
      reject({ClientOp::watch, now}, std::move(route), ReplyCode::bad_request, std::move(why), out);
      return;
    }
    out.push_back({{self_, Actor::applier}, WatchFromClient{std::move(route), std::move(*w)}});
  } else if (std::holds_alternative<StatusRequest>(msg)) {
    out.push_back({{self_, Actor::applier}, StatusFromClient{std::move(route)}});
  } else if (auto* b = std::get_if<SnapshotSaveRequest>(&msg)) {
    on_snapshot_save(std::move(route), *b, admin, out, now);
  } else if (auto* f = std::get_if<FaultRequest>(&msg)) {
    if (!fault_injection_) {
      reject({ClientOp::fault, now}, std::move(route), ReplyCode::fault_injection_disabled,
             "fault injection is disabled on this node; start kvpaxosd with --fault-injection",
             out);
      return;
    }
    out.push_back({{self_, Actor::peer_link}, FaultFromClient{std::move(route), std::move(*f)}});
  } else {
    reject({ClientOp::invalid, now}, std::move(route), ReplyCode::bad_request,
           std::string("clients may not send ") + to_string(type_of(msg)), out);
  }
}

}  // namespace kvpaxos
