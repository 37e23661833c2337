// memory_soak: drives a running cluster with many large Puts and reports the
// nodes' resident memory, to show the log is forgotten and dedup state stays
// bounded. Not a test (no pass/fail); deploy/memory-soak.sh runs it.
//
//   memory_soak --endpoints 127.0.0.1:7201,... --pids 123,124,125
//               [--ops 10000] [--value-bytes 100000] [--keys 4] [--clients 4]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "client/client.hpp"

namespace {

using namespace kvpaxos;
using Seconds = std::chrono::duration<double>;

long rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::string rss_row(const std::vector<int>& pids) {
  std::ostringstream row;
  for (int pid : pids) row << " " << pid << ":" << rss_kib(pid) / 1024 << "MiB";
  return row.str();
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) parts.push_back(part);
  return parts;
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoints;
  std::string pid_list;
  int ops = 10000;
  std::size_t value_bytes = 100000;
  int keys = 4;
  int clients = 4;
  CLI::App app{"memory_soak: many large Puts against a running kvpaxos cluster, with node RSS"};
  app.add_option("--endpoints", endpoints, "client addresses, HOST:PORT,...")->required();
  app.add_option("--pids", pid_list, "kvpaxosd process ids to watch, PID,...")->required();
  app.add_option("--ops", ops, "total Puts");
  app.add_option("--value-bytes", value_bytes, "bytes per value");
  app.add_option("--keys", keys, "distinct keys");
  app.add_option("--clients", clients, "concurrent clients");
  CLI11_PARSE(app, argc, argv);

  std::vector<int> pids;
  for (const std::string& p : split(pid_list)) pids.push_back(std::stoi(p));
  std::cout << "start rss" << rss_row(pids) << std::endl;

  zmq::context_t ctx(1);
  std::atomic<int> next{0};
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int c = 0; c < clients; ++c) {
    workers.emplace_back([&, c] {
      Client client(ctx, ClientOptions{.endpoints = split(endpoints),
                                       .deadline = std::chrono::milliseconds(30000)});
      std::string value(value_bytes, static_cast<char>('a' + c));
      for (int i = next++; i < ops; i = next++) {
        value[0] = static_cast<char>('A' + i % 26);
        if (!client.put("soak-" + std::to_string(i % keys), value).ok()) ++failed;
        ++done;
      }
    });
  }
  while (done.load() < ops) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const int d = done.load();
    const double secs = Seconds(std::chrono::steady_clock::now() - started).count();
    std::cout << "progress " << d << "/" << ops << " puts, " << static_cast<int>(d / secs)
              << " puts/s, failed " << failed.load() << ", rss" << rss_row(pids) << std::endl;
  }
  for (auto& w : workers) w.join();
  // Let Done propagate (heartbeats every 50 ms) so the last instances are forgotten too.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double secs = Seconds(std::chrono::steady_clock::now() - started).count();
  std::cout << "end " << ops << " puts of " << value_bytes << " bytes in " << secs << " s ("
            << static_cast<int>(ops / secs) << " puts/s), failed " << failed.load() << ", rss"
            << rss_row(pids) << std::endl;
  return failed.load() == 0 ? 0 : 1;
}
