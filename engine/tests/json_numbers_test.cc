#include "engine/json_numbers.h"

#include <gtest/gtest.h>

#include <string>

namespace catchall {
namespace {

TEST(FitOutOfRangeNumbersTest, LeavesJsonWithoutOutOfRangeNumbersAlone) {
  for (const char* json :
       {R"({"a":1,"b":-2,"c":1.5e300,"d":[true,null,"x"]})", "18446744073709551615",
        "-9223372036854775808", R"({"ts":9223372036854775807})", "", "[", "1.7976931348623157e308",
        "1e-400", "0.0"}) {
    SCOPED_TRACE(json);
    EXPECT_FALSE(FitOutOfRangeNumbers(json).has_value());
  }
}

TEST(FitOutOfRangeNumbersTest, WritesIntegersBeyond64BitsAsFloats) {
  EXPECT_EQ(FitOutOfRangeNumbers("18446744073709551616"), "18446744073709551616.0");
  EXPECT_EQ(FitOutOfRangeNumbers("-9223372036854775809"), "-9223372036854775809.0");
  EXPECT_EQ(
      FitOutOfRangeNumbers(R"({"x":139676040915199952158720,"y":[-1,-28682827924952376672256]})"),
      R"({"x":139676040915199952158720.0,"y":[-1,-28682827924952376672256.0]})");
}

TEST(FitOutOfRangeNumbersTest, WritesFloatsBeyondADoubleAsTheLargestDouble) {
  EXPECT_EQ(FitOutOfRangeNumbers("1e400"), "1.7976931348623157e308");
  EXPECT_EQ(FitOutOfRangeNumbers("-1.8e308"), "-1.7976931348623157e308");
  EXPECT_EQ(FitOutOfRangeNumbers("1" + std::string(400, '0')), "1.7976931348623157e308");
  EXPECT_EQ(FitOutOfRangeNumbers("[-1" + std::string(400, '0') + "]"), "[-1.7976931348623157e308]");
  EXPECT_EQ(FitOutOfRangeNumbers(R"([{"domain":"a.com","x":1e999,"ts":2E+400},0.5])"),
            R"([{"domain":"a.com","x":1.7976931348623157e308,"ts":1.7976931348623157e308},0.5])");
}

TEST(FitOutOfRangeNumbersTest, LeavesDigitsInsideStringsAlone) {
  EXPECT_FALSE(FitOutOfRangeNumbers(R"({"id":"139676040915199952158720"})").has_value());
  EXPECT_EQ(FitOutOfRangeNumbers(R"({"k\"99999999999999999999":99999999999999999999})"),
            R"({"k\"99999999999999999999":99999999999999999999.0})");
}

TEST(FitOutOfRangeNumbersTest, LeavesMalformedNumbersForTheParser) {
  // Leading zeros, or signs and digits that are not one number: not integers
  // this helper may rewrite.
  EXPECT_FALSE(FitOutOfRangeNumbers("000000000000000000000000").has_value());
  EXPECT_FALSE(FitOutOfRangeNumbers("--99999999999999999999").has_value());
  EXPECT_FALSE(FitOutOfRangeNumbers("99999999999999999999e").has_value());
  for (const char* json : {"01e999", "1.e999", "1e", "-e999", ".5e999", "1e999.5", "1ee999"}) {
    SCOPED_TRACE(json);
    EXPECT_FALSE(FitOutOfRangeNumbers(json).has_value());
  }
}

}  // namespace
}  // namespace catchall
