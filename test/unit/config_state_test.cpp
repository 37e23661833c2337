// The configuration as replicated state (actors/kv/config_state.hpp): every
// change and every refusal, the compare-and-swap on the epoch, the window
// and ids that are never handed out twice.
#include <gtest/gtest.h>

#include "actors/kv/config_state.hpp"

namespace kvpaxos {
namespace {

constexpr std::uint64_t kAlpha = 10;

ConfigState three_voters() {
  return ConfigState(bootstrap_members({"n1", "n2", "n3"}, {"tcp://h:1", "tcp://h:2", "tcp://h:3"}),
                     kAlpha);
}

MemberChange add(std::string name, std::string peer, std::uint64_t epoch) {
  return MemberChange{.kind = MemberChangeKind::add_learner, .expected_epoch = epoch,
                      .name = std::move(name), .peer_endpoint = std::move(peer)};
}

MemberChange on(MemberChangeKind kind, NodeId target, std::uint64_t epoch, NodeId other = 0) {
  return MemberChange{.kind = kind, .expected_epoch = epoch, .target = target, .other = other};
}

// Applies `change` at `instance` and expects it refused with `why` in the
// error, the state untouched (but for the trim at `instance`, which any op
// there does).
void expect_refused(ConfigState& s, const MemberChange& change, InstanceId instance,
                    const std::string& why) {
  s.trim(instance);
  const ConfigStateRecord before = s.record();
  const MemberResult r = s.apply(change, instance);
  EXPECT_NE(r.error.find(why), std::string::npos) << "error: " << r.error;
  EXPECT_EQ(s.record(), before) << "a refused change changed the state";
  EXPECT_EQ(r.epoch, s.epoch());
  EXPECT_EQ(s.check_invariants(), "");
}

TEST(ConfigState, StartsAsTheBootstrapMembersAllVotersAtEpochZero) {
  const ConfigState s = three_voters();
  EXPECT_EQ(s.epoch(), 0u);
  EXPECT_EQ(s.alpha(), kAlpha);
  EXPECT_EQ(s.next_member_id(), 3u);
  EXPECT_EQ(s.latest().voters(), (std::vector<NodeId>{0, 1, 2}));
  EXPECT_EQ(s.latest().find(1)->peer_endpoint, "tcp://h:2");
  const ConfigHistory h = s.history(5);
  EXPECT_EQ(h.known_below, 5 + kAlpha);
  EXPECT_EQ(h.entries.size(), 1u);
  EXPECT_EQ(s.check_invariants(), "");
}

TEST(ConfigState, AddLearnerAllocatesAnIdAndGovernsFromInstancePlusAlpha) {
  ConfigState s = three_voters();
  const MemberResult r = s.apply(add("n4", "tcp://h:4", 0), 100);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.id, 3u);
  EXPECT_EQ(r.epoch, 1u);
  EXPECT_EQ(r.effective_from, 100 + kAlpha);
  EXPECT_EQ(r.pending_from, 100 + kAlpha);
  EXPECT_EQ(r.alpha, kAlpha);
  EXPECT_EQ(r.config, s.latest());
  EXPECT_EQ(s.next_member_id(), 4u);
  EXPECT_EQ(s.latest().find(3)->role, MemberRole::learner);
  // The old configuration governs the window, the new one after it.
  EXPECT_FALSE(s.at(100 + kAlpha - 1).is_member(3));
  EXPECT_TRUE(s.at(100 + kAlpha).is_member(3));
  EXPECT_EQ(s.pending_from(101), 100 + kAlpha);
  s.trim(100 + kAlpha);
  EXPECT_EQ(s.history(100 + kAlpha).entries.size(), 1u) << "the old entry governs nothing now";
  EXPECT_EQ(s.pending_from(100 + kAlpha), 0u);
  EXPECT_EQ(s.check_invariants(), "");
}

// The applier announces a change coming into force while the instance
// before it is still being applied (before the trim): the history it
// announces must already leave the old configuration out, or a removed
// member stays a peer of every node (found by a real removal, where the
// removed node was never told).
TEST(ConfigState, TheHistoryOfAnInstanceLeavesOutWhatNoLongerGovernsBeforeTheTrim) {
  ConfigState s = three_voters();
  ASSERT_EQ(s.apply(on(MemberChangeKind::remove, 0, 0), 100).error, "");
  EXPECT_EQ(s.history(100 + kAlpha - 1).entries.size(), 2u);
  const ConfigHistory h = s.history(100 + kAlpha);
  ASSERT_EQ(h.entries.size(), 1u);
  EXPECT_FALSE(h.is_member(0));
  EXPECT_EQ(s.check_invariants(), "");
}

TEST(ConfigState, PromoteRemoveReplaceAndUpdateEachMoveTheEpochByOne) {
  ConfigState s = three_voters();
  InstanceId at = 0;
  auto next = [&] { return at += kAlpha; };  // each change once the last is in force
  ASSERT_EQ(s.apply(add("n4", "tcp://h:4", 0), next()).error, "");
  MemberChange promote = on(MemberChangeKind::promote, 3, 1);
  promote.incarnation = 77;
  ASSERT_EQ(s.apply(promote, next()).error, "");
  EXPECT_TRUE(s.latest().is_voter(3));
  EXPECT_EQ(s.latest().find(3)->incarnation, 77u) << "the promoted learner's incarnation gates its vote";
  ASSERT_EQ(s.apply(on(MemberChangeKind::remove, 0, 2), next()).error, "");
  EXPECT_FALSE(s.latest().is_member(0));
  ASSERT_EQ(s.apply(add("n5", "tcp://h:5", 3), next()).error, "");
  const MemberResult replaced = s.apply(on(MemberChangeKind::replace, 1, 4, 4), next());
  ASSERT_EQ(replaced.error, "");
  EXPECT_EQ(s.latest().voters(), (std::vector<NodeId>{2, 3, 4}));
  MemberChange update = on(MemberChangeKind::update, 2, 5);
  update.client_endpoint = "tcp://h:9203";
  ASSERT_EQ(s.apply(update, next()).error, "");
  EXPECT_EQ(s.latest().find(2)->client_endpoint, "tcp://h:9203");
  EXPECT_EQ(s.latest().find(2)->peer_endpoint, "tcp://h:3") << "an empty field is left as it was";
  EXPECT_EQ(s.epoch(), 6u);
  EXPECT_EQ(s.check_invariants(), "");
}

// Keys follow the configuration: a member's public key is in its entry, set
// by add and changed by update; two members never share one.
TEST(ConfigState, AKeyComesWithAddIsChangedByUpdateAndIsNeverShared) {
  const std::string key_a(40, 'a');
  const std::string key_b(40, 'b');
  ConfigState s = three_voters();
  MemberChange with_key = add("n4", "tcp://h:4", 0);
  with_key.peer_key = key_a;
  ASSERT_EQ(s.apply(with_key, 100).error, "");
  EXPECT_EQ(s.latest().find(3)->peer_key, key_a);
  EXPECT_EQ(s.history(100).entries.front().config.find(3), nullptr)
      << "the key, like the member, governs from the change's effective point only";

  MemberChange same_key = add("n5", "tcp://h:5", 1);
  same_key.peer_key = key_a;
  expect_refused(s, same_key, 130, "each member needs a key pair of its own");

  MemberChange rekey = on(MemberChangeKind::update, 3, 1);
  rekey.peer_key = key_b;
  ASSERT_EQ(s.apply(rekey, 140).error, "");
  EXPECT_EQ(s.latest().find(3)->peer_key, key_b);
  EXPECT_EQ(s.latest().find(3)->peer_endpoint, "tcp://h:4") << "an update of the key alone";
  EXPECT_EQ(s.check_invariants(), "");
}

TEST(ConfigState, ListChangesNothingAndReportsThePendingChange) {
  ConfigState s = three_voters();
  ASSERT_EQ(s.apply(add("n4", "tcp://h:4", 0), 20).error, "");
  const ConfigStateRecord before = s.record();
  const MemberResult r = s.apply(MemberChange{.kind = MemberChangeKind::list}, 25);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.epoch, 1u);
  EXPECT_EQ(r.pending_from, 20 + kAlpha);
  EXPECT_EQ(r.config.members.size(), 4u);
  EXPECT_EQ(s.record(), before);
}

TEST(ConfigState, AStaleEpochIsRefusedWithWhatToDo) {
  ConfigState s = three_voters();
  ASSERT_EQ(s.apply(add("n4", "tcp://h:4", 0), 20).error, "");
  // Two operators read epoch 0; the second one's change loses the race.
  expect_refused(s, add("n5", "tcp://h:5", 0), 40,
                 "epoch 0 is not the current epoch 1; read the configuration again (kvctl "
                 "member list) and retry");
}

TEST(ConfigState, AChangeWhilePendingIsRefused) {
  ConfigState s = three_voters();
  ASSERT_EQ(s.apply(add("n4", "tcp://h:4", 0), 20).error, "");
  expect_refused(s, on(MemberChangeKind::promote, 3, 1), 20 + kAlpha - 1, "still pending");
  EXPECT_EQ(s.apply(on(MemberChangeKind::promote, 3, 1), 20 + kAlpha).error, "")
      << "in force at effective_from";
}

TEST(ConfigState, RefusesDuplicateNamesAndEndpoints) {
  ConfigState s = three_voters();
  expect_refused(s, add("n2", "tcp://h:4", 0), 1, "the name n2 is taken by member id 1");
  expect_refused(s, add("n4", "tcp://h:2", 0), 1, "peer endpoint tcp://h:2 is n2 (id 1)'s");
  MemberChange update = on(MemberChangeKind::update, 0, 0);
  update.peer_endpoint = "tcp://h:3";
  expect_refused(s, update, 1, "peer endpoint tcp://h:3");
}

TEST(ConfigState, RefusesUnknownTargetsAndWrongRoles) {
  ConfigState s = three_voters();
  expect_refused(s, on(MemberChangeKind::remove, 9, 0), 1, "no member has id 9");
  expect_refused(s, on(MemberChangeKind::promote, 1, 0), 1, "n2 (id 1) is a voter already");
  ASSERT_EQ(s.apply(add("n4", "tcp://h:4", 0), 1).error, "");
  const InstanceId later = 1 + kAlpha;
  expect_refused(s, on(MemberChangeKind::replace, 3, 1, 0), later, "n4 (id 3) is a learner");
  expect_refused(s, on(MemberChangeKind::replace, 0, 1, 2), later, "id 2 is a voter");
  expect_refused(s, on(MemberChangeKind::replace, 0, 1, 8), later, "id 8 is no member");
}

TEST(ConfigState, RefusesToRemoveTheLastVoter) {
  ConfigState s(bootstrap_members({"n1"}, {"tcp://h:1"}), kAlpha);
  expect_refused(s, on(MemberChangeKind::remove, 0, 0), 3, "no voter");
}

TEST(ConfigState, RefusesAThirdLearner) {
  ConfigState s = three_voters();
  ASSERT_EQ(s.apply(add("n4", "tcp://h:4", 0), 0).error, "");
  ASSERT_EQ(s.apply(add("n5", "tcp://h:5", 1), kAlpha).error, "");
  expect_refused(s, add("n6", "tcp://h:6", 2), 2 * kAlpha, "at most 2 learners");
}

TEST(ConfigState, RefusesASixtyFourthVoter) {
  std::vector<std::string> names;
  std::vector<std::string> peers;
  for (int i = 0; i < 63; ++i) {
    names.push_back("n" + std::to_string(i));
    peers.push_back("tcp://h:" + std::to_string(1000 + i));
  }
  ConfigState s(bootstrap_members(names, peers), kAlpha);
  ASSERT_EQ(s.apply(add("extra", "tcp://h:9", 0), 0).error, "");
  expect_refused(s, on(MemberChangeKind::promote, 63, 1), kAlpha, "at most 63 voters");
}

// A removed member's id is never handed out again: its old votes (ballots,
// accepted values in acceptor logs) must never count for a newcomer.
TEST(ConfigState, IdsAreNeverReusedAcrossAddAndRemove) {
  ConfigState s = three_voters();
  const MemberResult first = s.apply(add("n4", "tcp://h:4", 0), 0);
  ASSERT_EQ(first.error, "");
  ASSERT_EQ(s.apply(on(MemberChangeKind::remove, first.id, 1), kAlpha).error, "");
  const MemberResult again = s.apply(add("n4", "tcp://h:4", 2), 2 * kAlpha);
  ASSERT_EQ(again.error, "") << "the name and the endpoint are free again";
  EXPECT_NE(again.id, first.id);
  EXPECT_EQ(again.id, 4u);
  EXPECT_EQ(s.next_member_id(), 5u);
}

TEST(ConfigState, TheWindowlessBugGovernsFromTheNextInstance) {
  ConfigState s = three_voters();
  s.set_bug_no_window(true);
  const MemberResult r = s.apply(add("n4", "tcp://h:4", 0), 30);
  EXPECT_EQ(r.effective_from, 31u);
  EXPECT_TRUE(s.at(31).is_member(3));
}

// The planted bug the simulator must catch (reused_id): the id comes from
// the member list, so the removed n4's id goes to the new n4. ConfigState's
// own check sees it while the removed list still names n4.
TEST(ConfigState, TheReusedIdBugHandsARemovedMembersIdOut) {
  ConfigState s = three_voters();
  s.set_bug_reused_id(true);
  const MemberResult first = s.apply(add("n4", "tcp://h:4", 0), 0);
  ASSERT_EQ(first.error, "");
  ASSERT_EQ(s.apply(on(MemberChangeKind::remove, first.id, 1), kAlpha).error, "");
  const MemberResult again = s.apply(add("n4", "tcp://h:4", 2), 2 * kAlpha);
  ASSERT_EQ(again.error, "");
  EXPECT_EQ(again.id, first.id);
  EXPECT_NE(s.check_invariants().find("removed member 3 is a member"), std::string::npos)
      << s.check_invariants();
}

// Removed members outlive the entries that show their removal: a node that
// restarts from a later snapshot can still tell one that calls.
TEST(ConfigState, RemoveAndReplaceRememberWhoWentWithTheirKeys) {
  ConfigState s = three_voters();
  MemberChange keyed = add("n4", "tcp://h:4", 0);
  keyed.peer_key = "n4-key";
  ASSERT_EQ(s.apply(keyed, 0).error, "");
  ASSERT_EQ(s.apply(on(MemberChangeKind::replace, 0, 1, 3), kAlpha).error, "");
  ASSERT_EQ(s.apply(on(MemberChangeKind::remove, 3, 2), 2 * kAlpha).error, "");
  const std::vector<RemovedMember> expected = {RemovedMember{0, "n1", 2, 2 * kAlpha, ""},
                                               RemovedMember{3, "n4", 3, 3 * kAlpha, "n4-key"}};
  EXPECT_EQ(s.record().removed, expected);
  s.trim(10 * kAlpha);
  ConfigHistory h = s.history(10 * kAlpha);
  ASSERT_EQ(h.entries.size(), 1u) << "the entries before the removals are gone";
  EXPECT_EQ(h.removed, expected);
  EXPECT_EQ(s.check_invariants(), "");
  Result<ConfigState> back = ConfigState::from_record(s.record());
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->record().removed, expected);
}

TEST(ConfigState, KeepsTheLatestRemovedMembersOnly) {
  ConfigState s = three_voters();
  InstanceId at = 0;
  for (std::size_t k = 0; k < kMaxRemovedKept + 5; ++k) {
    const MemberResult added = s.apply(add("l", "tcp://h:9", s.epoch()), at);
    ASSERT_EQ(added.error, "");
    at += kAlpha;
    ASSERT_EQ(s.apply(on(MemberChangeKind::remove, added.id, s.epoch()), at).error, "");
    at += kAlpha;
  }
  const std::vector<RemovedMember> removed = s.record().removed;
  ASSERT_EQ(removed.size(), kMaxRemovedKept);
  EXPECT_EQ(removed.front().id, 3u + 5u) << "the oldest go first";
  EXPECT_EQ(removed.back().id, 3u + kMaxRemovedKept + 4u);
  EXPECT_EQ(s.check_invariants(), "");
}

// A ConfigStateRecord as it was before the removed list.
struct OlderRecord {
  std::uint64_t alpha = 0;
  NodeId next_member_id = 0;
  std::vector<ConfigAt> entries;
  MSGPACK_DEFINE(alpha, next_member_id, entries)
};

// A format 3 record written before the removed list (three fields) reads
// as one without removed members; a removed member that is a member, or an
// id never handed out, is refused.
TEST(ConfigState, AnOlderRecordReadsAndABrokenRemovedListIsRefused) {
  ConfigState s = three_voters();
  ASSERT_EQ(s.apply(on(MemberChangeKind::remove, 2, 0), 0).error, "");
  const ConfigStateRecord now = s.record();
  msgpack::sbuffer buf;
  msgpack::pack(buf, OlderRecord{now.alpha, now.next_member_id, now.entries});
  const msgpack::object_handle oh = msgpack::unpack(buf.data(), buf.size());
  const ConfigStateRecord older = oh.get().as<ConfigStateRecord>();
  EXPECT_TRUE(older.removed.empty());
  EXPECT_EQ(older.entries, now.entries);
  EXPECT_TRUE(ConfigState::from_record(older).ok());

  ConfigStateRecord member = now;
  member.removed.push_back(RemovedMember{1, "n2", 1, kAlpha, ""});
  Result<ConfigState> r = ConfigState::from_record(member);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("removed member 1 is a member"), std::string::npos) << r.error();
  ConfigStateRecord unknown = now;
  unknown.removed.push_back(RemovedMember{9, "n10", 1, kAlpha, ""});
  EXPECT_FALSE(ConfigState::from_record(unknown).ok());
  ConfigStateRecord twice = now;
  twice.removed.push_back(twice.removed.front());
  EXPECT_FALSE(ConfigState::from_record(twice).ok());
}

TEST(ConfigState, ARecordRoundTripsAndABrokenOneIsRefused) {
  ConfigState s = three_voters();
  ASSERT_EQ(s.apply(add("n4", "tcp://h:4", 0), 7).error, "");
  Result<ConfigState> back = ConfigState::from_record(s.record());
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->record(), s.record());
  EXPECT_EQ(back->pending_from(8), 7 + kAlpha);

  ConfigStateRecord reused = s.record();
  reused.next_member_id = 3;  // below the learner's id 3
  EXPECT_FALSE(ConfigState::from_record(reused).ok());
  ConfigStateRecord no_voter = s.record();
  for (MemberEntry& m : no_voter.entries.back().config.members) m.role = MemberRole::learner;
  EXPECT_FALSE(ConfigState::from_record(no_voter).ok());
  ConfigStateRecord no_alpha = s.record();
  no_alpha.alpha = 0;
  EXPECT_FALSE(ConfigState::from_record(no_alpha).ok());
  ConfigStateRecord skipped = s.record();
  skipped.entries.back().config.epoch = 5;
  EXPECT_FALSE(ConfigState::from_record(skipped).ok());
}

}  // namespace
}  // namespace kvpaxos
