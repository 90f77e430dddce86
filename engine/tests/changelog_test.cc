#include "engine/changelog.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/counts_table.h"
#include "engine/domain_status.h"
#include "engine/partitioner.h"
#include "test_util.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ChangelogApplierTest : public ::testing::Test {
 protected:
  ChangelogApplierTest() {
    KvStoreOptions options;
    options.path = dir_.path() + "/db";
    options.columns = {{"counts", ColumnKind::kPlain, {}}};
    options.block_cache_bytes = 8 << 20;
    options.write_buffer_bytes = 4 << 20;
    EXPECT_TRUE(KvStore::Open(options, &store_).ok());
    counts_ = store_->GetColumn("counts");
  }

  ChangelogEffect Apply(std::string_view key, std::string_view value, int32_t partition = 0) {
    KvWriteBatch batch;
    ChangelogEffect effect =
        ChangelogApplier(counts_).Apply(ConsumedRecord{partition, 0, 0, key, value}, &batch);
    EXPECT_TRUE(store_->Write(&batch).ok());
    return effect;
  }

  DomainCounts Counts(std::string_view domain) {
    return CountsTable(store_.get(), counts_).Get(domain).value();
  }

  static std::string Record(std::string_view domain, DomainCounts counts) {
    std::string value;
    AppendDomainStatusJson(domain, counts, 1000, &value);
    return value;
  }

  test::ScopedTempDir dir_;
  std::unique_ptr<KvStore> store_;
  Column counts_;
};

TEST_F(ChangelogApplierTest, ADomainRecordPutsItsAbsoluteCounters) {
  EXPECT_EQ(Apply("a.com", Record("a.com", {5, 1})).kind, ChangelogEffect::kPut);
  EXPECT_EQ(Counts("a.com"), (DomainCounts{5, 1}));
  Apply("a.com", Record("a.com", {7, 1}));  // the newer record replaces it
  EXPECT_EQ(Counts("a.com"), (DomainCounts{7, 1}));
}

TEST_F(ChangelogApplierTest, ATombstoneForgetsTheDomain) {
  Apply("a.com", Record("a.com", {5, 1}));
  EXPECT_EQ(Apply("a.com", "").kind, ChangelogEffect::kDelete);
  EXPECT_EQ(Counts("a.com"), (DomainCounts{0, 0}));
}

TEST_F(ChangelogApplierTest, ACheckpointChangesNothingAndSaysWhereTheRecordsAreComplete) {
  std::string checkpoint;
  AppendChangelogCheckpointJson(3, 4242, &checkpoint);
  ChangelogEffect effect = Apply(kChangelogCheckpointKey, checkpoint, 3);
  EXPECT_EQ(effect.kind, ChangelogEffect::kCheckpoint);
  EXPECT_EQ(effect.events_offset, 4242);
  EXPECT_EQ(Counts(kChangelogCheckpointKey), (DomainCounts{0, 0}));
}

// A checkpoint vouches for its own partition only: one written into
// another (by something else than an aggregator) ended a restore there
// early, and the events committed after it were lost (a black-box probe).
TEST_F(ChangelogApplierTest, ACheckpointInAnotherPartitionThanItNamesIsSkipped) {
  std::string checkpoint;
  AppendChangelogCheckpointJson(3, 4242, &checkpoint);
  ChangelogEffect effect = Apply(kChangelogCheckpointKey, checkpoint, 1);
  EXPECT_EQ(effect.kind, ChangelogEffect::kSkipped);
  EXPECT_THAT(effect.problem, HasSubstr("names partition 3 but is in partition 1"));
  effect = Apply(kChangelogCheckpointKey, R"({"checkpoint":true,"events_offset":5})", 0);
  EXPECT_EQ(effect.kind, ChangelogEffect::kSkipped);
  EXPECT_THAT(effect.problem, HasSubstr("'partition'"));
}

// A count past 2^63 - 1 was taken, and counting on from 2^64 - 1 wrapped
// to 0 (a black-box probe); readers that parse counts as signed 64-bit
// numbers broke before that.
TEST_F(ChangelogApplierTest, ACountPastTheSignedRangeIsSkipped) {
  Apply("a.com", Record("a.com", {5, 1}));
  ChangelogEffect effect =
      Apply("a.com", R"({"domain":"a.com","delivered":9223372036854775808,"bounced":0})");
  EXPECT_EQ(effect.kind, ChangelogEffect::kSkipped);
  EXPECT_THAT(effect.problem, HasSubstr("past 9223372036854775807"));
  EXPECT_EQ(Counts("a.com"), (DomainCounts{5, 1}));
  EXPECT_EQ(
      Apply("a.com", R"({"domain":"a.com","delivered":9223372036854775807,"bounced":0})").kind,
      ChangelogEffect::kPut);
}

// A record under a key that is no normalized domain is one no lookup can
// reach: query nodes stored `UP.COM` and a 400 KB name a black-box probe
// wrote. Skipped, with the key quoted; a tombstone of one is harmless.
TEST_F(ChangelogApplierTest, ARecordUnderAKeyNoLookupCanReachIsSkipped) {
  const std::string long_name = std::string(300, 'a') + ".com";
  for (const std::string& key : {std::string("UP.COM"), long_name, std::string("a_b.com"),
                                 std::string("caf\xc3\xa9.com"), std::string("a\nb.com")}) {
    SCOPED_TRACE(key);
    ChangelogEffect effect = Apply(key, Record(key, {3, 0}));
    EXPECT_EQ(effect.kind, ChangelogEffect::kSkipped);
    EXPECT_THAT(effect.problem, HasSubstr("is not a normalized domain"));
    EXPECT_THAT(effect.problem, Not(HasSubstr("\n")));
  }
  for (const std::string& key : {std::string("xn--bcher-kva.de"), std::string("a-1.b2.com")}) {
    SCOPED_TRACE(key);
    EXPECT_EQ(Apply(key, Record(key, {3, 0})).kind, ChangelogEffect::kPut);
    EXPECT_EQ(Counts(key), (DomainCounts{3, 0}));
  }
}

// The skip reason names the field and what is wrong with it: a negative
// count was reported as a missing one (a black-box probe).
TEST_F(ChangelogApplierTest, ASkippedCountsReasonNamesTheFieldAndWhatIsWrong) {
  struct Case {
    std::string value;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"domain":"a.com","delivered":-5,"bounced":0})", "'delivered' is negative (-5)"},
           {R"({"domain":"a.com","delivered":1,"bounced":-1})", "'bounced' is negative (-1)"},
           {R"({"domain":"a.com","delivered":1.5,"bounced":0})",
            "'delivered' is not a non-negative integer"},
           {R"({"domain":"a.com","delivered":"1","bounced":0})",
            "'delivered' is not a non-negative integer"},
           {R"({"domain":"a.com","delivered":1})", "lacks 'bounced'"},
           {R"([1,2])", "is not a JSON object"},
       }) {
    SCOPED_TRACE(c.value);
    ChangelogEffect effect = Apply("a.com", c.value);
    EXPECT_EQ(effect.kind, ChangelogEffect::kSkipped);
    EXPECT_THAT(effect.problem, HasSubstr(c.reason));
  }
}

// A domain's record in another partition than its key's (only a foreign
// producer writes one) is skipped when the partition count is known: a
// query node started later took it, one running before did not (a
// black-box probe). Tombstones alike.
TEST_F(ChangelogApplierTest, ARecordInAnotherPartitionThanItsDomainsIsSkipped) {
  const int32_t home = PartitionForKey("a.com", 4);
  const int32_t other = (home + 1) % 4;
  KvWriteBatch batch;
  ChangelogApplier applier(counts_, 4);
  std::string value = Record("a.com", {700, 0});
  ChangelogEffect effect = applier.Apply(ConsumedRecord{other, 0, 0, "a.com", value}, &batch);
  EXPECT_EQ(effect.kind, ChangelogEffect::kSkipped);
  EXPECT_THAT(effect.problem, HasSubstr(fmt::format("record is in partition {} but its key "
                                                    "belongs to partition {}",
                                                    other, home)));
  EXPECT_EQ(applier.Apply(ConsumedRecord{other, 0, 0, "a.com", ""}, &batch).kind,
            ChangelogEffect::kSkipped);
  EXPECT_EQ(batch.Count(), 0u);
  EXPECT_EQ(applier.Apply(ConsumedRecord{home, 0, 0, "a.com", value}, &batch).kind,
            ChangelogEffect::kPut);
  // Unchecked without the count (the default).
  EXPECT_EQ(Apply("a.com", value, other).kind, ChangelogEffect::kPut);
}

TEST_F(ChangelogApplierTest, AMalformedRecordIsSkippedWithTheReasonNotHalfApplied) {
  Apply("a.com", Record("a.com", {5, 1}));
  ChangelogEffect effect = Apply("a.com", R"({"domain":"a.com","delivered":"many"})");
  EXPECT_EQ(effect.kind, ChangelogEffect::kSkipped);
  EXPECT_THAT(effect.problem, HasSubstr("delivered"));
  EXPECT_EQ(Counts("a.com"), (DomainCounts{5, 1}));
  EXPECT_EQ(Apply(kChangelogCheckpointKey, "not json").kind, ChangelogEffect::kSkipped);
}

// A record whose value names another domain than its key (only something
// else than an aggregator writes one) is skipped: applied, it set the key's
// counts, and a restore then counted on from them (a black-box probe).
TEST_F(ChangelogApplierTest, ARecordNamingAnotherDomainThanItsKeyIsSkipped) {
  Apply("a.com", Record("a.com", {5, 1}));
  ChangelogEffect effect = Apply("a.com", Record("b.com", {77, 0}));
  EXPECT_EQ(effect.kind, ChangelogEffect::kSkipped);
  EXPECT_THAT(effect.problem, HasSubstr("'b.com' is under the key 'a.com'"));
  EXPECT_EQ(Counts("a.com"), (DomainCounts{5, 1}));
  ChangelogEffect nameless = Apply("a.com", R"({"delivered":9,"bounced":0})");
  EXPECT_EQ(nameless.kind, ChangelogEffect::kSkipped);
  EXPECT_THAT(nameless.problem, HasSubstr("'domain'"));
  EXPECT_EQ(Counts("a.com"), (DomainCounts{5, 1}));
}

TEST(IdRecordTest, RoundTripsAndRefusesWhatIsNotOne) {
  std::string value;
  AppendIdRecordJson("evt-\"42\"", 1700000000123, &value);
  Result<IdRecord> id = ParseIdRecordJson(value);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->id, "evt-\"42\"");
  EXPECT_EQ(id->timestamp_ms, 1700000000123);
  EXPECT_EQ(ParseIdRecordJson(R"({"id":"x"})").status().code(), Code::kCorruption);
  EXPECT_EQ(ParseIdRecordJson("[]").status().code(), Code::kCorruption);
  EXPECT_EQ(IdKey("a.com", "x"), std::string("a.com\0x", 7));
}

// What ForEachIdInRecord hands out, as "domain/id@ts" lines.
std::string IdsIn(std::string_view key, std::string_view value, Status* status) {
  std::string out;
  *status = ForEachIdInRecord(ConsumedRecord{0, 0, 0, key, value},
                              [&](std::string_view domain, std::string_view id, int64_t ts) {
                                out += fmt::format("{}/{}@{}\n", domain, id, ts);
                              });
  return out;
}

TEST(IdBatchTest, CarriesEveryIdInOrderWithItsDomainAndTime) {
  IdBatchJson batch;
  batch.Add("a.com", "x", 1);
  batch.Add("b.com", "evt-\"42\"\\", 1700000000123);
  batch.Add("a.com", "y", -5);
  EXPECT_EQ(batch.ids(), 3u);
  std::string value = batch.Take();
  EXPECT_EQ(batch.ids(), 0u);
  EXPECT_EQ(batch.bytes(), 0u);
  Status s;
  EXPECT_EQ(IdsIn(kIdsBatchKey, value, &s),
            "a.com/x@1\nb.com/evt-\"42\"\\@1700000000123\na.com/y@-5\n");
  EXPECT_TRUE(s.ok()) << s.ToString();
  // Taken empty, it is still a record that reads as no ids.
  EXPECT_EQ(IdsIn(kIdsBatchKey, batch.Take(), &s), "");
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(IdBatchTest, OneIdRecordsOfEarlierVersionsAndCheckpointsStillRead) {
  std::string one;
  AppendIdRecordJson("x", 7, &one);
  Status s;
  EXPECT_EQ(IdsIn("a.com", one, &s), "a.com/x@7\n");
  EXPECT_TRUE(s.ok());
  std::string checkpoint;
  AppendChangelogCheckpointJson(3, 100, &checkpoint);
  EXPECT_EQ(IdsIn(kChangelogCheckpointKey, checkpoint, &s), "");
  EXPECT_TRUE(s.ok());
}

TEST(IdBatchTest, ABatchThatDoesNotDecodeHandsOutNoIdAtAll) {
  Status s;
  // The first entry is fine; the second is not: nothing may be applied.
  EXPECT_EQ(IdsIn(kIdsBatchKey, R"({"ids":[["a.com","x",1],["b.com",2,3]]})", &s), "");
  EXPECT_EQ(s.code(), Code::kCorruption);
  for (std::string_view bad : {R"({"ids":[["a.com","x"]]})", R"({"ids":[["a.com","x",1.5]]})",
                               R"({"ids":{}})", R"({"id":"x","ts":1})", "[", ""}) {
    EXPECT_EQ(IdsIn(kIdsBatchKey, bad, &s), "") << bad;
    EXPECT_EQ(s.code(), Code::kCorruption) << bad;
    EXPECT_FALSE(s.message().empty()) << bad;
  }
  // A one-id record under a domain's key that is not one.
  EXPECT_EQ(IdsIn("a.com", R"({"ids":[]})", &s), "");
  EXPECT_EQ(s.code(), Code::kCorruption);
}

}  // namespace
}  // namespace catchall
