#include "bench/verifier.h"

#include <gtest/gtest.h>

#include <string>

namespace catchall::bench {
namespace {

// Names that collide once lower-cased: 3 "Dup.com", 7 "DUP.com", 11
// "dup.com"; every other index is unique.
class CollidingWorkload final : public Workload {
 public:
  explicit CollidingWorkload(uint64_t n) : Workload(1, n) {}
  std::string_view name() const override { return "colliding"; }
  void AppendDomainName(uint32_t index, std::string* out) const override {
    if (index == 3) return out->append("Dup.com"), void();
    if (index == 7) return out->append("DUP.com"), void();
    if (index == 11) return out->append("dup.com"), void();
    out->append("X").append(std::to_string(index)).append(".com");
  }
  bool NamesMayCollide() const override { return true; }
  std::unique_ptr<EventStream> NewStream(uint32_t, uint32_t) const override { return nullptr; }
};

TEST(GroupByLowerNameTest, MergesNamesEqualOnceLowerCased) {
  CollidingWorkload w(20);
  std::vector<uint32_t> indices;
  for (uint32_t i = 0; i < 20; ++i) indices.push_back(i);
  const DomainGroups g = GroupByLowerName(w, indices);
  std::vector<uint32_t> expected_heads;
  for (uint32_t i = 0; i < 20; ++i) {
    if (i != 7 && i != 11) expected_heads.push_back(i);
  }
  EXPECT_EQ(g.heads, expected_heads);
  ASSERT_EQ(g.merged.size(), 2u);
  EXPECT_EQ(g.merged[0], std::make_pair(3u, 7u));
  EXPECT_EQ(g.merged[1], std::make_pair(3u, 11u));
}

TEST(GroupByLowerNameTest, ChallengeNamesRarelyCollide) {
  ChallengeWorkload w(77, 200000);
  std::vector<uint32_t> indices;
  for (uint32_t i = 0; i < 200000; ++i) indices.push_back(i);
  const DomainGroups g = GroupByLowerName(w, indices);
  EXPECT_EQ(g.heads.size() + g.merged.size(), indices.size());
  EXPECT_TRUE(g.merged.empty());  // 26^14 * 5 names: a collision here would be a bug
}

}  // namespace
}  // namespace catchall::bench
