// What a node asks the others before it starts: the logic of kvpaxosd's
// --first-start survey and of its --join barrier (docs/architecture.md,
// "Rebuilding a node that lost its data dir").
//
// Both are sans-I/O: the runner (survey_peers and gather_join_barrier in
// actors/runtime/node.cpp) owns the sockets and the clock, calls tick() with
// the time before each wait, sends what tick() appended (every message goes
// from this node's peer link), and hands over each well-formed frame from
// another member. The simulator drives JoinSurvey the same way to compute a
// rebuilt node's vote floor, so it checks the rule the daemon runs.
//
// Senders: the runner passes the node the frame came from (with keys, the
// node whose key authenticated it); answers that name this node or no member
// are ignored here too, so the logic is correct on its own.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/core/cluster_config.hpp"
#include "messages/codec.hpp"
#include "messages/membership.hpp"
#include "messages/messages.hpp"
#include "messages/result.hpp"

namespace kvpaxos {

// What the other nodes say about the log, heard before this node starts: they
// send heartbeats stamped with their progress to every member. A node with an
// empty data dir uses it to tell a new cluster from one that has a log (and
// so from a node that lost its data).
struct PeerSurvey {
  std::size_t heard = 0;             // distinct peers heard from
  std::size_t needed = 0;            // peers that, with this node, make a majority
  InstanceId furthest_decided = 0;   // highest decided_below / done_below / forget_below heard
  std::string furthest_name;         // who reported it
};

// The --first-start survey: sends a Heartbeat to every peer's link every
// 100 ms (so nodes surveying at once hear each other: a new cluster starts
// all at once) until a majority with this node was heard, a peer reports
// progress, or `wait` has passed since `start`.
class FirstStartSurvey {
 public:
  FirstStartSurvey(NodeId self, std::vector<Member> members, Duration wait, Time start);

  // Heartbeats due at `now`; ends the survey once `wait` has passed.
  void tick(Time now, Outbox& out);
  // The header of any frame from node `header.from.node`: its body does not
  // matter, every frame of a running node is stamped with its progress.
  void handle(const FrameHeader& header);
  // A line for the operator about once a second (the first a second after
  // `start`) while the survey runs, naming who has not been heard yet.
  std::optional<std::string> progress_line(Time now);

  bool done() const { return expired_ || enough_heard() || survey_.furthest_decided > 0; }
  const PeerSurvey& result() const { return survey_; }

 private:
  bool enough_heard() const { return survey_.heard >= survey_.needed; }

  const NodeId self_;
  const std::vector<Member> members_;
  const Duration wait_;
  const Time start_;
  // heard_[peer] iff a frame came from it; survey_.heard counts them.
  std::vector<bool> heard_;
  PeerSurvey survey_;
  Time next_beat_;
  Time next_progress_;
  bool expired_ = false;
};

// Rebuilding a node that lost its data dir (kvpaxosd --join). Its lost self
// may have promised or accepted anything in instances that were in progress
// when it died; the new node must never vote there. Every other node's
// acceptor and proposer report (JoinInfo) a bound above every instance they
// have seen; since any instance in which the lost self's vote counted was
// also seen by another acceptor (a majority has at least two members) or
// started by a live proposer, the maximum of those bounds is a safe vote
// floor. Every other node must answer: one that is down could be the only
// other witness of such an instance.
struct JoinBarrier {
  InstanceId vote_floor = 0;    // the largest instance_bound any answer reported
  std::uint64_t max_round = 0;  // the largest ballot round any answer reported
};

// The first configuration, as the --cluster list gives it: member i is the
// list's i-th, a voter, known for every instance.
ConfigHistory bootstrap_history(const std::vector<Member>& members);

// The --join barrier: asks every other member's acceptor and proposer (every
// member of any entry of the history, learners too)
// (JoinQuery, again every 200 ms until that actor answered) and waits for all
// of them. It ends with the barrier once all answered, or with an error that
// tells the operator what to do: `timeout` passed with someone silent,
// another node is being rebuilt too (it sent this node a JoinQuery), or an
// answering acceptor is itself still repairing (a second rebuilt node could
// leave an instance below both floors that no majority may vote in).
//
// An actor's repeated answer (a resent query may be answered twice) counts
// once towards the barrier; its bound and round still join the maxima (they
// only raise the floor), and a repairing flag in it still refuses.
class JoinSurvey {
 public:
  JoinSurvey(NodeId self, const ConfigHistory& config, Duration timeout, Time start);

  // Queries due at `now`; ends the survey with an error once `timeout` has
  // passed since `start` without every answer.
  void tick(Time now, Outbox& out);
  // A decoded message from `from`. Only JoinInfo from an acceptor or a
  // proposer, and JoinQuery from anyone, matter: the rest is Paxos traffic
  // for the node this one will be, which is not running yet.
  void handle(const Address& from, const Body& body);
  // A line for the operator about once a second (the first a second after
  // `start`) while the survey runs, naming who has not answered yet.
  std::optional<std::string> progress_line(Time now);

  bool done() const { return failure_.has_value() || unanswered() == 0; }
  // Once done(): the barrier, or why there is none.
  Result<JoinBarrier> result() const;
  // "n2 (tcp://...), n3 (tcp://...)": the nodes with an actor yet to answer.
  std::string missing() const;

 private:
  static constexpr std::array<Actor, 2> kAsked = {Actor::acceptor, Actor::proposer};
  std::size_t unanswered() const;

  // One other member: how the operator knows it, and answered[k] iff
  // kAsked[k] of it answered.
  struct Peer {
    std::string name;
    std::string endpoint;
    std::array<bool, kAsked.size()> answered{};
  };

  const NodeId self_;
  const Duration timeout_;
  const Time start_;
  std::map<NodeId, Peer> peers_;  // by member id; this node is not one (nobody asks it)
  // The maxima over every answer handled: never decrease.
  JoinBarrier barrier_;
  std::optional<Error> failure_;  // set once: the survey is over
  Time next_ask_;
  Time next_progress_;
};

}  // namespace kvpaxos
