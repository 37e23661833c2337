// Membership in the applier (actors/kv/applier.hpp): member ops through the
// log and the sessions, the ConfigUpdates its Paxos actors get, the alpha
// window, the no-ops that finish the old configuration, the lead of a
// removed leader, the configuration in snapshots, and the front door's
// checks of member requests.
#include <gtest/gtest.h>

#include "actor_test_support.hpp"
#include "actors/kv/applier.hpp"
#include "actors/kv/front_door.hpp"
#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

using test_support::at;
using test_support::batch_of;
using test_support::sent;
const auto& replies = test_support::client_replies;

constexpr std::uint64_t kAlpha = 8;

ApplierOptions options(std::size_t voters = 3, std::uint64_t alpha = kAlpha) {
  return ApplierOptions{.name = "n1", .config = ConfigState::fixed(voters, alpha)};
}

ClientRequest member_request(ClientId client, std::uint64_t seq, MemberChange change) {
  return ClientRequest{.client_id = client, .seq = seq, .op = OpKind::member, .member = change};
}

MemberChange add_n4(std::uint64_t epoch = 0) {
  return MemberChange{.kind = MemberChangeKind::add_learner, .expected_epoch = epoch,
                      .name = "n4", .peer_endpoint = "tcp://127.0.0.1:7104"};
}



std::vector<Actor> config_update_targets(const Outbox& out) {
  std::vector<Actor> to;
  for (const auto& [address, m] : sent<ConfigUpdate>(out)) to.push_back(address.actor);
  return to;
}

const std::vector<Actor> kPaxosActors = {Actor::proposer, Actor::learner, Actor::acceptor,
                                         Actor::peer_link};

TEST(ApplierMembership, AnnouncesTheConfigurationToItsPaxosActorsOnceAtStart) {
  Applier a(0, options());
  Outbox out;
  a.tick(at(0), out);
  EXPECT_EQ(config_update_targets(out), kPaxosActors);
  const ConfigUpdate u = sent<ConfigUpdate>(out).front().second;
  EXPECT_EQ(u.alpha, kAlpha);
  EXPECT_EQ(u.history.known_below, kAlpha) << "nothing applied yet";
  EXPECT_EQ(u.history.latest().voters(), (std::vector<NodeId>{0, 1, 2}));
  out.clear();
  a.tick(at(20), out);
  EXPECT_TRUE(sent<ConfigUpdate>(out).empty());
}

// Every Propose the applier sends is below applied_below + alpha, and the
// proposer has heard that bound before it.
void expect_within_window(const Outbox& out, InstanceId applied_below, InstanceId& known_below) {
  for (const Outbound& m : out) {
    if (const auto* u = std::get_if<ConfigUpdate>(&m.body); u && m.to.actor == Actor::proposer) {
      known_below = u->history.known_below;
    }
    if (const auto* p = std::get_if<Propose>(&m.body)) {
      known_below = std::max(known_below, p->known_below);  // the window, with the same configs
      EXPECT_LT(p->instance, applied_below + kAlpha) << "proposed past the window";
      EXPECT_LT(p->instance, known_below) << "the proposer had not heard the window moved";
    }
  }
}

TEST(ApplierMembership, BatchesWaitAtTheEdgeOfTheWindow) {
  ApplierOptions o = options();
  o.max_in_flight = 3;
  o.max_batch_ops = 1;
  Applier a(0, o);
  Outbox out;
  InstanceId known_below = 0;
  // The learner knows instances [0, 8) are decided, none applied yet: no
  // instance is left in the window for our batch.
  a.handle({0, Actor::learner}, LearnerProgress{0, kAlpha}, at(0), out);
  a.handle({0, Actor::front_door}, FromClient{"r", {1, 1, 0, OpKind::put, "k", "v"}}, at(0), out);
  expect_within_window(out, 0, known_below);
  EXPECT_TRUE(sent<Propose>(out).empty()) << "proposed at the window's end";
  out.clear();
  a.handle({0, Actor::learner}, Apply{0, encode_op(KvOp::no_op())}, at(1), out);
  expect_within_window(out, 1, known_below);
  ASSERT_EQ(sent<Propose>(out).size(), 1u);
  EXPECT_EQ(sent<Propose>(out)[0].second.instance, kAlpha) << "the first instance the window holds";
  EXPECT_EQ(sent<Propose>(out)[0].second.known_below, 1 + kAlpha) << "the window's new end";
  EXPECT_TRUE(sent<ConfigUpdate>(out).empty()) << "the configurations did not change";
}

TEST(ApplierMembership, HoleFillsStopAtTheWindow) {
  Applier a(0, options());
  Outbox out;
  InstanceId known_below = 0;
  a.handle({0, Actor::learner}, LearnerProgress{0, 1000}, at(0), out);
  InstanceId applied = 0;
  InstanceId most = 0;
  for (int t = 300; t < 6000; t += 300) {
    a.tick(at(t), out);
    expect_within_window(out, applied, known_below);
    for (const auto& [to, p] : sent<Propose>(out)) most = std::max(most, p.instance);
    out.clear();
    // Each no-op batch is decided and applied, and the next hole is right after it.
    while (applied <= most) {
      a.handle({0, Actor::learner}, Apply{applied++, encode_op(KvOp::no_op())}, at(t + 1), out);
    }
    out.clear();
  }
  EXPECT_GT(most, 4 * kAlpha) << "the doubling batches crossed several windows";
}

TEST(ApplierMembership, AChangeAppliesThroughTheLogAndReachesThePaxosActors) {
  Applier a(0, options());
  Outbox out;
  a.tick(at(0), out);
  out.clear();
  a.handle({0, Actor::front_door}, FromClient{"r", member_request(7, 1, add_n4())}, at(0), out);
  ASSERT_EQ(sent<Propose>(out).size(), 1u);
  const Propose p = sent<Propose>(out)[0].second;
  out.clear();
  a.handle({0, Actor::learner}, Apply{p.instance, p.value}, at(1), out);
  EXPECT_EQ(config_update_targets(out), kPaxosActors);
  const ConfigHistory h = sent<ConfigUpdate>(out).front().second.history;
  ASSERT_EQ(h.entries.size(), 2u);
  EXPECT_EQ(h.entries[1].from, p.instance + kAlpha);
  EXPECT_TRUE(h.entries[1].config.is_member(3));
  const std::vector<ClientReply> answered = replies(out);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].member.error, "");
  EXPECT_EQ(answered[0].member.id, 3u);
  EXPECT_EQ(answered[0].member.effective_from, p.instance + kAlpha);
  EXPECT_EQ(a.check_invariants(), "");
}

// The old configuration governs [i + 1, i + alpha) after a change in i: its
// author proposes no-ops there at once rather than waiting for traffic.
TEST(ApplierMembership, TheChangesAuthorFillsTheOldConfigurationsInstancesWithNoOps) {
  Applier a(0, options());
  Outbox out;
  a.handle({0, Actor::learner}, Apply{0, batch_of(0, {member_request(7, 1, add_n4())})}, at(0),
           out);
  std::vector<InstanceId> no_ops;
  InstanceId known_below = 0;
  expect_within_window(out, 1, known_below);
  for (const auto& [to, p] : sent<Propose>(out)) {
    EXPECT_TRUE(decode_entry(p.value)->ops.at(0).noop);
    no_ops.push_back(p.instance);
  }
  EXPECT_EQ(no_ops, (std::vector<InstanceId>{1, 2, 3, 4, 5, 6, 7}));
  // A batch of this node's goes on after them.
  out.clear();
  a.handle({0, Actor::front_door}, FromClient{"r", {1, 1, 0, OpKind::put, "k", "v"}}, at(1), out);
  ASSERT_EQ(sent<Propose>(out).size(), 1u);
  EXPECT_EQ(sent<Propose>(out)[0].second.instance, kAlpha);
}

TEST(ApplierMembership, AnotherNodesChangeIsNotFilledHere) {
  Applier a(0, options());
  Outbox out;
  a.tick(at(0), out);
  out.clear();
  a.handle({0, Actor::learner}, Apply{0, batch_of(1, {member_request(7, 1, add_n4())})}, at(0),
           out);
  EXPECT_EQ(config_update_targets(out), kPaxosActors);
  EXPECT_TRUE(sent<Propose>(out).empty());
}

// The op is decided twice (two nodes proposed it) and the client retries:
// one learner, one id, and the same answer each time.
TEST(ApplierMembership, ARetriedMemberAddAddsOnce) {
  Applier a(0, options());
  Outbox out;
  const ClientRequest add = member_request(7, 1, add_n4());
  a.handle({0, Actor::learner}, Apply{0, batch_of(1, {add})}, at(0), out);
  a.handle({0, Actor::learner}, Apply{1, batch_of(2, {add})}, at(0), out);
  EXPECT_EQ(a.state().config().latest().members.size(), 4u);
  EXPECT_EQ(a.state().config().next_member_id(), 4u);
  out.clear();
  a.handle({0, Actor::front_door}, FromClient{"r", add}, at(1), out);
  const std::vector<ClientReply> answered = replies(out);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].member.id, 3u);
  EXPECT_EQ(answered[0].member.error, "") << "the kept reply, not a refusal of a second add";
}

TEST(ApplierMembership, ARefusedChangeChangesNothingAndSaysWhy) {
  Applier a(0, options());
  Outbox out;
  a.tick(at(0), out);
  out.clear();
  a.handle({0, Actor::learner}, Apply{0, batch_of(1, {member_request(7, 1, add_n4(5))})}, at(0),
           out);
  EXPECT_TRUE(sent<ConfigUpdate>(out).empty()) << "nothing changed";
  EXPECT_EQ(a.state().config().epoch(), 0u);
  EXPECT_EQ(a.state().config().latest().members.size(), 3u);
  out.clear();
  a.handle({0, Actor::front_door}, FromClient{"r", member_request(7, 1, add_n4(5))}, at(1), out);
  ASSERT_EQ(replies(out).size(), 1u);
  EXPECT_NE(replies(out)[0].member.error.find("epoch 5 is not the current epoch 0"),
            std::string::npos);
}

// n2 leads and removes itself: once the removal is in force the lead is
// vacant, and the op this node (n3) forwarded to n2 goes to n1, the lowest
// voter, at once instead of after a forward timeout.
TEST(ApplierMembership, ARemovedLeaderIsNotFollowed) {
  Applier a(2, options());
  Outbox out;
  const ClientRequest put{1, 1, 0, OpKind::put, "k", "v"};
  a.handle({2, Actor::learner}, Apply{0, batch_of(1, {{100, 1, 0, OpKind::put, "x", "1"}})},
           at(0), out);
  a.handle({2, Actor::front_door}, FromClient{"r", put}, at(0), out);
  a.flush(at(0), out);
  ASSERT_EQ(sent<ForwardOps>(out).size(), 1u);
  EXPECT_EQ(sent<ForwardOps>(out)[0].first, (Address{1, Actor::applier}));
  out.clear();
  const MemberChange remove{.kind = MemberChangeKind::remove, .target = 1};
  a.handle({2, Actor::learner}, Apply{1, batch_of(1, {member_request(101, 1, remove)})}, at(1),
           out);
  for (InstanceId i = 2; i < 1 + kAlpha; ++i) {
    EXPECT_EQ(a.leader(), 1u) << "n2 votes until instance " << 1 + kAlpha;
    a.handle({2, Actor::learner}, Apply{i, encode_op(KvOp::no_op())}, at(2), out);
  }
  EXPECT_EQ(a.leader(), 0u);
  a.flush(at(2), out);
  const auto forwarded = sent<ForwardOps>(out);
  ASSERT_EQ(forwarded.size(), 1u) << "the op forwarded to n2 was not redirected";
  EXPECT_EQ(forwarded[0].first, (Address{0, Actor::applier}));
}

// A node that is not a voter (a learner just added) proposes nothing of
// its own while a voter may: its clients' ops go to the lowest voter.
TEST(ApplierMembership, ALearnerForwardsToTheLowestVoter) {
  ConfigState config = ConfigState::fixed(3, kAlpha);
  ASSERT_EQ(config.apply(add_n4(), 0).error, "");
  config.trim(kAlpha);
  Applier a(3, ApplierOptions{.name = "n4", .config = config});
  Outbox out;
  a.handle({3, Actor::front_door}, FromClient{"r", {1, 1, 0, OpKind::put, "k", "v"}}, at(0), out);
  a.flush(at(0), out);
  EXPECT_TRUE(sent<Propose>(out).empty());
  ASSERT_EQ(sent<ForwardOps>(out).size(), 1u);
  EXPECT_EQ(sent<ForwardOps>(out)[0].first, (Address{0, Actor::applier}));
}

TEST(ApplierMembership, ASnapshotCarriesAPendingChange) {
  Applier a(0, options());
  Outbox out;
  a.handle({0, Actor::learner}, Apply{0, batch_of(1, {member_request(7, 1, add_n4())})}, at(0),
           out);
  Applier b(0, options());
  Result<bool> restored = b.restore(a.snapshot());
  ASSERT_TRUE(restored.ok()) << restored.error();
  EXPECT_EQ(b.state().config().record(), a.state().config().record());
  EXPECT_EQ(b.state().config().pending_from(1), kAlpha);
  EXPECT_EQ(b.check_invariants(), "");
  out.clear();
  b.tick(at(0), out);
  ASSERT_FALSE(sent<ConfigUpdate>(out).empty());
  EXPECT_EQ(sent<ConfigUpdate>(out)[0].second.history, a.config_history());
}

TEST(ApplierMembership, AFormatTwoSnapshotKeepsTheBootstrapConfiguration) {
  Applier a(0, options());
  SnapshotRecord r;
  a.state().write_to(r);
  r.format = 2;
  r.config = {};
  Applier b(0, options(5));
  ASSERT_TRUE(b.restore(encode_snapshot(r)).ok());
  EXPECT_EQ(b.state().config().latest().voters().size(), 5u);
}

// ------------------------------------------------------------ front door

ClientRequest valid_member(MemberChange c) { return member_request(1, 1, std::move(c)); }

TEST(FrontDoorMembership, AcceptsEachKindOfChangeWithItsFields) {
  EXPECT_EQ(validate(valid_member({.kind = MemberChangeKind::list})), "");
  EXPECT_EQ(validate(valid_member(add_n4())), "");
  EXPECT_EQ(validate(valid_member({.kind = MemberChangeKind::promote, .target = 3})), "");
  EXPECT_EQ(validate(valid_member({.kind = MemberChangeKind::remove, .target = 0})), "");
  EXPECT_EQ(validate(valid_member({.kind = MemberChangeKind::replace, .target = 0, .other = 3})),
            "");
  EXPECT_EQ(validate(valid_member({.kind = MemberChangeKind::update, .target = 1,
                                   .client_endpoint = "inproc://n2-client"})),
            "");
}

TEST(FrontDoorMembership, RefusesMalformedChanges) {
  MemberChange bad_name = add_n4();
  bad_name.name = "n 4";
  MemberChange long_name = add_n4();
  long_name.name = std::string(65, 'a');
  MemberChange bad_endpoint = add_n4();
  bad_endpoint.peer_endpoint = "127.0.0.1:7104";
  MemberChange bad_port = add_n4();
  bad_port.peer_endpoint = "tcp://127.0.0.1:99999";
  MemberChange no_peer = add_n4();
  no_peer.peer_endpoint.clear();
  const std::vector<std::pair<MemberChange, std::string>> cases = {
      {bad_name, "member name 'n 4'"},
      {long_name, "member name"},
      {bad_endpoint, "is not tcp://HOST:PORT or inproc://NAME"},
      {bad_port, "no valid port"},
      {no_peer, "needs a peer endpoint"},
      {{.kind = MemberChangeKind::list, .target = 2}, "member list takes no target"},
      {{.kind = MemberChangeKind::list, .expected_epoch = 3}, "member list takes no epoch"},
      {{.kind = MemberChangeKind::remove, .target = 1, .name = "x"}, "takes no name"},
      // Named by the command users type (kvctl member add), not the wire's add_learner.
      {{.kind = MemberChangeKind::add_learner, .target = 2, .name = "n4", .peer_endpoint = "tcp://h:4"},
       "member add takes no target"},
      {{.kind = MemberChangeKind::promote, .target = 1, .peer_endpoint = "tcp://h:1"},
       "takes no endpoints"},
      {{.kind = MemberChangeKind::replace, .target = 1, .other = 1}, "needs two members"},
      {{.kind = MemberChangeKind::update, .target = 1}, "needs a peer or a client endpoint"},
      {{.kind = static_cast<MemberChangeKind>(9)}, "unknown member change kind"},
  };
  for (const auto& [change, why] : cases) {
    const std::string got = validate(valid_member(change));
    EXPECT_NE(got.find(why), std::string::npos) << "wanted '" << why << "', got '" << got << "'";
  }
  ClientRequest with_key = valid_member(add_n4());
  with_key.key = "k";
  EXPECT_EQ(validate(with_key), "member takes no key");
  ClientRequest put_with_change{1, 1, 0, OpKind::put, "k", "v"};
  put_with_change.member = add_n4();
  EXPECT_EQ(validate(put_with_change), "put takes no member change (only member does)");
  ClientRequest in_txn{.client_id = 1, .seq = 1, .op = OpKind::txn};
  in_txn.success.push_back(RequestOp{.op = OpKind::member});
  EXPECT_NE(validate(in_txn).find("a txn may not hold a member change"), std::string::npos);
}

TEST(FrontDoorMembership, AMalformedMemberRequestIsAnsweredBadRequest) {
  FrontDoor door(0, false);
  Outbox out;
  MemberChange bad = add_n4();
  bad.name.clear();
  door.on_client_frame("r", encode(valid_member(bad)), out);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].to.actor, Actor::front_door) << "it reached the applier";
  Result<Body> reply = decode(std::get<ToClient>(out[0].body).body);
  ASSERT_TRUE(reply.ok());
  const auto& e = std::get<ErrorReply>(reply.value());
  EXPECT_EQ(e.code, ReplyCode::bad_request);
  EXPECT_NE(e.error.find("member name"), std::string::npos) << e.error;
}

TEST(FrontDoorMembership, AForwardedMemberOpIsCheckedAsARequestIs) {
  const KvOp good = KvOp::from(valid_member(add_n4()));
  Result<KvOp> ok = validate_forwarded_op(encode_op(good));
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok->member_change().value(), add_n4());
  KvOp bad = KvOp::from(valid_member({.kind = MemberChangeKind::remove, .target = 1, .name = "x"}));
  EXPECT_FALSE(validate_forwarded_op(encode_op(bad)).ok());
  KvOp trailing = good;
  trailing.value += '\0';
  EXPECT_FALSE(validate_forwarded_op(encode_op(trailing)).ok());
  KvOp garbage = good;
  garbage.value = "\xdd\xff\xff\xff\xff";
  EXPECT_FALSE(validate_forwarded_op(encode_op(garbage)).ok());
}

}  // namespace
}  // namespace kvpaxos
