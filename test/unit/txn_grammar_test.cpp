// kvctl txn's grammar (cmd/txn_grammar.hpp): text in, request values out,
// no cluster.
#include "cmd/txn_grammar.hpp"

#include <gtest/gtest.h>

#include "messages/codec.hpp"

namespace kvpaxos {
namespace {

TxnSpec parsed(std::string_view text) {
  TxnParse p = parse_txn(text);
  if (const TxnSyntaxError* e = std::get_if<TxnSyntaxError>(&p)) {
    ADD_FAILURE() << "unexpected syntax error: " << e->to_string();
    return {};
  }
  return std::get<TxnSpec>(p);
}

TxnSyntaxError syntax_error(std::string_view text) {
  TxnParse p = parse_txn(text);
  if (const TxnSyntaxError* e = std::get_if<TxnSyntaxError>(&p)) return *e;
  ADD_FAILURE() << "parsed, but a syntax error was expected in: " << text;
  return {};
}

Compare only_compare(std::string_view line) {
  const TxnSpec t = parsed(std::string(line) + "\n");
  EXPECT_EQ(t.compares.size(), 1u);
  return t.compares.empty() ? Compare{} : t.compares.front();
}

RequestOp only_success(std::string_view line) {
  const TxnSpec t = parsed("\n" + std::string(line) + "\n");
  EXPECT_EQ(t.success.size(), 1u);
  return t.success.empty() ? RequestOp{} : t.success.front();
}

TEST(TxnGrammar, EachCompareTargetAndItsAlias) {
  struct Case {
    const char* line;
    CompareTarget target;
  };
  for (const Case& c : {Case{R"(version("k") = "0")", CompareTarget::version},
                        Case{R"(ver("k") = "0")", CompareTarget::version},
                        Case{R"(create("k") = "0")", CompareTarget::create_revision},
                        Case{R"(c("k") = "0")", CompareTarget::create_revision},
                        Case{R"(mod("k") = "0")", CompareTarget::mod_revision},
                        Case{R"(m("k") = "0")", CompareTarget::mod_revision},
                        Case{R"(value("k") = "0")", CompareTarget::value},
                        Case{R"(val("k") = "0")", CompareTarget::value}}) {
    const Compare got = only_compare(c.line);
    EXPECT_EQ(got.target, c.target) << c.line;
    EXPECT_EQ(got.key, "k") << c.line;
  }
}

TEST(TxnGrammar, NumberTargetsCarryTheNumberAndValueTheBytes) {
  const Compare mod = only_compare(R"(mod("k") < "42")");
  EXPECT_EQ(mod.number, 42u);
  EXPECT_EQ(mod.value, "");
  const Compare value = only_compare(R"(value("k") = "42")");
  EXPECT_EQ(value.value, "42");
  EXPECT_EQ(value.number, 0u);
  EXPECT_EQ(only_compare(R"(create("k") > "18446744073709551615")").number,
            18446744073709551615u);
}

TEST(TxnGrammar, EachOperator) {
  EXPECT_EQ(only_compare(R"(version("k") = "1")").op, CompareOp::equal);
  EXPECT_EQ(only_compare(R"(version("k") != "1")").op, CompareOp::not_equal);
  EXPECT_EQ(only_compare(R"(version("k") < "1")").op, CompareOp::less);
  EXPECT_EQ(only_compare(R"(version("k") > "1")").op, CompareOp::greater);
}

TEST(TxnGrammar, SpacesAroundTheCompareAreOptional) {
  const Compare c = only_compare(R"(  mod ( "k" )>"3"  )");
  EXPECT_EQ(c.target, CompareTarget::mod_revision);
  EXPECT_EQ(c.op, CompareOp::greater);
  EXPECT_EQ(c.number, 3u);
}

TEST(TxnGrammar, DoubleQuotesTakeGoEscapes) {
  const Compare c = only_compare(R"(value("a \"b\" \\ c") = "x\ty\nz\x00\xff\u00e9")");
  EXPECT_EQ(c.key, "a \"b\" \\ c");
  EXPECT_EQ(c.value, std::string("x\ty\nz\0\xff\xc3\xa9", 9));
}

TEST(TxnGrammar, OpWordsAreBareDoubleQuotedOrSingleQuoted) {
  const RequestOp op = only_success(R"(put "k with space" 'raw \n "v"')");
  EXPECT_EQ(op.op, OpKind::put);
  EXPECT_EQ(op.key, "k with space");
  EXPECT_EQ(op.value, "raw \\n \"v\"");
  const RequestOp escaped = only_success(R"(append k "line\n")");
  EXPECT_EQ(escaped.op, OpKind::append);
  EXPECT_EQ(escaped.value, "line\n");
}

TEST(TxnGrammar, GetIsARangeOfOneKeyUnlessFlagged) {
  const RequestOp one = only_success("get k");
  EXPECT_EQ(one.op, OpKind::range);
  EXPECT_EQ(one.key, "k");
  EXPECT_EQ(one.range_end, "");
  EXPECT_EQ(one.limit, 0u);
  EXPECT_EQ(one.flags, 0);

  const RequestOp prefix = only_success("get ab --prefix --limit 5 --keys-only");
  EXPECT_EQ(prefix.range_end, "ac");
  EXPECT_EQ(prefix.limit, 5u);
  EXPECT_EQ(prefix.flags, kRangeKeysOnly);
  EXPECT_EQ(only_success("get a --from-key --count-only").range_end, std::string("\0", 1));
  EXPECT_EQ(only_success("get a --count-only").flags, kRangeCountOnly);
  EXPECT_EQ(only_success("get a --to c").range_end, "c");
}

TEST(TxnGrammar, DelIsADeleteRange) {
  const RequestOp one = only_success("del k");
  EXPECT_EQ(one.op, OpKind::delete_range);
  EXPECT_EQ(one.range_end, "");
  EXPECT_EQ(only_success("del k --prefix").range_end, "l");
  EXPECT_EQ(only_success("del k --from-key").range_end, std::string("\0", 1));
  EXPECT_EQ(only_success("del a --to b").range_end, "b");
}

TEST(TxnGrammar, BlankLinesSeparateComparesSuccessAndFailure) {
  const TxnSpec t = parsed(
      "version(\"a\") = \"0\"\n"
      "value(\"b\") = \"x\"\n"
      "\n"
      "put a 1\n"
      "get b\n"
      "\n"
      "del a\n");
  ASSERT_EQ(t.compares.size(), 2u);
  EXPECT_EQ(t.compares[1].key, "b");
  ASSERT_EQ(t.success.size(), 2u);
  EXPECT_EQ(t.success[0].op, OpKind::put);
  EXPECT_EQ(t.success[1].op, OpKind::range);
  ASSERT_EQ(t.failure.size(), 1u);
  EXPECT_EQ(t.failure[0].op, OpKind::delete_range);
}

TEST(TxnGrammar, EmptySectionsAreBlankLines) {
  const TxnSpec no_compares = parsed("\nput a 1\n\nput a 2\n");
  EXPECT_TRUE(no_compares.compares.empty());
  EXPECT_EQ(no_compares.success.size(), 1u);
  EXPECT_EQ(no_compares.failure.size(), 1u);

  const TxnSpec only_failure = parsed("version(\"a\") = \"0\"\n\n\nput a 2\n");
  EXPECT_EQ(only_failure.compares.size(), 1u);
  EXPECT_TRUE(only_failure.success.empty());
  EXPECT_EQ(only_failure.failure.size(), 1u);

  const TxnSpec empty = parsed("");
  EXPECT_TRUE(empty.compares.empty() && empty.success.empty() && empty.failure.empty());
}

TEST(TxnGrammar, InputMayEndInAnySectionWithoutANewline) {
  const TxnSpec t = parsed("version(\"a\") = \"0\"\n\nput a 1");
  EXPECT_EQ(t.compares.size(), 1u);
  EXPECT_EQ(t.success.size(), 1u);
  EXPECT_TRUE(t.failure.empty());
  EXPECT_EQ(parsed("value(\"a\") = \"x\"").compares.size(), 1u);
}

TEST(TxnGrammar, CrLfLinesAndTrailingBlankLinesAreAccepted) {
  const TxnSpec t = parsed("mod(\"a\") = \"1\"\r\n\r\nput a 1\r\n\r\nput a 2\r\n\r\n\n");
  EXPECT_EQ(t.compares.size(), 1u);
  ASSERT_EQ(t.success.size(), 1u);
  EXPECT_EQ(t.success[0].value, "1");
  EXPECT_EQ(t.failure.size(), 1u);
}

TEST(TxnGrammar, ErrorsNameTheLineAndWhatWasExpected) {
  struct Case {
    const char* text;
    std::size_t line;
    const char* expected;
  };
  for (const Case& c : {
           Case{"lease(\"k\") = \"0\"\n", 1, "its target is value, version, create or mod"},
           Case{"version \"k\" = \"0\"\n", 1, "( after version"},
           Case{"version(k) = \"0\"\n", 1, "\"double-quoted\" string as the key"},
           Case{"version(\"k\" = \"0\"\n", 1, ") after the key"},
           Case{"version(\"k\") == \"0\"\n", 1,
                "an operator (=, !=, <, >) after version(...), not '=='"},
           Case{"version(\"k\") <= \"0\"\n", 1, "not '<='"},
           Case{"version(\"k\") ~ \"0\"\n", 1, "after version(...), not ''"},
           Case{"version(\"k\") = 0\n", 1, "as the value to compare with"},
           Case{"version(\"k\") = \"-1\"\n", 1, "a whole number"},
           Case{"mod(\"k\") = \"4x\"\n", 1, "a whole number"},
           Case{"value(\"k\") = \"v\" extra\n", 1, "the end of the line"},
           Case{"value(\"k\") = \"v\n", 1, "a closing \""},
           Case{"value(\"k\") = \"\\q\"\n", 1, "a known escape"},
           Case{"value(\"k\") = \"\\x4\"\n", 1, "a known escape"},
           Case{"\nput k\n", 2, "put KEY VALUE"},
           Case{"\nput k v w\n", 2, "put KEY VALUE"},
           Case{"\nget\n", 2, "a KEY after get"},
           Case{"\nget --prefix k\n", 2, "a KEY after get"},
           Case{"\nget k --limit\n", 2, "a value after --limit"},
           Case{"\nget k --limit ten\n", 2, "a whole number after --limit"},
           Case{"\nget k --prefix --from-key\n", 2, "at most one of"},
           Case{"\nget k --keys-only --count-only\n", 2, "not both"},
           Case{"\ndel k --limit 3\n", 2, "--prefix, --from-key or --to END, not '--limit'"},
           Case{"\nput 'k v\n", 2, "a closing '"},
           Case{"\nput a 1\nfrob a\n", 3, "an op: put, append, get or del"},
           Case{"\n\nput a 1\n\nput b 2\n", 5, "the end of the input"},
           Case{"version(\"k\") = \"0\"\nput a 1\n", 2, "not 'put'"},
       }) {
    const TxnSyntaxError e = syntax_error(c.text);
    EXPECT_EQ(e.line, c.line) << c.text << " -> " << e.to_string();
    EXPECT_NE(e.message.find(c.expected), std::string::npos) << c.text << " -> " << e.to_string();
    EXPECT_EQ(e.to_string().rfind("line " + std::to_string(c.line) + ": expected ", 0), 0u)
        << e.to_string();
  }
}

TEST(TxnGrammar, TheWireLimitsAreSyntaxErrorsAtTheFirstLineTooMany) {
  std::string compares;
  for (std::size_t i = 0; i <= kMaxTxnCompares; ++i) compares += "version(\"k\") = \"0\"\n";
  const TxnSyntaxError c = syntax_error(compares);
  EXPECT_EQ(c.line, kMaxTxnCompares + 1);
  EXPECT_NE(c.message.find("at most"), std::string::npos);

  std::string ops = "\n";
  for (std::size_t i = 0; i <= kMaxTxnOps; ++i) ops += "put k v\n";
  EXPECT_EQ(syntax_error(ops).line, kMaxTxnOps + 2);
  ops.pop_back();
  ops.erase(ops.rfind('\n') + 1);
  EXPECT_EQ(parsed(ops).success.size(), kMaxTxnOps);
}

}  // namespace
}  // namespace kvpaxos
