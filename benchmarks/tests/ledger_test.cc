#include "bench/ledger.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace catchall::bench {
namespace {

TEST(LedgerTest, CountsAcknowledgedEventsPerDomainAndType) {
  Ledger ledger(100);
  EXPECT_FALSE(ledger.Touched(7));
  ledger.Ack(7, EventType::kDelivered);
  ledger.Ack(7, EventType::kDelivered, 4);
  ledger.Ack(7, EventType::kBounced);
  ledger.Ack(99, EventType::kBounced);
  EXPECT_EQ(ledger.Acked(7), (DomainCounts{5, 1}));
  EXPECT_EQ(ledger.Acked(99), (DomainCounts{0, 1}));
  EXPECT_EQ(ledger.Acked(0), (DomainCounts{0, 0}));
  EXPECT_TRUE(ledger.Touched(7));
  EXPECT_FALSE(ledger.Touched(8));
}

TEST(LedgerTest, UncertainEventsAreKeptApart) {
  Ledger ledger(10);
  ledger.Uncertain(3, EventType::kDelivered);
  ledger.Uncertain(3, EventType::kBounced, 2);
  EXPECT_EQ(ledger.Acked(3), (DomainCounts{0, 0}));
  EXPECT_EQ(ledger.UncertainOf(3), (DomainCounts{1, 2}));
  EXPECT_TRUE(ledger.Touched(3));
  EXPECT_EQ(ledger.uncertain_domains(), 1u);
}

TEST(LedgerTest, ConcurrentAcksAreAllCounted) {
  Ledger ledger(1000);
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        ledger.Ack(static_cast<uint32_t>(i % 1000), EventType::kDelivered);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (uint32_t d = 0; d < 1000; ++d) ASSERT_EQ(ledger.Acked(d).delivered, 400u);
}

TEST(LedgerTest, TenMillionDomainsAreCheapUntilTouched) {
  Ledger ledger(10'000'000);
  ledger.Ack(9'999'999, EventType::kBounced);
  EXPECT_EQ(ledger.Acked(9'999'999).bounced, 1u);
}

}  // namespace
}  // namespace catchall::bench
