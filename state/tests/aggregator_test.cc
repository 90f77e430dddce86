#include "state/aggregator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "engine/event.h"
#include "engine/partitioner.h"
#include "test_util.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr int32_t kPartitions = 4;
constexpr int64_t kT0 = 1700000000000;  // a log timestamp, epoch ms
constexpr std::chrono::seconds kWindow = 1h;
constexpr int64_t kWindowMs = int64_t{3600} * 1000;

std::string EventValue(std::string_view domain, EventType type, std::string_view id = {}) {
  Event event;
  event.domain = std::string(domain);
  event.type = type;
  event.id = std::string(id);
  std::string out;
  AppendEventJson(event, &out);
  return out;
}

class AggregatorTest : public ::testing::Test {
 protected:
  AggregatorTest() {
    Status s = KvStore::Open(
        test::SmallStoreOptions(dir_.path() + "/db", CounterStore::Columns(kWindow)), &store_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    counters_ = std::make_unique<CounterStore>(store_.get(), std::string(kEventsTopic));
    aggregator_ =
        std::make_unique<Aggregator>(AggregatorOptions{kPartitions, kWindow}, counters_.get());
  }

  // A record of `key` in its own partition (or `partition`), kept alive by
  // the fixture.
  ConsumedRecord Record(std::string key, std::string value, int64_t offset, int64_t ts = kT0,
                        std::optional<int32_t> partition = std::nullopt) {
    const std::string& k = strings_.emplace_back(std::move(key));
    const std::string& v = strings_.emplace_back(std::move(value));
    return ConsumedRecord{partition.value_or(PartitionForKey(k, kPartitions)), offset, ts, k, v};
  }

  ConsumedRecord EventRecord(std::string_view domain, EventType type, int64_t offset,
                             std::string_view id = {}, int64_t ts = kT0) {
    return Record(std::string(domain), EventValue(domain, type, id), offset, ts);
  }

  ApplyOutcome Apply(const ConsumedRecord& r, std::string* reason = nullptr) {
    std::string ignored;
    Result<ApplyOutcome> outcome = aggregator_->Apply(r, reason ? reason : &ignored);
    EXPECT_TRUE(outcome.ok()) << outcome.status().ToString();
    return outcome.ok() ? *outcome : ApplyOutcome::kMalformed;
  }

  // Applies `r`, expects kMalformed and returns the reason.
  std::string MalformedReason(const ConsumedRecord& r) {
    std::string reason;
    EXPECT_EQ(Apply(r, &reason), ApplyOutcome::kMalformed);
    EXPECT_FALSE(reason.empty());
    return reason;
  }

  // Writes the pending ids, as a commit would.
  void CommitPending() {
    KvWriteBatch batch;
    for (const auto& [key, ts] : aggregator_->TakeDelta().ids) counters_->PutId(key, ts, &batch);
    Status s = counters_->Write(&batch);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  test::ScopedTempDir dir_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<CounterStore> counters_;
  std::unique_ptr<Aggregator> aggregator_;
  std::deque<std::string> strings_;
};

TEST_F(AggregatorTest, CountsDeliveredAndBouncedPerDomain) {
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 0)), ApplyOutcome::kCounted);
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 1)), ApplyOutcome::kCounted);
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kBounced, 2)), ApplyOutcome::kCounted);
  EXPECT_EQ(Apply(EventRecord("b.com", EventType::kBounced, 0)), ApplyOutcome::kCounted);
  const CounterDelta& delta = aggregator_->delta();
  ASSERT_EQ(delta.counts.size(), 2u);
  EXPECT_EQ(delta.counts.at("a.com"), (DomainCounts{2, 1}));
  EXPECT_EQ(delta.counts.at("b.com"), (DomainCounts{0, 1}));
  EXPECT_TRUE(delta.ids.empty());
  EXPECT_EQ(aggregator_->pending_records(), 4u);
}

TEST_F(AggregatorTest, EventsWithAnIdRememberIt) {
  Apply(EventRecord("a.com", EventType::kDelivered, 0, "id-1", kT0 + 5));
  const CounterDelta& delta = aggregator_->delta();
  ASSERT_EQ(delta.ids.size(), 1u);
  EXPECT_EQ(delta.ids.at(std::string("a.com\0id-1", 10)), kT0 + 5);
}

TEST_F(AggregatorTest, DuplicateIdInThePendingDeltaIsCountedOnce) {
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 0, "x")), ApplyOutcome::kCounted);
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 1, "x", kT0 + 1000)),
            ApplyOutcome::kDuplicate);
  // The id belongs to the event, not to its type.
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kBounced, 2, "x", kT0 + 2000)),
            ApplyOutcome::kDuplicate);
  EXPECT_EQ(aggregator_->delta().counts.at("a.com"), (DomainCounts{1, 0}));
  EXPECT_EQ(aggregator_->pending_records(), 3u);
}

// `aggregate.idempotency_window_s = 0` turns deduplication off: events
// with the same id in one commit were dropped as duplicates of each other
// all the same, acknowledged and never counted (a black-box probe).
TEST_F(AggregatorTest, AWindowOfZeroCountsEveryEventWithAnIdAndRemembersNone) {
  Aggregator off(AggregatorOptions{kPartitions, std::chrono::seconds(0)}, counters_.get());
  std::vector<ConsumedRecord> records;
  for (int i = 0; i < 3; ++i) {
    // One log time, as events of one write have: with later times each,
    // the old code's window check of 0 ms let them through.
    records.push_back(EventRecord("a.com", EventType::kDelivered, i, "same", kT0));
  }
  std::vector<const ConsumedRecord*> pointers;
  for (const ConsumedRecord& r : records) pointers.push_back(&r);
  std::vector<Aggregator::Applied> outcomes;
  ASSERT_TRUE(off.ApplyAll(pointers, &outcomes).ok());
  for (const Aggregator::Applied& out : outcomes) EXPECT_EQ(out.outcome, ApplyOutcome::kCounted);
  std::string reason;
  Result<ApplyOutcome> fourth =
      off.Apply(EventRecord("a.com", EventType::kDelivered, 3, "same", kT0), &reason);
  ASSERT_TRUE(fourth.ok());
  EXPECT_EQ(*fourth, ApplyOutcome::kCounted);
  EXPECT_EQ(off.delta().counts.at("a.com"), (DomainCounts{4, 0}));
  EXPECT_TRUE(off.delta().ids.empty());
}

TEST_F(AggregatorTest, SameIdForAnotherDomainIsAnotherEvent) {
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 0, "x")), ApplyOutcome::kCounted);
  EXPECT_EQ(Apply(EventRecord("b.com", EventType::kDelivered, 0, "x")), ApplyOutcome::kCounted);
}

TEST_F(AggregatorTest, DuplicateIdAlreadyCommittedIsCountedOnce) {
  Apply(EventRecord("a.com", EventType::kDelivered, 0, "x"));
  CommitPending();
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 1, "x", kT0 + kWindowMs)),
            ApplyOutcome::kDuplicate);
  EXPECT_TRUE(aggregator_->delta().counts.empty());
  // A fresh aggregator (a restart) sees the stored id too.
  Aggregator fresh(AggregatorOptions{kPartitions, kWindow}, counters_.get());
  std::string reason;
  Result<ApplyOutcome> outcome =
      fresh.Apply(EventRecord("a.com", EventType::kDelivered, 2, "x", kT0 + 10), &reason);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, ApplyOutcome::kDuplicate);
}

TEST_F(AggregatorTest, IdSeenLongerAgoThanTheWindowCountsAgain) {
  Apply(EventRecord("a.com", EventType::kDelivered, 0, "x"));
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 1, "x", kT0 + kWindowMs + 1)),
            ApplyOutcome::kCounted);
  EXPECT_EQ(aggregator_->delta().counts.at("a.com"), (DomainCounts{2, 0}));
  // The window restarts from the event that counted.
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 2, "x", kT0 + kWindowMs + 2)),
            ApplyOutcome::kDuplicate);
}

TEST_F(AggregatorTest, StoredIdSeenLongerAgoThanTheWindowCountsAgain) {
  Apply(EventRecord("a.com", EventType::kDelivered, 0, "x"));
  CommitPending();
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 1, "x", kT0 + kWindowMs + 1)),
            ApplyOutcome::kCounted);
}

// As the HTTP bodies: a record replayed from a file with a byte-order mark
// was dead-lettered (a probe).
TEST_F(AggregatorTest, AValueStartingWithAByteOrderMarkIsCounted) {
  EXPECT_EQ(Apply(Record("a.com", "\xEF\xBB\xBF" + EventValue("a.com", EventType::kDelivered), 0)),
            ApplyOutcome::kCounted);
  EXPECT_EQ(aggregator_->delta().counts.at("a.com").delivered, 1u);
  EXPECT_THAT(
      MalformedReason(Record("a.com", "\xEF\xBB" + EventValue("a.com", EventType::kDelivered), 1)),
      HasSubstr("not an event object"))
      << "only a whole mark is skipped";
}

TEST_F(AggregatorTest, MalformedWhenTheValueIsNotJson) {
  std::string reason = MalformedReason(Record("a.com", "not json at all", 0));
  EXPECT_THAT(reason, HasSubstr("not an event object"));
  EXPECT_THAT(MalformedReason(Record("a.com", "[1,2]", 1)), HasSubstr("not an event object"));
}

TEST_F(AggregatorTest, MalformedWhenAFieldIsMissingOrInvalid) {
  EXPECT_THAT(MalformedReason(Record("a.com", R"({"domain":"a.com"})", 0)), HasSubstr("'type'"));
  EXPECT_THAT(MalformedReason(Record("a.com", R"({"type":"delivered"})", 1)),
              HasSubstr("'domain'"));
  EXPECT_THAT(MalformedReason(Record("a.com", R"({"domain":"a.com","type":"opened"})", 2)),
              HasSubstr("opened"));
  EXPECT_THAT(MalformedReason(Record("a_b.com", R"({"domain":"a_b.com","type":"delivered"})", 3)),
              HasSubstr("invalid event"));
  EXPECT_TRUE(aggregator_->delta().counts.empty());
}

TEST_F(AggregatorTest, MalformedWhenTheDomainInTheValueIsNotNormalized) {
  std::string reason =
      MalformedReason(Record("example.com", R"({"domain":"Example.COM","type":"delivered"})", 0));
  EXPECT_THAT(reason, HasSubstr("not normalized"));
  EXPECT_THAT(reason, HasSubstr("example.com"));
}

TEST_F(AggregatorTest, MalformedWhenTheKeyIsNotTheDomain) {
  // Same partition for both, so only the key check can refuse it.
  std::string reason =
      MalformedReason(Record("other.com", EventValue("a.com", EventType::kDelivered), 0, kT0,
                             PartitionForKey("other.com", kPartitions)));
  EXPECT_THAT(reason, HasSubstr("other.com"));
  EXPECT_THAT(reason, HasSubstr("a.com"));
}

TEST_F(AggregatorTest, MalformedWhenTheKeyBelongsToAnotherPartition) {
  int32_t right = PartitionForKey("a.com", kPartitions);
  int32_t wrong = (right + 1) % kPartitions;
  std::string reason =
      MalformedReason(Record("a.com", EventValue("a.com", EventType::kDelivered), 0, kT0, wrong));
  EXPECT_THAT(reason, HasSubstr("partition " + std::to_string(wrong)));
  EXPECT_THAT(reason, HasSubstr("partition " + std::to_string(right) + " of 4"));
  EXPECT_TRUE(aggregator_->delta().counts.empty());
}

// The fast path serves records of a domain already in the delta. Each test
// first counts a valid event for the domain so that the bad record that
// follows meets the fast path, not the full validation.
TEST_F(AggregatorTest, FastPathCountsDeliveredAndBouncedApart) {
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 0)), ApplyOutcome::kCounted);
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kBounced, 1)), ApplyOutcome::kCounted);
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kBounced, 2)), ApplyOutcome::kCounted);
  EXPECT_EQ(aggregator_->delta().counts.at("a.com"), (DomainCounts{1, 2}));
}

// Found by a black-box probe: a 200 KB value of control bytes became a
// 1.2 MB dead letter (each byte escaped to \u0001), which the broker
// refused; the transaction was retried forever and nothing after it counted.
TEST_F(AggregatorTest, ADeadLetterKeepsAtMostACappedCopyAndSaysWhatWasCut) {
  const std::string key(400'000, 'k');
  const std::string value(200'000, '\x01');
  LogRecord big = Aggregator::DeadLetter("events", Record(key, value, 7), std::string(300, 'r'));
  EXPECT_LT(big.key.size() + big.value.size(), size_t{512 * 1024})
      << "under Kafka's default message.max.bytes (1 MB) with room to spare";
  EXPECT_EQ(big.key, key.substr(0, Aggregator::kDeadLetterCopyBytes));
  EXPECT_THAT(big.value, HasSubstr(R"("truncated":true,"key_bytes":400000,"value_bytes":200000)"));
  EXPECT_THAT(big.value, HasSubstr(R"("topic":"events")"));
  EXPECT_THAT(big.value, HasSubstr(R"(,"offset":7,)"));

  // The worst case: every field all control bytes, each escaped to six.
  const std::string control(400'000, '\x01');
  LogRecord worst = Aggregator::DeadLetter("events", Record(control, control, 9), control);
  EXPECT_LT(worst.key.size() + worst.value.size(), size_t{1'000'000})
      << "librdkafka's default message.max.bytes";
  // Bytes that are not UTF-8 come twice: as U+FFFD (three bytes each) and
  // as base64. The worst mix: control bytes (escaped to six) and one byte
  // that is not UTF-8, so that base64 comes on top.
  const std::string invalid(400'000, '\xff');
  LogRecord binary = Aggregator::DeadLetter("events", Record(invalid, invalid, 9), control);
  EXPECT_LT(binary.key.size() + binary.value.size(), size_t{1'000'000})
      << "librdkafka's default message.max.bytes";
  const std::string mixed = std::string(Aggregator::kDeadLetterCopyBytes - 1, '\x01') + '\xff';
  LogRecord mix = Aggregator::DeadLetter("events", Record(mixed, mixed, 9), control);
  EXPECT_THAT(mix.value, HasSubstr("value_base64"));
  EXPECT_LT(mix.key.size() + mix.value.size(), size_t{1'000'000})
      << "librdkafka's default message.max.bytes";

  // A record of ordinary size is copied whole, with no note.
  LogRecord small = Aggregator::DeadLetter("events", Record("a.com", "\x01oops", 8), "why");
  EXPECT_EQ(small.key, "a.com");
  EXPECT_THAT(small.value, HasSubstr(R"("key":"a.com","value":"\u0001oops"})"));
  EXPECT_THAT(small.value, Not(HasSubstr("truncated")));
}

TEST_F(AggregatorTest, FastPathDeadLettersARecordInTheWrongPartition) {
  ASSERT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 0)), ApplyOutcome::kCounted);
  int32_t right = PartitionForKey("a.com", kPartitions);
  int32_t wrong = (right + 1) % kPartitions;
  std::string reason =
      MalformedReason(Record("a.com", EventValue("a.com", EventType::kDelivered), 0, kT0, wrong));
  EXPECT_THAT(reason, HasSubstr("partition " + std::to_string(right) + " of 4"));
  EXPECT_EQ(aggregator_->delta().counts.at("a.com"), (DomainCounts{1, 0}));
}

TEST_F(AggregatorTest, FastPathDeadLettersAKeyThatIsNotTheValuesDomain) {
  ASSERT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 0)), ApplyOutcome::kCounted);
  // Keyed a.com, in a.com's partition, but the event is about b.com.
  std::string reason =
      MalformedReason(Record("a.com", EventValue("b.com", EventType::kBounced), 1));
  EXPECT_THAT(reason, HasSubstr("b.com"));
  EXPECT_EQ(aggregator_->delta().counts.at("a.com"), (DomainCounts{1, 0}));
  EXPECT_EQ(aggregator_->delta().counts.count("b.com"), 0u);
}

TEST_F(AggregatorTest, FastPathDeadLettersANegativeTimestamp) {
  ASSERT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 0)), ApplyOutcome::kCounted);
  std::string reason =
      MalformedReason(Record("a.com", R"({"domain":"a.com","type":"delivered","ts":-5})", 1));
  EXPECT_THAT(reason, HasSubstr("invalid event"));
  EXPECT_EQ(aggregator_->delta().counts.at("a.com"), (DomainCounts{1, 0}));
}

TEST_F(AggregatorTest, FastPathDeadLettersATimestampPastInt64) {
  ASSERT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 0)), ApplyOutcome::kCounted);
  std::string reason = MalformedReason(
      Record("a.com", R"({"domain":"a.com","type":"delivered","ts":9223372036854775808})", 1));
  EXPECT_THAT(reason, HasSubstr("'ts' is too large"));
  EXPECT_EQ(aggregator_->delta().counts.at("a.com"), (DomainCounts{1, 0}));
}

TEST_F(AggregatorTest, OffsetsAdvanceForEveryOutcome) {
  // Three records of one partition: counted, duplicate, malformed.
  ConsumedRecord counted = EventRecord("a.com", EventType::kDelivered, 10, "x");
  int32_t p = counted.partition;
  Apply(counted);
  EXPECT_EQ(aggregator_->delta().offsets.at(p), 11);
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 11, "x")), ApplyOutcome::kDuplicate);
  EXPECT_EQ(aggregator_->delta().offsets.at(p), 12);
  EXPECT_EQ(Apply(Record("a.com", "garbage", 12, kT0, p)), ApplyOutcome::kMalformed);
  EXPECT_EQ(aggregator_->delta().offsets.at(p), 13);
  EXPECT_EQ(aggregator_->pending_records(), 3u);
  // Another partition has its own offset.
  int32_t q = (p + 1) % kPartitions;
  Apply(Record("a.com", "garbage", 5, kT0, q));
  EXPECT_EQ(aggregator_->delta().offsets.at(q), 6);
  EXPECT_EQ(aggregator_->delta().offsets.at(p), 13);
}

TEST_F(AggregatorTest, OldestTimestampIsTheEarliestPendingRecord) {
  Apply(EventRecord("a.com", EventType::kDelivered, 0, {}, kT0 + 50));
  Apply(EventRecord("a.com", EventType::kDelivered, 1, {}, kT0 + 20));
  Apply(EventRecord("a.com", EventType::kDelivered, 2, {}, kT0 + 90));
  EXPECT_EQ(aggregator_->oldest_timestamp_ms(), kT0 + 20);
  (void)aggregator_->TakeDelta();
  Apply(EventRecord("a.com", EventType::kDelivered, 3, {}, kT0 + 500));
  EXPECT_EQ(aggregator_->oldest_timestamp_ms(), kT0 + 500);
}

TEST_F(AggregatorTest, TakeDeltaHandsOverEverythingAndStartsAnew) {
  ConsumedRecord r = EventRecord("a.com", EventType::kBounced, 7, "x");
  Apply(r);
  CounterDelta taken = aggregator_->TakeDelta();
  EXPECT_EQ(taken.counts.at("a.com"), (DomainCounts{0, 1}));
  EXPECT_EQ(taken.offsets.at(r.partition), 8);
  EXPECT_EQ(taken.ids.size(), 1u);
  EXPECT_TRUE(aggregator_->delta().empty());
  EXPECT_EQ(aggregator_->pending_records(), 0u);
}

TEST_F(AggregatorTest, ResetForgetsThePendingDeltaIncludingIds) {
  Apply(EventRecord("a.com", EventType::kDelivered, 0, "x"));
  aggregator_->Reset();
  EXPECT_TRUE(aggregator_->delta().empty());
  EXPECT_EQ(aggregator_->pending_records(), 0u);
  // The forgotten id was never committed: re-reading the event counts it.
  EXPECT_EQ(Apply(EventRecord("a.com", EventType::kDelivered, 0, "x")), ApplyOutcome::kCounted);
}

// ApplyAll, as the aggregation loop calls it with a whole poll, decides
// every record as Apply one by one does: ids repeated within the poll, ids
// stored by an earlier commit (inside and outside the window), a keyless
// event of a domain first seen with an id, malformed records in between.
TEST_F(AggregatorTest, ApplyAllOfAPollDecidesAsApplyOneByOne) {
  Apply(EventRecord("stored.com", EventType::kDelivered, 0, "kept", kT0));
  Apply(EventRecord("stored.com", EventType::kDelivered, 1, "expired", kT0 - kWindowMs - 5));
  CommitPending();
  std::vector<ConsumedRecord> poll = {
      EventRecord("stored.com", EventType::kDelivered, 2, "kept", kT0 + 10),        // dup (store)
      EventRecord("stored.com", EventType::kBounced, 3, "expired", kT0 + 10),       // counts again
      EventRecord("new.com", EventType::kDelivered, 4, "x", kT0 + 20),              // new id
      EventRecord("new.com", EventType::kDelivered, 5),                             // no id
      Record("new.com", "not json", 6, kT0 + 30),                                   // malformed
      EventRecord("new.com", EventType::kBounced, 7, "x", kT0 + 40),                // dup (poll)
      EventRecord("other.com", EventType::kDelivered, 8, "x", kT0 + 50),            // other domain
      EventRecord("new.com", EventType::kDelivered, 9, "y", kT0 + kWindowMs + 30),  // new id
      EventRecord("new.com", EventType::kDelivered, 10, "x", kT0 + kWindowMs + 30),
      EventRecord("new.com", EventType::kDelivered, 11, "y", kT0 + kWindowMs + 40),  // dup
  };
  // One by one, on a second aggregator over the same store.
  Aggregator one_by_one(AggregatorOptions{kPartitions, kWindow}, counters_.get());
  std::vector<ApplyOutcome> expected;
  for (const ConsumedRecord& r : poll) {
    std::string reason;
    Result<ApplyOutcome> outcome = one_by_one.Apply(r, &reason);
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
    expected.push_back(*outcome);
  }
  std::vector<const ConsumedRecord*> records;
  records.reserve(poll.size());
  for (const ConsumedRecord& r : poll) records.push_back(&r);
  std::vector<Aggregator::Applied> applied;
  ASSERT_TRUE(aggregator_->ApplyAll(records, &applied).ok());
  ASSERT_EQ(applied.size(), poll.size());
  for (size_t i = 0; i < poll.size(); ++i) {
    EXPECT_EQ(applied[i].outcome, expected[i]) << "record " << i;
    EXPECT_EQ(applied[i].reason.empty(), expected[i] != ApplyOutcome::kMalformed) << i;
  }
  EXPECT_EQ(expected, (std::vector<ApplyOutcome>{
                          ApplyOutcome::kDuplicate, ApplyOutcome::kCounted, ApplyOutcome::kCounted,
                          ApplyOutcome::kCounted, ApplyOutcome::kMalformed,
                          ApplyOutcome::kDuplicate, ApplyOutcome::kCounted, ApplyOutcome::kCounted,
                          ApplyOutcome::kCounted, ApplyOutcome::kDuplicate}));
  const CounterDelta& got = aggregator_->delta();
  const CounterDelta& want = one_by_one.delta();
  EXPECT_EQ(got.counts, want.counts);
  EXPECT_EQ(got.ids, want.ids);
  EXPECT_EQ(got.offsets, want.offsets);
  EXPECT_EQ(aggregator_->pending_records(), one_by_one.pending_records());
  EXPECT_EQ(aggregator_->oldest_timestamp_ms(), one_by_one.oldest_timestamp_ms());
  EXPECT_EQ(got.counts.at("new.com"), (DomainCounts{4, 0}));
  EXPECT_EQ(got.counts.at("stored.com"), (DomainCounts{0, 1}));
}

// JSON strings cannot carry bytes that are not UTF-8: they came out as
// U+FFFD, so a dead letter could not be replayed as it was (a black-box
// probe). Such a key or value comes as base64 too; UTF-8 ones do not.
TEST_F(AggregatorTest, ADeadLetterCarriesBytesThatAreNotUtf8AsBase64) {
  const std::string value("v\xfe\x00z", 4);
  LogRecord dead = Aggregator::DeadLetter("catchall.events", Record("k\xff", value, 5), "why");
  EXPECT_THAT(dead.value, HasSubstr(R"("key_base64":"a/8=")"));
  EXPECT_THAT(dead.value, HasSubstr(R"("value_base64":"dv4Aeg==")"));
  simdjson::dom::parser parser;
  simdjson::padded_string padded(dead.value);
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(padded).get(root), simdjson::SUCCESS) << dead.value;
  LogRecord plain = Aggregator::DeadLetter("catchall.events", Record("k\u00e9", "v", 5), "why");
  EXPECT_THAT(plain.value, Not(HasSubstr("base64")));
  // UTF-8 cut at the copy's limit in the middle of a character is UTF-8
  // all the same (a review: it came with base64).
  std::string cjk;
  while (cjk.size() <= Aggregator::kDeadLetterCopyBytes) cjk += "\u4e2d";
  ASSERT_NE(Aggregator::kDeadLetterCopyBytes % 3, 0u);
  LogRecord cut = Aggregator::DeadLetter("catchall.events", Record("k", cjk, 5), "why");
  EXPECT_THAT(cut.value, HasSubstr(R"("truncated":true)"));
  EXPECT_THAT(cut.value, Not(HasSubstr("base64")));
}

TEST_F(AggregatorTest, DeadLetterDescribesTheRecordAsJson) {
  ConsumedRecord r = Record("key\"1", "bad \"value\"\n", 42, kT0, 3);
  LogRecord dead = Aggregator::DeadLetter("catchall.events", r, "value is not an event object");
  EXPECT_EQ(dead.key, "key\"1");
  simdjson::dom::parser parser;
  simdjson::padded_string padded(dead.value);
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(padded).get(root), simdjson::SUCCESS) << dead.value;
  std::string_view s;
  int64_t n = 0;
  ASSERT_EQ(root["topic"].get_string().get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "catchall.events");
  ASSERT_EQ(root["partition"].get_int64().get(n), simdjson::SUCCESS);
  EXPECT_EQ(n, 3);
  ASSERT_EQ(root["offset"].get_int64().get(n), simdjson::SUCCESS);
  EXPECT_EQ(n, 42);
  ASSERT_EQ(root["reason"].get_string().get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "value is not an event object");
  ASSERT_EQ(root["key"].get_string().get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "key\"1");
  ASSERT_EQ(root["value"].get_string().get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "bad \"value\"\n");
}

}  // namespace
}  // namespace catchall
