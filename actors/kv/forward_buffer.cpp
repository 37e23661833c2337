#include "actors/kv/forward_buffer.hpp"

namespace kvpaxos {

void ForwardBuffer::add(NodeId to, std::string op, Outbox& out) {
  if (!ops_.empty() && to_ != to) flush(out);
  to_ = to;
  bytes_ += op.size();
  ops_.push_back(std::move(op));
  if (bytes_ >= max_bytes_) flush(out);
}

void ForwardBuffer::flush(Outbox& out) {
  if (ops_.empty()) return;
  out.push_back({{to_, Actor::applier}, ForwardOps{std::move(ops_)}});
  ops_.clear();
  bytes_ = 0;
}

void ForwardBuffer::drop_unless_for(NodeId to) {
  if (to_ == to) return;
  ops_.clear();
  bytes_ = 0;
}

}  // namespace kvpaxos
