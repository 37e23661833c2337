#include "actors/security/zap_handler.hpp"

#include <cerrno>
#include <chrono>
#include <thread>

#include <array>
#include <vector>

#include <zmq_addon.hpp>

#include "actors/runtime/logger.hpp"

namespace kvpaxos {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr std::chrono::seconds kLogEvery{1};

std::mutex& registry_mu() {
  static std::mutex mu;
  return mu;
}
std::map<void*, std::weak_ptr<ZapHandler>>& registry() {
  static std::map<void*, std::weak_ptr<ZapHandler>> handlers;
  return handlers;
}

std::string z85_of(const zmq::message_t& raw) {
  if (raw.size() != 32) return {};
  std::array<char, 41> text{};
  if (zmq_z85_encode(text.data(), static_cast<const std::uint8_t*>(raw.data()), 32) == nullptr) {
    return {};
  }
  return text.data();
}

std::string stop_endpoint(const void* handler) {
  return "inproc://kvpaxos-zap-stop-" + std::to_string(reinterpret_cast<std::uintptr_t>(handler));
}

}  // namespace

std::string user_id_of(const zmq::message_t& message) {
  // zmq_msg_gets fails (EINVAL) when the connection carries no User-Id.
  const char* user = zmq_msg_gets(message.handle(), "User-Id");
  return user == nullptr ? std::string() : std::string(user);
}

Result<std::shared_ptr<ZapHandler>> ZapHandler::for_context(zmq::context_t& ctx) {
  // A handler that just stopped (kvpaxosd --join's survey, before the node
  // starts) may still hold the endpoint: libzmq closes sockets in its reaper
  // thread, after zmq_close returns. Give it a second, without the lock (a
  // stopping handler takes it in its destructor).
  for (int attempt = 0;; ++attempt) {
    {
      const std::lock_guard<std::mutex> lock(registry_mu());
      std::weak_ptr<ZapHandler>& slot = registry()[ctx.handle()];
      if (std::shared_ptr<ZapHandler> running = slot.lock()) return running;
      try {
        std::shared_ptr<ZapHandler> handler(new ZapHandler(ctx));
        slot = handler;
        return handler;
      } catch (const zmq::error_t& e) {
        if (e.num() != EADDRINUSE || attempt == 100) {
          return Error{std::string("cannot start the ZAP handler (") + kZapEndpoint + "): " +
                       e.what() + "; is another authenticator bound in this process?"};
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

ZapHandler::ZapHandler(zmq::context_t& ctx)
    : ctx_(ctx),
      rep_(ctx, zmq::socket_type::rep),
      stop_pull_(ctx, zmq::socket_type::pull),
      stop_push_(ctx, zmq::socket_type::push) {
  for (zmq::socket_t* s : {&rep_, &stop_pull_, &stop_push_}) s->set(zmq::sockopt::linger, 0);
  rep_.bind(kZapEndpoint);  // before any CURVE server socket exists: see the header
  stop_pull_.bind(stop_endpoint(this));
  stop_push_.connect(stop_endpoint(this));
  thread_ = std::thread([this] { run(); });
}

ZapHandler::~ZapHandler() {
  stop_push_.send(zmq::str_buffer("$TERM"), zmq::send_flags::none);
  thread_.join();
  const std::lock_guard<std::mutex> lock(registry_mu());
  auto it = registry().find(ctx_.handle());
  if (it != registry().end() && it->second.expired()) registry().erase(it);
}

void ZapHandler::set_policy(const std::string& domain, ZapPolicy policy) {
  const std::lock_guard<std::mutex> lock(mu_);
  policies_[domain] = std::move(policy);
}

void ZapHandler::remove_policy(const std::string& domain) {
  const std::lock_guard<std::mutex> lock(mu_);
  policies_.erase(domain);
}

Result<std::string> ZapHandler::decide(const std::string& domain, const std::string& mechanism,
                                       const std::string& key) {
  const std::lock_guard<std::mutex> lock(mu_);
  auto it = policies_.find(domain);
  if (it == policies_.end()) return Error{"no policy for ZAP domain '" + domain + "'"};
  const ZapPolicy& p = it->second;
  if (mechanism != "CURVE") return Error{"mechanism " + mechanism + " on the " + p.what};
  if (key.empty()) return Error{"malformed CURVE credentials on the " + p.what};
  if (p.refused.count(key) != 0) {
    return Error{"key " + key + " is a node key, refused on the " + p.what};
  }
  if (auto user = p.users.find(key); user != p.users.end()) return user->second;
  if (p.allow_any) return key;
  return Error{"unknown key " + key + " refused on the " + p.what};
}

void ZapHandler::log_refusal(const std::string& domain, const std::string& why) {
  const auto now = std::chrono::steady_clock::now();
  std::uint64_t more = 0;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    auto& last = last_logged_[domain];
    if (now - last < kLogEvery) {
      ++unlogged_[domain];
      return;
    }
    last = now;
    more = std::exchange(unlogged_[domain], 0);
  }
  log::warn("authentication: " + why, {{"refused_since_last_line", more}});
}

void ZapHandler::answer_one() {
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(rep_, std::back_inserter(request), zmq::recv_flags::dontwait)) return;
  // [version, request id, domain, address, routing id, mechanism, credentials...]
  const bool well_formed = request.size() >= 6 && request[0].to_string_view() == "1.0";
  std::string status = "400";
  std::string text = "malformed ZAP request";
  std::string user;
  if (well_formed) {
    const std::string domain = request[2].to_string();
    const std::string mechanism = request[5].to_string();
    const std::string key = request.size() >= 7 ? z85_of(request[6]) : std::string();
    Result<std::string> decided = decide(domain, mechanism, key);
    if (decided.ok()) {
      status = "200";
      text = "OK";
      user = decided.value();
      accepted_.fetch_add(1, std::memory_order_relaxed);
    } else {
      text = decided.error();
      refused_.fetch_add(1, std::memory_order_relaxed);
      log_refusal(domain, decided.error() + " (from " + request[3].to_string() + ")");
    }
  }
  const std::string request_id = request.size() >= 2 ? request[1].to_string() : std::string();
  const std::array<zmq::const_buffer, 6> reply = {
      zmq::str_buffer("1.0"), zmq::buffer(request_id), zmq::buffer(status),
      zmq::buffer(text),      zmq::buffer(user),       zmq::const_buffer()};
  // A REP socket must answer before it can receive again; the reply goes to
  // the pipe the request came on, which holds no other message (libzmq asks
  // once per handshake and waits), so this send never waits, and one whose
  // asker has gone is dropped.
  (void)zmq::send_multipart(rep_, reply, zmq::send_flags::none);
}

void ZapHandler::run() {
  // One handler serves every node of the context: the process's.
  const log::ThreadSource source({"", "zap"});
  try {
    for (;;) {
      zmq::pollitem_t items[] = {{stop_pull_.handle(), 0, ZMQ_POLLIN, 0},
                                 {rep_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
      if ((items[0].revents & ZMQ_POLLIN) != 0) return;
      if ((items[1].revents & ZMQ_POLLIN) != 0) answer_one();
    }
  } catch (const zmq::error_t& e) {
    // The REP socket stays bound (it is a member), so later handshakes wait
    // for an answer and time out: refused, never let in. Say it loudly.
    if (e.num() != ETERM) log::error("the ZAP handler stopped", {{"error", e.what()}});
  }
}

}  // namespace kvpaxos
