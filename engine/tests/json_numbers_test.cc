#include "engine/json_numbers.h"

#include <gtest/gtest.h>

namespace catchall {
namespace {

TEST(WidenOutOfRangeIntegersTest, LeavesJsonWithoutBigIntegersAlone) {
  for (const char* json :
       {R"({"a":1,"b":-2,"c":1.5e300,"d":[true,null,"x"]})", "18446744073709551615",
        "-9223372036854775808", R"({"ts":9223372036854775807})", "", "[", "1e999", "0.0"}) {
    SCOPED_TRACE(json);
    EXPECT_FALSE(WidenOutOfRangeIntegers(json).has_value());
  }
}

TEST(WidenOutOfRangeIntegersTest, WritesIntegersBeyond64BitsAsFloats) {
  EXPECT_EQ(WidenOutOfRangeIntegers("18446744073709551616"), "18446744073709551616.0");
  EXPECT_EQ(WidenOutOfRangeIntegers("-9223372036854775809"), "-9223372036854775809.0");
  EXPECT_EQ(WidenOutOfRangeIntegers(
                R"({"x":139676040915199952158720,"y":[-1,-28682827924952376672256]})"),
            R"({"x":139676040915199952158720.0,"y":[-1,-28682827924952376672256.0]})");
}

TEST(WidenOutOfRangeIntegersTest, LeavesDigitsInsideStringsAlone) {
  EXPECT_FALSE(WidenOutOfRangeIntegers(R"({"id":"139676040915199952158720"})").has_value());
  EXPECT_EQ(WidenOutOfRangeIntegers(R"({"k\"99999999999999999999":99999999999999999999})"),
            R"({"k\"99999999999999999999":99999999999999999999.0})");
}

TEST(WidenOutOfRangeIntegersTest, LeavesMalformedNumbersForTheParser) {
  // Leading zeros, or signs and digits that are not one number: not integers
  // this helper may rewrite.
  EXPECT_FALSE(WidenOutOfRangeIntegers("000000000000000000000000").has_value());
  EXPECT_FALSE(WidenOutOfRangeIntegers("--99999999999999999999").has_value());
  EXPECT_FALSE(WidenOutOfRangeIntegers("99999999999999999999e").has_value());
}

}  // namespace
}  // namespace catchall
