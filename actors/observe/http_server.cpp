#include "actors/observe/http_server.hpp"

#include <pthread.h>

#include <cassert>

#include <zmq_addon.hpp>

#include "actors/runtime/logger.hpp"

namespace kvpaxos {

std::string NodeHealth::metrics_text() const {
  return format_metrics(m_, read_process_stats(), Clock::now());
}
std::string NodeHealth::not_live_reason() const { return kvpaxos::not_live_reason(m_, Clock::now()); }
std::string NodeHealth::not_ready_reason() const {
  return kvpaxos::not_ready_reason(m_, Clock::now());
}

MetricsHttpThread::MetricsHttpThread(zmq::context_t& ctx, const std::string& endpoint,
                                     const NodeMetrics& metrics)
    : metrics_(metrics), stream_(ctx, zmq::socket_type::stream) {
  stream_.set(zmq::sockopt::linger, 0);
  stream_.set(zmq::sockopt::sndtimeo, 0);
  stream_.bind(endpoint);
  bound_ = stream_.get(zmq::sockopt::last_endpoint);
  thread_ = std::thread([this] { run(); });
}

MetricsHttpThread::~MetricsHttpThread() {
  stop_.store(true, std::memory_order_relaxed);
  thread_.join();
}

// A STREAM socket closes a connection when sent [id][empty frame].
void MetricsHttpThread::close(const std::string& id) {
  connections_.erase(id);
  try {
    if (stream_.send(zmq::buffer(id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      (void)stream_.send(zmq::message_t(), zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t&) {
    // EHOSTUNREACH: the peer is already gone.
  }
}

void MetricsHttpThread::answer(const std::string& id, const HttpResponse& r) {
  const std::string bytes = serialize(r);
  try {
    if (stream_.send(zmq::buffer(id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      (void)stream_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t&) {
  }
  close(id);
}

void MetricsHttpThread::on_frames() {
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(stream_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
  if (frames.size() != 2) return;
  const std::string id = frames[0].to_string();
  if (frames[1].size() == 0) {  // a connection opened, or closed
    if (connections_.erase(id) != 0) return;
    if (connections_.size() >= kMaxHttpConnections) {
      close(id);
      return;
    }
    connections_[id].opened = Clock::now();
    return;
  }
  auto c = connections_.find(id);
  if (c == connections_.end()) return;  // one we closed; its bytes come late
  c->second.buffered.append(frames[1].data<char>(), frames[1].size());
  const ParsedRequest p = parse_request(c->second.buffered);
  if (p.state == ParseState::incomplete) return;
  if (p.state == ParseState::bad) {
    answer(id, p.error);
    return;
  }
  answer(id, route(p.request, NodeHealth(metrics_)));
}

void MetricsHttpThread::expire(Time now) {
  std::vector<std::string> late;
  for (const auto& [id, c] : connections_) {
    if (now - c.opened > kRequestTimeout) late.push_back(id);
  }
  for (const std::string& id : late) {
    HttpResponse r;
    r.status = 408;
    r.body = "no complete request within 5 s\n";
    answer(id, r);
  }
}

void MetricsHttpThread::run() {
  pthread_setname_np(pthread_self(), "metrics_http");
  const log::ThreadSource source({"", "metrics_http"});
  try {
    while (!stop_.load(std::memory_order_relaxed)) {
      zmq::pollitem_t items[] = {{stream_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, std::chrono::milliseconds(100));
      for (int i = 0; i < 256 && (items[0].revents & ZMQ_POLLIN) != 0; ++i) {
        on_frames();
        if ((stream_.get(zmq::sockopt::events) & ZMQ_POLLIN) == 0) break;
      }
      expire(Clock::now());
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) log::error("the metrics endpoint stopped", {{"error", e.what()}});
  }
}

}  // namespace kvpaxos
