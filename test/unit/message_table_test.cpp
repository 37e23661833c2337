// The message table (messages.hpp, Messages) against the wire as it is: every
// struct's tag number is pinned here, apart from the table, so swapping two
// tags, renumbering one or leaving a struct out fails this test, and the fuzz
// corpus (test/fuzz/corpus) replays the same bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>

#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

template <typename T, std::uint8_t Number>
struct Pin {
  using type = T;
  static constexpr std::uint8_t number = Number;
};

template <typename... Pins>
struct WireTags {
  static constexpr std::size_t size = sizeof...(Pins);
  // Calls check(Body{T{}}, number) for every pinned struct.
  template <typename Check>
  static void each(Check&& check) {
    (check(Body{typename Pins::type{}}, Pins::number), ...);
  }
};

using Pinned = WireTags<
    Pin<Prepare, 1>, Pin<Promise, 2>, Pin<Accept, 3>, Pin<Accepted, 4>, Pin<Decided, 5>,
    Pin<CatchUpRequest, 6>, Pin<Heartbeat, 7>, Pin<SnapshotRequest, 8>, Pin<SnapshotChunk, 9>,
    Pin<JoinQuery, 10>, Pin<JoinInfo, 11>, Pin<ForwardOps, 12>, Pin<PrepareFrom, 13>,
    Pin<PromiseFrom, 14>, Pin<Propose, 20>, Pin<Learned, 21>, Pin<Apply, 22>,
    Pin<LocalDone, 23>, Pin<ForgetBelow, 24>, Pin<LocalProgress, 25>, Pin<PeerProgress, 26>,
    Pin<LearnerProgress, 27>, Pin<InstanceQuery, 28>, Pin<InstanceReport, 29>,
    Pin<FromClient, 30>, Pin<StatusFromClient, 31>, Pin<FaultFromClient, 32>,
    Pin<ToClient, 33>, Pin<SnapshotNeeded, 34>, Pin<SnapshotInstalled, 35>,
    Pin<SnapshotSaved, 36>, Pin<ClientRequest, 100>, Pin<ClientReply, 101>,
    Pin<StatusRequest, 102>, Pin<StatusReply, 103>, Pin<FaultRequest, 104>,
    Pin<FaultReply, 105>, Pin<ErrorReply, 106>, Pin<WatchRequest, 107>, Pin<WatchResponse, 108>,
    Pin<WatchFromClient, 37>,
    Pin<ConfigUpdate, 38>, Pin<MemberQuery, 15>, Pin<MemberInfo, 16>, Pin<Removed, 17>,
    Pin<StepDown, 18>,
    Pin<SnapshotSaveRequest, 109>, Pin<SnapshotSaveReply, 110>, Pin<SnapshotSaveFromClient, 39>,
    Pin<AcceptedQuery, 40>, Pin<AcceptedBound, 41>>;

TEST(MessageTable, EveryMessageIsPinned) {
  EXPECT_EQ(Pinned::size, std::variant_size_v<Body>);
  std::set<std::size_t> alternatives;
  Pinned::each([&](const Body& body, std::uint8_t) { alternatives.insert(body.index()); });
  EXPECT_EQ(alternatives.size(), std::variant_size_v<Body>);
}

// [tag, version, fields]: a fixarray of 3, then the tag (a positive fixint,
// every tag being below 128).
TEST(MessageTable, EveryMessageGoesOnTheWireWithItsPinnedTag) {
  Pinned::each([](const Body& body, std::uint8_t number) {
    const std::string bytes = encode(body);
    const std::string name = to_string(type_of(body));
    ASSERT_GE(bytes.size(), 2u) << name;
    EXPECT_EQ(static_cast<std::uint8_t>(bytes[0]), 0x93) << name;
    EXPECT_EQ(static_cast<std::uint8_t>(bytes[1]), number) << name;
    EXPECT_EQ(static_cast<std::uint8_t>(type_of(body)), number) << name;
  });
}

TEST(MessageTable, EveryTagDecodesToItsOwnStruct) {
  Pinned::each([](const Body& body, std::uint8_t) {
    Result<Body> decoded = decode(encode(body));
    ASSERT_TRUE(decoded.ok()) << to_string(type_of(body)) << ": " << decoded.error();
    EXPECT_EQ(decoded.value().index(), body.index()) << to_string(type_of(body));
  });
}

TEST(MessageTable, EveryTagHasAName) {
  std::set<std::string> names;
  for (MessageType t : Messages::tags) {
    EXPECT_STRNE(to_string(t), "Unknown") << static_cast<int>(t);
    names.insert(to_string(t));
  }
  EXPECT_EQ(names.size(), Messages::tags.size());
}

}  // namespace
}  // namespace kvpaxos
