#include "engine/key_sort.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace catchall {
namespace {

TEST(KeyPrefixTest, OrdersLikeTheFirstEightBytes) {
  EXPECT_LT(KeyPrefix("a"), KeyPrefix("b"));
  EXPECT_LT(KeyPrefix("abcdefga"), KeyPrefix("abcdefgb"));
  // A shorter key is padded with zero bytes: never above its extensions.
  EXPECT_LT(KeyPrefix("abc"), KeyPrefix("abcd"));
  EXPECT_EQ(KeyPrefix("abc"), KeyPrefix(std::string_view("abc\0", 4)));
  // Bytes past the eighth do not count; high bytes are unsigned.
  EXPECT_EQ(KeyPrefix("abcdefgh1"), KeyPrefix("abcdefgh2"));
  EXPECT_LT(KeyPrefix("\x7f"), KeyPrefix("\x80"));
  EXPECT_EQ(KeyPrefix(""), 0u);
}

// The keys the stores sort: domains and id keys (domain, NUL, id) that share
// their first bytes, shorter keys that are prefixes of longer ones, bytes
// above 0x7f and NULs inside the first eight bytes.
std::vector<std::string> HardKeys() {
  std::vector<std::string> keys = {"",
                                   "a",
                                   "a.com",
                                   std::string("a.com\0id", 8),
                                   std::string("a.com\0id2", 9),
                                   std::string("a.com\0", 6),
                                   "d1234567-0000abcd.com",
                                   "d1234567-0000abce.com",
                                   "d1234567",
                                   "d123456",
                                   "xn--bcher-kva.de",
                                   "\xff\xfe",
                                   "\x80",
                                   "zzzzzzzzzzzzzzzz"};
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string key = "d" + std::to_string(rng() % 3000);
    if (rng() % 2) key.push_back('\0');
    key += std::to_string(rng() % 50);
    keys.push_back(key);
  }
  // Longer keys that tie on their first 8 bytes, as id keys of one domain
  // do ("d1234567-...\0<id>"): only the full comparison orders them.
  for (int i = 0; i < 2000; ++i) {
    std::string key = "d" + std::to_string(1000000 + rng() % 20) + "-x.com";
    key.push_back('\0');
    key += std::to_string(rng() % 100000);
    if (rng() % 4 == 0) key.push_back('\x90');
    keys.push_back(key);
  }
  return keys;
}

TEST(SortByKeyTest, SortsInByteOrderLikeStdSort) {
  std::vector<std::string> keys = HardKeys();
  std::shuffle(keys.begin(), keys.end(), std::mt19937(11));
  std::vector<std::pair<std::string_view, size_t>> items;
  for (size_t i = 0; i < keys.size(); ++i) items.emplace_back(keys[i], i);
  SortByKey(&items, [](const auto& item) { return item.first; });

  std::vector<std::string> expected = keys;
  std::sort(expected.begin(), expected.end());
  ASSERT_EQ(items.size(), expected.size());
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(items[i].first, expected[i]) << "at " << i;
    // Each item kept its own payload.
    EXPECT_EQ(keys[items[i].second], items[i].first);
  }
}

TEST(SortByKeyTest, SortsPointersByTheKeyTheyName) {
  std::vector<std::string> keys = {"b.com", "a.com", "c.com", "a.co"};
  std::vector<const std::string*> items;
  for (const std::string& k : keys) items.push_back(&k);
  SortByKey(&items, [](const std::string* k) -> std::string_view { return *k; });
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(*items[0], "a.co");
  EXPECT_EQ(*items[1], "a.com");
  EXPECT_EQ(*items[2], "b.com");
  EXPECT_EQ(*items[3], "c.com");
}

}  // namespace
}  // namespace catchall
