#include "engine/api_keys.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "test_util.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The key-file hashes of two keys (Sha256Test checks Sha256Hex against sha256sum).
std::string IngestHash() { return Sha256Hex("ingest-key"); }
std::string QueryHash() { return Sha256Hex("query-key"); }

TEST(Sha256Test, MatchesSha256sum) {
  // printf %s abc | sha256sum
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ApiKeysParseTest, GoodLinesCommentsAndBlankLines) {
  ApiKeys keys;
  ASSERT_TRUE(keys.Add("# operators' keys\n"
                       "\n" +
                           IngestHash() + " ingest   # the mail relay\n" + "  " + QueryHash() +
                           "\tquery, metrics \r\n",
                       "keys.txt")
                  .ok());
  EXPECT_EQ(keys.size(), 2U);
  EXPECT_EQ(keys.CheckToken("ingest-key", ApiScope::kIngest), AuthOutcome::kAllowed);
  EXPECT_EQ(keys.CheckToken("query-key", ApiScope::kQuery), AuthOutcome::kAllowed);
  EXPECT_EQ(keys.CheckToken("query-key", ApiScope::kMetrics), AuthOutcome::kAllowed);
}

TEST(ApiKeysParseTest, BadHexIsRefusedWithTheLineButNotItsText) {
  const std::string upper = [] {
    std::string h = IngestHash();
    for (char& c : h) c = static_cast<char>(std::toupper(c));
    return h;
  }();
  for (const std::string& digest :
       {IngestHash().substr(1), IngestHash() + "0", IngestHash().substr(0, 63) + "z", upper,
        std::string("my-raw-secret-key")}) {
    SCOPED_TRACE(digest);
    ApiKeys keys;
    Status s = keys.Add("# first\n" + digest + " ingest\n", "keys.txt");
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("keys.txt line 2"));
    EXPECT_THAT(s.message(), HasSubstr("64 lowercase hex digits"));
    // A pasted key must not end up in the log.
    EXPECT_THAT(s.message(), Not(HasSubstr(digest)));
    EXPECT_EQ(keys.size(), 0U);
  }
}

TEST(ApiKeysParseTest, UnknownOrEmptyScopeIsRefused) {
  for (const char* scopes : {"admin", "ingest,", "ingest,,query", "Ingest", ""}) {
    SCOPED_TRACE(scopes);
    ApiKeys keys;
    Status s = keys.Add(IngestHash() + " " + scopes, "keys.txt");
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("keys.txt line 1"));
  }
  ApiKeys keys;
  EXPECT_THAT(keys.Add(IngestHash() + " admin", "k").message(), HasSubstr("unknown scope 'admin'"));
}

TEST(ApiKeysParseTest, DuplicateKeysAreRefusedWithinAndAcrossSources) {
  ApiKeys keys;
  Status s = keys.Add(IngestHash() + " ingest\n" + IngestHash() + " query\n", "keys.txt");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("line 2"));
  EXPECT_THAT(s.message(), HasSubstr("listed already"));
  EXPECT_EQ(keys.size(), 0U) << "a refused text adds nothing";

  ASSERT_TRUE(keys.Add(IngestHash() + " ingest", "keys.txt").ok());
  s = keys.Add(QueryHash() + " query;" + IngestHash() + " metrics", "auth.keys", true);
  EXPECT_THAT(s.message(), HasSubstr("auth.keys entry 2"));
  EXPECT_THAT(s.message(), HasSubstr("listed already in keys.txt (read first)"));
  EXPECT_EQ(keys.size(), 1U);
}

TEST(ApiKeysParseTest, SemicolonsSeparateOnlyWhenAsked) {
  ApiKeys keys;
  ASSERT_TRUE(
      keys.Add(IngestHash() + " ingest; " + QueryHash() + " query;", "auth.keys", true).ok());
  EXPECT_EQ(keys.size(), 2U);
  ApiKeys file;
  EXPECT_FALSE(file.Add(IngestHash() + " ingest; " + QueryHash() + " query", "keys.txt").ok());
}

TEST(ParseBearerTest, WellFormedHeaders) {
  for (const std::string header :
       {"Bearer abc", "bearer abc", "BEARER abc", "Bearer    abc", "  Bearer abc  "}) {
    SCOPED_TRACE(header);
    std::string_view token;
    std::string_view why;
    EXPECT_EQ(ParseBearer(header, &token, &why), AuthOutcome::kAllowed);
    EXPECT_EQ(token, "abc");
  }
}

TEST(ParseBearerTest, MissingAndMalformedHeaders) {
  std::string_view token;
  std::string_view why;
  EXPECT_EQ(ParseBearer("", &token, &why), AuthOutcome::kMissing);
  EXPECT_EQ(ParseBearer("   ", &token, &why), AuthOutcome::kMissing);
  const std::string cases[] = {
      "Basic dXNlcjpwYXNz",
      "Bearer",
      "Bearer ",
      "Bearerabc",
      "Bearer\tabc",
      "Token abc",
      "abc",
      "Bearer abc def",
      std::string("Bearer ab\x01") + "c",
      "Bearer ab\x7f",
      "Bearer caf\xc3\xa9",
      "Bearer " + std::string(kMaxApiKeyBytes + 1, 'a'),
      std::string("Bearer \0abc", 11),
  };
  for (const std::string& header : cases) {
    SCOPED_TRACE(header.substr(0, 40));
    why = {};
    EXPECT_EQ(ParseBearer(header, &token, &why), AuthOutcome::kMalformed);
    EXPECT_FALSE(why.empty());
  }
  EXPECT_EQ(ParseBearer("Bearer " + std::string(kMaxApiKeyBytes, 'a'), &token, &why),
            AuthOutcome::kAllowed);
}

// Many keys, so that a match can sit first, in the middle or last: the
// comparison walks all of them and must take the matching entry's scopes,
// no other's.
TEST(ApiKeysCheckTest, EveryEntryIsComparedAndOnlyTheMatchGrantsScopes) {
  std::string text;
  for (int i = 0; i < 50; ++i) {
    text += Sha256Hex("key-" + std::to_string(i)) + (i % 2 == 0 ? " ingest\n" : " query\n");
  }
  text += Sha256Hex("metrics-only") + " metrics\n";
  ApiKeys keys;
  ASSERT_TRUE(keys.Add(text, "keys.txt").ok());
  for (int i : {0, 1, 25, 48, 49}) {
    SCOPED_TRACE(i);
    std::string key = "key-" + std::to_string(i);
    ApiScope own = i % 2 == 0 ? ApiScope::kIngest : ApiScope::kQuery;
    ApiScope other = i % 2 == 0 ? ApiScope::kQuery : ApiScope::kIngest;
    EXPECT_EQ(keys.Check("Bearer " + key, own), AuthOutcome::kAllowed);
    EXPECT_EQ(keys.Check("Bearer " + key, other), AuthOutcome::kScope);
    EXPECT_EQ(keys.Check("Bearer " + key, ApiScope::kMetrics), AuthOutcome::kScope);
  }
  EXPECT_EQ(keys.Check("Bearer metrics-only", ApiScope::kMetrics), AuthOutcome::kAllowed);
  EXPECT_EQ(keys.Check("Bearer metrics-only", ApiScope::kIngest), AuthOutcome::kScope);
  // Near misses: a prefix, an extension, another case, the hash itself.
  for (const std::string& token :
       {std::string("key-"), std::string("key-10x"), std::string("KEY-1"), std::string("key-50"),
        Sha256Hex("key-1")}) {
    SCOPED_TRACE(token);
    EXPECT_EQ(keys.Check("Bearer " + token, ApiScope::kIngest), AuthOutcome::kUnknown);
  }
  EXPECT_EQ(keys.Check("", ApiScope::kIngest), AuthOutcome::kMissing);
  EXPECT_EQ(keys.Check("Basic a", ApiScope::kIngest), AuthOutcome::kMalformed);
  // A route that no scope grants: even a valid key is refused.
  EXPECT_EQ(keys.Check("Bearer key-0", std::nullopt), AuthOutcome::kScope);
}

TEST(ApiKeysCheckTest, AnEmptySetKnowsNoKey) {
  ApiKeys keys;
  EXPECT_EQ(keys.Check("Bearer anything", ApiScope::kIngest), AuthOutcome::kUnknown);
}

TEST(AccessOfRouteTest, ProbesAreOpenProductRoutesScopedOthersClosed) {
  ApiScope scope = ApiScope::kMetrics;
  EXPECT_EQ(AccessOfRoute("/healthz", &scope), RouteAccess::kOpen);
  EXPECT_EQ(AccessOfRoute("/readyz", &scope), RouteAccess::kOpen);
  ASSERT_EQ(AccessOfRoute("/events", &scope), RouteAccess::kScoped);
  EXPECT_EQ(scope, ApiScope::kIngest);
  ASSERT_EQ(AccessOfRoute("/domains", &scope), RouteAccess::kScoped);
  EXPECT_EQ(scope, ApiScope::kQuery);
  ASSERT_EQ(AccessOfRoute("/metrics", &scope), RouteAccess::kScoped);
  EXPECT_EQ(scope, ApiScope::kMetrics);
  EXPECT_EQ(AccessOfRoute("/admin", &scope), RouteAccess::kNoScope);
}

TEST(LoadApiKeysTest, FileAndInlineKeysAddUp) {
  test::ScopedTempDir dir;
  std::string file = dir.path() + "/keys.txt";
  std::ofstream(file) << IngestHash() << " ingest\n";
  Result<ApiKeys> keys = LoadApiKeys(file, QueryHash() + " query");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->size(), 2U);
  EXPECT_EQ(keys->CheckToken("query-key", ApiScope::kQuery), AuthOutcome::kAllowed);
  EXPECT_EQ(keys->CheckToken("ingest-key", ApiScope::kIngest), AuthOutcome::kAllowed);
}

TEST(LoadApiKeysTest, MissingFileOrNoKeyAtAllIsAnError) {
  test::ScopedTempDir dir;
  Result<ApiKeys> missing = LoadApiKeys(dir.path() + "/nope.txt", "");
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.txt cannot be opened"));

  std::string file = dir.path() + "/keys.txt";
  std::ofstream(file) << "# nobody yet\n";
  Result<ApiKeys> empty = LoadApiKeys(file, "");
  EXPECT_EQ(empty.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("holds no key"));
}

// A directory read as a key file looked empty ("holds no key"); a FIFO
// blocked the open until a writer came. Both are refused by what they are.
TEST(LoadApiKeysTest, ADirectoryOrAFifoIsRefusedForWhatItIs) {
  test::ScopedTempDir dir;
  Result<ApiKeys> directory = LoadApiKeys(dir.path(), "");
  EXPECT_EQ(directory.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(directory.status().message(), HasSubstr("is a directory, not a regular file"));

  std::string fifo = dir.path() + "/keys.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Opening the FIFO would block until this writer comes (after 1 s) and
  // then read its good key: the load must neither wait for it nor take it.
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::ofstream(fifo) << IngestHash() << " ingest\n";
  });
  auto started = std::chrono::steady_clock::now();
  Result<ApiKeys> from_fifo = LoadApiKeys(fifo, "");
  auto took = std::chrono::steady_clock::now() - started;
  // Unblock the writer's open if the load did not read the FIFO.
  int unblock = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  writer.join();
  if (unblock >= 0) close(unblock);
  EXPECT_LT(took, std::chrono::milliseconds(500)) << "the load waited for the FIFO's writer";
  EXPECT_EQ(from_fifo.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(from_fifo.status().message(), HasSubstr("auth.keys_file: '" + fifo + "' is a FIFO"));
}

}  // namespace
}  // namespace catchall
