// The log line formats (actors/runtime/logger.hpp): text and JSON, every
// level, fields, escaping of whatever a line carries, and where a line says
// it comes from.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/runtime/logger.hpp"

namespace kvpaxos::log {
namespace {

using namespace std::chrono;

// 2026-12-04 18:40:01.996 UTC.
system_clock::time_point at_996() {
  return sys_days{year{2026} / December / 4} + hours{18} + minutes{40} + seconds{1} +
         milliseconds{996};
}

const Source kN1PeerLink{"n1", "peer_link"};

std::string json(Level level, std::string_view message, Fields fields = {},
                 const Source& source = kN1PeerLink) {
  return format_line(Format::json, Entry{at_996(), level, source, message, fields});
}

std::string text(Level level, std::string_view message, Fields fields = {},
                 const Source& source = kN1PeerLink) {
  return format_line(Format::text, Entry{at_996(), level, source, message, fields});
}

// The JSON string a message becomes, for the escaping tests.
std::string json_msg(std::string_view message) {
  const std::string line = json(Level::info, message);
  const std::string start = "\"msg\":";
  const std::size_t from = line.find(start) + start.size();
  return line.substr(from, line.size() - from - 2);  // without "}\n"
}

TEST(LogFormat, JsonLineHasTimeLevelNodeActorMsgThenFields) {
  EXPECT_EQ(json(Level::warn, "the CURVE handshake failed",
                 {{"peer", "n2"}, {"endpoint", "tcp://10.0.0.2:7101"}, {"epoch", 7}}),
            R"({"time":"2026-12-04T18:40:01.996Z","level":"warn","node":"n1",)"
            R"("actor":"peer_link","msg":"the CURVE handshake failed","peer":"n2",)"
            R"("endpoint":"tcp://10.0.0.2:7101","epoch":7})"
            "\n");
}

TEST(LogFormat, TextLineReadsAsBeforeWithActorAndFieldsAppended) {
  EXPECT_EQ(text(Level::info, "connecting to a member",
                 {{"peer", "n2"}, {"endpoint", "tcp://10.0.0.2:7101"}}),
            "18:40:01.996 INFO  n1 peer_link: connecting to a member peer=n2 "
            "endpoint=tcp://10.0.0.2:7101\n");
}

TEST(LogFormat, EveryLevelHasItsName) {
  const std::vector<std::pair<Level, std::string>> levels = {
      {Level::error, "error"}, {Level::warn, "warn"}, {Level::info, "info"}, {Level::debug, "debug"}};
  const std::vector<std::string> text_names = {"ERROR", "WARN ", "INFO ", "DEBUG"};
  for (std::size_t i = 0; i < levels.size(); ++i) {
    const auto& [level, name] = levels[i];
    EXPECT_NE(json(level, "m").find(R"("level":")" + name + R"(")"), std::string::npos) << name;
    EXPECT_EQ(text(level, "m"), "18:40:01.996 " + text_names[i] + " n1 peer_link: m\n") << name;
  }
}

TEST(LogFormat, NumbersAreJsonNumbersAndStringsAreStrings) {
  const std::string line = json(Level::info, "m",
                                {{"instance", std::uint64_t{18446744073709551615U}},
                                 {"delta", -3},
                                 {"key_file", std::string("/etc/kvpaxos/n1.key")}});
  EXPECT_NE(line.find(R"("instance":18446744073709551615,"delta":-3,)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("key_file":"/etc/kvpaxos/n1.key"})"), std::string::npos) << line;
}

TEST(LogFormat, JsonEscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json_msg("say \"hi\" \\ now"), R"("say \"hi\" \\ now")");
  EXPECT_EQ(json_msg("two\nlines\r\tand \x01 \x1f \x7f"),
            R"("two\u000alines\u000d\u0009and \u0001 \u001f \u007f")");
  EXPECT_EQ(json_msg(std::string_view("nul\0byte", 8)), R"("nul\u0000byte")");
}

TEST(LogFormat, FieldKeysAndValuesAreEscapedToo) {
  const std::string line = json(Level::info, "m", {{"peer", "n2\"}\n{\"forged\":1"}});
  EXPECT_NE(line.find(R"("peer":"n2\"}\u000a{\"forged\":1"})"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
}

TEST(LogFormat, InvalidUtf8BecomesReplacementCharacters) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(json_msg("a\xFFz"), "\"a" + fffd + "z\"");            // never a lead byte
  EXPECT_EQ(json_msg("a\x80z"), "\"a" + fffd + "z\"");            // a lone continuation
  EXPECT_EQ(json_msg("a\xE2\x82z"), "\"a" + fffd + "z\"");        // cut short: one U+FFFD
  EXPECT_EQ(json_msg("a\xE2\x82"), "\"a" + fffd + "\"");          // cut short at the end
  EXPECT_EQ(json_msg("\xC0\xAF"), "\"" + fffd + fffd + "\"");     // overlong '/'
  EXPECT_EQ(json_msg("\xED\xA0\x80"), "\"" + fffd + fffd + fffd + "\"");  // a surrogate
  EXPECT_EQ(json_msg("\xF4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // > U+10FFFF
}

TEST(LogFormat, ValidUtf8IsKept) {
  EXPECT_EQ(json_msg("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
}

TEST(LogFormat, TextEscapesControlCharactersAndBadUtf8SoALineStaysOneLine) {
  EXPECT_EQ(text(Level::warn, "forged\n18:40:02.000 INFO  n2 fake \xFF"),
            "18:40:01.996 WARN  n1 peer_link: forged\\u000a18:40:02.000 INFO  n2 fake "
            "\xEF\xBF\xBD\n");
}

TEST(LogFormat, TextQuotesValuesThatAreNotOneWord) {
  EXPECT_EQ(text(Level::info, "m",
                 {{"error", "Address in use"}, {"empty", ""}, {"eq", "a=b"}, {"n", 5}}),
            "18:40:01.996 INFO  n1 peer_link: m error=\"Address in use\" empty=\"\" "
            "eq=\"a=b\" n=5\n");
}

TEST(LogFormat, ATextLineWithoutANodeSaysSo) {
  EXPECT_EQ(text(Level::info, "m", {}, Source{"", "main"}), "18:40:01.996 INFO  - main: m\n");
}

TEST(LogFormat, ParsesItsNamesAndRefusesOthers) {
  Format f = Format::text;
  EXPECT_TRUE(parse_format("json", f));
  EXPECT_EQ(f, Format::json);
  EXPECT_TRUE(parse_format("text", f));
  EXPECT_EQ(f, Format::text);
  EXPECT_FALSE(parse_format("JSON", f));
  EXPECT_FALSE(parse_format("", f));
  EXPECT_EQ(f, Format::text);
}

TEST(LogSource, ThreadsWithoutASourceSpeakForTheProcessNodeAsMain) {
  set_process_node("n7");
  std::thread([] {
    const Source s = thread_source();
    EXPECT_EQ(s.node, "n7");
    EXPECT_EQ(s.actor, "main");
  }).join();
  set_process_node("");
}

TEST(LogSource, AThreadSourceLastsItsScopeAndRestoresTheOneBefore) {
  set_process_node("n7");
  {
    const ThreadSource outer({"n1", "peer_link"});
    EXPECT_EQ(thread_source().actor, "peer_link");
    {
      const ThreadSource inner({"", "zap"});
      EXPECT_EQ(thread_source().node, "n7");  // empty: the process's node
      EXPECT_EQ(thread_source().actor, "zap");
    }
    EXPECT_EQ(thread_source().node, "n1");
    EXPECT_EQ(thread_source().actor, "peer_link");
  }
  EXPECT_EQ(thread_source().actor, "main");
  set_process_node("");
}

// What write() sends to stderr while `body` runs.
template <typename Body>
std::vector<std::string> stderr_lines(Body body) {
  testing::internal::CaptureStderr();
  body();
  std::istringstream in(testing::internal::GetCapturedStderr());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class LogWrite : public testing::Test {
 protected:
  void SetUp() override {
    level_ = level();
    format_ = format();
  }
  void TearDown() override {
    set_level(level_);
    set_format(format_);
  }

 private:
  Level level_{};
  Format format_{};
};

TEST_F(LogWrite, WritesOnlyTheEnabledLevelsInTheChosenFormat) {
  set_level(Level::info);
  set_format(Format::json);
  const std::vector<std::string> lines = stderr_lines([] {
    const ThreadSource source({"n1", "applier"});
    info("kept", {{"instance", 3}});
    debug("dropped");
    error("kept too");
  });
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_NE(lines[0].find(R"("level":"info","node":"n1","actor":"applier","msg":"kept",)"
                          R"("instance":3})"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find(R"("msg":"kept too"})"), std::string::npos) << lines[1];
}

TEST_F(LogWrite, LinesOfConcurrentThreadsNeverInterleave) {
  set_level(Level::info);
  set_format(Format::json);
  const std::string long_value(3000, 'x');  // many lines near the pipe's atomic size
  constexpr int kThreads = 8;
  constexpr int kLines = 200;
  const std::vector<std::string> lines = stderr_lines([&] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&long_value, t] {
        const ThreadSource source({"n" + std::to_string(t), "proposer"});
        for (int i = 0; i < kLines; ++i) info("line", {{"i", i}, {"pad", long_value}});
      });
    }
    for (std::thread& th : threads) th.join();
  });
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kLines));
  for (const std::string& line : lines) {
    ASSERT_EQ(line.rfind("{\"time\":", 0), 0U) << line.substr(0, 80);
    ASSERT_EQ(line.find("{\"time\":", 1), std::string::npos) << line.substr(0, 80);
    ASSERT_TRUE(line.ends_with(long_value + "\"}")) << line.substr(0, 80);
  }
}

}  // namespace
}  // namespace kvpaxos::log
