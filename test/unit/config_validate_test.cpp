// Each configuration's defaults pass validate(), and a field out of range
// fails it with an error naming the field and what is allowed.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "actors/core/cluster_config.hpp"
#include "actors/paxos/proposer.hpp"
#include "actors/runtime/node.hpp"

namespace kvpaxos {
namespace {

using std::chrono::milliseconds;

NodeConfig three_node_config() {
  NodeConfig c;
  c.members = parse_cluster("n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103").value();
  c.self = 2;
  return c;
}

void expect_refused(const Result<bool>& r, const std::string& words) {
  ASSERT_FALSE(r.ok()) << "expected: " << words;
  EXPECT_NE(r.error().find(words), std::string::npos) << r.error();
}

TEST(ConfigValidate, DefaultsAreValid) {
  EXPECT_TRUE(ProposerOptions{}.validate().ok());
  const Result<bool> node = three_node_config().validate();
  EXPECT_TRUE(node.ok()) << node.error();
}

TEST(ConfigValidate, NodeConfigNamesTheFieldAndItsRange) {
  NodeConfig c = three_node_config();
  c.pipeline = 0;
  expect_refused(c.validate(), "pipeline is 0; allowed 1 to 256");
  c.pipeline = NodeConfig::kMaxPipeline + 1;
  expect_refused(c.validate(), "pipeline is 257; allowed 1 to 256");
  c.pipeline = NodeConfig::kMaxPipeline;
  EXPECT_TRUE(c.validate().ok());

  c.snapshot_every = 0;
  expect_refused(c.validate(), "snapshot_every is 0; allowed 1 to 1000000000");
  c.snapshot_every = NodeConfig::kMaxSnapshotEvery;
  EXPECT_TRUE(c.validate().ok());

  c.self = 3;
  expect_refused(c.validate(), "self is 3; allowed 0 to 2");
  c.self = 0;
  c.hole_timeout = milliseconds(0);
  expect_refused(c.validate(), "hole_timeout is 0 ms; allowed above 0");
}

TEST(ConfigValidate, NodeConfigChecksItsProposerOptions) {
  NodeConfig c = three_node_config();
  c.proposer_options.initial_timeout = milliseconds(2000);
  expect_refused(c.validate(), "proposer initial_timeout is 2000 ms; allowed above 0 and at most "
                               "max_timeout (1000 ms)");
}

TEST(ConfigValidate, ProposerOptionsNamesTheFieldAndItsRange) {
  expect_refused(ProposerOptions{.initial_timeout = milliseconds(0)}.validate(),
                 "proposer initial_timeout is 0 ms; allowed above 0");
  expect_refused(ProposerOptions{.rival_quiet = milliseconds(-1)}.validate(),
                 "proposer rival_quiet is -1 ms; allowed 0 or more");
  EXPECT_TRUE((ProposerOptions{.initial_timeout = milliseconds(1000)}.validate().ok()));
}

TEST(ConfigValidate, MembersFromParseClusterPass) {
  for (const char* spec : {"a=127.0.0.1:1", "n1=127.0.0.1:7101,n2=127.0.0.1:7102"}) {
    Result<std::vector<Member>> members = parse_cluster(spec);
    ASSERT_TRUE(members.ok()) << members.error();
    EXPECT_TRUE(validate_members(members.value()).ok()) << spec;
  }
}

TEST(ConfigValidate, MembersNameTheFieldAndItsRange) {
  expect_refused(validate_members({}), "members has 0 nodes; allowed 1 to 63");
  std::vector<Member> many;
  for (std::size_t i = 0; i <= kMaxClusterSize; ++i) {
    many.push_back({"n" + std::to_string(i), "tcp://127.0.0.1:" + std::to_string(7000 + i)});
  }
  expect_refused(validate_members(many), "members has 64 nodes; allowed 1 to 63");
  expect_refused(validate_members({{"", "tcp://127.0.0.1:1"}}), "members[0].name '': allowed 1 to 64");
  expect_refused(validate_members({{std::string(kMaxNodeNameBytes + 1, 'x'), "tcp://127.0.0.1:1"}}),
                 "allowed 1 to 64");
  expect_refused(validate_members({{"a", "tcp://127.0.0.1:1"}, {"b", "tcp://127.0.0.1:1"}}),
                 "members[0] and members[1] share a name or an endpoint");
  expect_refused(validate_members({{"a", "tcp://127.0.0.1:1"}, {"a", "tcp://127.0.0.1:2"}}),
                 "members[0] and members[1] share a name or an endpoint");
}

}  // namespace
}  // namespace kvpaxos
