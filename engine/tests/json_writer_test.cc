#include "engine/json_writer.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "test_util.h"

namespace catchall {
namespace {

std::string Json(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

// Parses a JSON string literal back to its value.
std::string Decode(const std::string& literal) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(literal);
  std::string_view value;
  auto error = parser.parse(padded).get_string().get(value);
  EXPECT_EQ(error, simdjson::SUCCESS) << literal;
  return std::string(value);
}

TEST(AppendJsonStringTest, QuotesAndAppends) {
  std::string out = "x=";
  AppendJsonString("abc", &out);
  EXPECT_EQ(out, "x=\"abc\"");
  EXPECT_EQ(Json(""), "\"\"");
}

TEST(AppendJsonStringTest, EscapesWhatRfc8259Requires) {
  EXPECT_EQ(Json("a\"b"), R"("a\"b")");
  EXPECT_EQ(Json("a\\b"), R"("a\\b")");
  EXPECT_EQ(Json("\n\r\t"), R"("\n\r\t")");
  EXPECT_EQ(Json("\x01\x1f"), R"("\u0001\u001f")");
  EXPECT_EQ(Json(std::string_view("\0", 1)), R"("\u0000")");
  EXPECT_EQ(Json("\b\f"), R"("\u0008\u000c")");
  // Not required: left as is.
  EXPECT_EQ(Json("/ \x7f ~"), "\"/ \x7f ~\"");
}

TEST(AppendJsonStringTest, KeepsValidUtf8) {
  EXPECT_EQ(Json("bücher"), "\"bücher\"");
  EXPECT_EQ(Json("日本語"), "\"日本語\"");
  EXPECT_EQ(Json("\xF0\x9F\x98\x80"), "\"\xF0\x9F\x98\x80\"");  // U+1F600
  EXPECT_EQ(Json("\xF4\x8F\xBF\xBF"), "\"\xF4\x8F\xBF\xBF\"");  // U+10FFFF
  EXPECT_EQ(Json("\xEF\xBF\xBD"), "\"\xEF\xBF\xBD\"");          // U+FFFD itself
  EXPECT_EQ(Json("\xC2\x80"), "\"\xC2\x80\"");                  // U+0080
}

constexpr const char* kFffd = "\xEF\xBF\xBD";

TEST(AppendJsonStringTest, ReplacesInvalidUtf8WithReplacementCharacter) {
  const std::string r = kFffd;
  EXPECT_EQ(Json("a\xff"
                 "b"),
            "\"a" + r + "b\"");
  EXPECT_EQ(Json("\x80"), "\"" + r + "\"");                          // lone continuation byte
  EXPECT_EQ(Json("\xC3"), "\"" + r + "\"");                          // truncated at the end
  EXPECT_EQ(Json("\xC3x"), "\"" + r + "x\"");                        // truncated mid-string
  EXPECT_EQ(Json("\xE6\x97"), "\"" + r + r + "\"");                  // truncated 3-byte sequence
  EXPECT_EQ(Json("\xC0\xAF"), "\"" + r + r + "\"");                  // overlong '/'
  EXPECT_EQ(Json("\xE0\x80\xAF"), "\"" + r + r + r + "\"");          // overlong 3-byte
  EXPECT_EQ(Json("\xED\xA0\x80"), "\"" + r + r + r + "\"");          // UTF-16 surrogate
  EXPECT_EQ(Json("\xF4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // above U+10FFFF
  EXPECT_EQ(Json("\xF8\x88\x80\x80\x80"), "\"" + r + r + r + r + r + "\"");
  // A bad byte does not swallow the valid character after it.
  EXPECT_EQ(Json("\xE6\xC3\xBC"), "\"" + r + "ü\"");
}

TEST(AppendJsonStringTest, OutputOfRandomBytesIsAlwaysValidJson) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 40);
  for (int i = 0; i < 3000; ++i) {
    std::string s(static_cast<size_t>(length(rng)), '\0');
    for (char& c : s) c = static_cast<char>(byte(rng));
    std::string json = Json(s);
    ASSERT_TRUE(test::IsValidJson(json)) << "input #" << i;
  }
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

TEST(AppendJsonStringTest, ValidUtf8RoundTripsExactly) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> ascii(0, 0x7F);
  std::uniform_int_distribution<uint32_t> any(0, 0x10FFFF);
  std::uniform_int_distribution<int> length(0, 30);
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    int n = length(rng);
    for (int k = 0; k < n; ++k) {
      uint32_t cp = (k % 2) ? ascii(rng) : any(rng);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
      AppendUtf8(cp, &s);
    }
    ASSERT_EQ(Decode(Json(s)), s) << "input #" << i;
  }
}

TEST(AppendJsonBase64Test, EncodesRfc4648sVectors) {
  for (auto [bytes, encoded] : std::vector<std::pair<std::string_view, std::string_view>>{
           {"", R"("")"},
           {"f", R"("Zg==")"},
           {"fo", R"("Zm8=")"},
           {"foo", R"("Zm9v")"},
           {"foob", R"("Zm9vYg==")"},
           {"fooba", R"("Zm9vYmE=")"},
           {"foobar", R"("Zm9vYmFy")"},
           {std::string_view("\xff\x00\xfe", 3), R"("/wD+")"},
       }) {
    std::string out = "x";
    AppendJsonBase64(bytes, &out);
    EXPECT_EQ(out, "x" + std::string(encoded)) << bytes;
  }
}

// Encoded in pieces (EVP_EncodeBlock takes an int): pieces join without
// padding in between.
TEST(AppendJsonBase64Test, LongInputsEncodeAsOne) {
  const std::string bytes((3 << 20) + 2, 'f');
  std::string out;
  AppendJsonBase64(bytes, &out);
  ASSERT_EQ(out.size(), 2 + 4 * (((3 << 20) + 2 + 2) / 3));
  EXPECT_EQ(out.find('='), out.size() - 2) << "padding only at the end";
  EXPECT_EQ(out.substr(1, 4), "ZmZm");
  EXPECT_EQ(out.substr(out.size() - 5), "ZmY=\"");
}

TEST(IsValidUtf8Test, TellsWhetherAppendJsonStringKeepsEveryByte) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain \x01 \u00e9 \U0001F600"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));          // cut short
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // a surrogate
}

}  // namespace
}  // namespace catchall
