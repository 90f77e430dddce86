#include "engine/event_parser.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace catchall {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

// An item as reported to the callback, copied out of the parser's buffers.
struct Item {
  size_t index = 0;
  bool ok = false;
  std::string error;
  std::optional<std::string> domain, type, id;
  std::optional<int64_t> ts;
};

struct BatchOutcome {
  Status status;
  std::vector<Item> items;
};

BatchOutcome Parse(EventParser& parser, std::string_view body, BatchFormat format,
                   size_t max_items = 1000) {
  BatchOutcome out;
  out.status =
      parser.ParseBatch(body, format, max_items, [&](size_t index, const Result<RawEvent>& r) {
        Item item;
        item.index = index;
        item.ok = r.ok();
        if (!r.ok()) {
          item.error = r.status().message();
        } else {
          if (r->domain) item.domain = std::string(*r->domain);
          if (r->type) item.type = std::string(*r->type);
          if (r->id) item.id = std::string(*r->id);
          item.ts = r->ts;
        }
        out.items.push_back(std::move(item));
      });
  return out;
}

BatchOutcome Parse(std::string_view body, BatchFormat format, size_t max_items = 1000) {
  EventParser parser;
  return Parse(parser, body, format, max_items);
}

void ExpectIndexesDense(const std::vector<Item>& items) {
  for (size_t i = 0; i < items.size(); ++i) EXPECT_EQ(items[i].index, i);
}

TEST(DetectBatchFormatTest, UsesContentTypeThenFirstByte) {
  EXPECT_EQ(DetectBatchFormat("application/x-ndjson", "[]"), BatchFormat::kNdjson);
  EXPECT_EQ(DetectBatchFormat("application/jsonl; charset=utf-8", "[1]"), BatchFormat::kNdjson);
  EXPECT_EQ(DetectBatchFormat("application/json-seq", "["), BatchFormat::kNdjson);
  EXPECT_EQ(DetectBatchFormat("application/json", "[{}]"), BatchFormat::kJsonArray);
  EXPECT_EQ(DetectBatchFormat("application/json", " \r\n\t [ ]"), BatchFormat::kJsonArray);
  EXPECT_EQ(DetectBatchFormat("application/json", "{}\n{}"), BatchFormat::kJsonObjectOrNdjson);
  EXPECT_EQ(DetectBatchFormat("text/plain", "{}\n{}"), BatchFormat::kNdjson);
  EXPECT_EQ(DetectBatchFormat("", "  [ {} ]"), BatchFormat::kJsonArray);
  EXPECT_EQ(DetectBatchFormat("", "{\"domain\":\"a.com\"}"), BatchFormat::kNdjson);
  EXPECT_EQ(DetectBatchFormat("", ""), BatchFormat::kNdjson);
  EXPECT_EQ(DetectBatchFormat("", " \n "), BatchFormat::kNdjson);
}

TEST(DetectBatchFormatTest, MediaTypesAreCaseInsensitive) {
  EXPECT_EQ(DetectBatchFormat("Application/X-NDJSON", "[]"), BatchFormat::kNdjson);
  EXPECT_EQ(DetectBatchFormat("APPLICATION/JSONL", "[1]"), BatchFormat::kNdjson);
  EXPECT_EQ(DetectBatchFormat("Application/JSON-Seq", "["), BatchFormat::kNdjson);
  EXPECT_EQ(DetectBatchFormat("Application/JSON", "[{}]"), BatchFormat::kJsonArray);
}

// A pretty-printed object sent as application/json was four broken NDJSON
// lines (a black-box probe, twelfth session).
TEST(ParseBatchTest, AJsonObjectMaySpanLinesAndNdjsonSentAsJsonStillParses) {
  BatchOutcome one = Parse("{\n  \"domain\": \"a.com\",\n  \"type\": \"bounced\"\n}\n",
                           BatchFormat::kJsonObjectOrNdjson);
  ASSERT_TRUE(one.status.ok()) << one.status.ToString();
  ASSERT_EQ(one.items.size(), 1u);
  EXPECT_TRUE(one.items[0].ok) << one.items[0].error;
  EXPECT_EQ(one.items[0].domain, "a.com");
  EXPECT_EQ(one.items[0].type, "bounced");

  BatchOutcome lines = Parse(
      "{\"domain\":\"a.com\",\"type\":\"delivered\"}\n{\"domain\":\"b.com\",\"type\":"
      "\"bounced\"}\n{broken\n",
      BatchFormat::kJsonObjectOrNdjson);
  ASSERT_TRUE(lines.status.ok()) << lines.status.ToString();
  ASSERT_EQ(lines.items.size(), 3u);
  EXPECT_EQ(lines.items[1].domain, "b.com");
  EXPECT_FALSE(lines.items[2].ok);
  ExpectIndexesDense(lines.items);

  EXPECT_EQ(Parse("{\"domain\":\"a.com\"}", BatchFormat::kJsonObjectOrNdjson, 0).status.code(),
            Code::kTooLarge);
}

TEST(ParseObjectTest, ReadsAllFields) {
  EventParser parser;
  auto r = parser.ParseObject(
      R"({"domain":"Example.COM","type":"bounced","id":"m-1","ts":1700000000123})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->domain, "Example.COM");  // not normalized here: ValidateEvent does that
  EXPECT_EQ(r->type, "bounced");
  EXPECT_EQ(r->id, "m-1");
  EXPECT_EQ(r->ts, 1700000000123);
}

TEST(ParseObjectTest, MissingFieldsAreAbsentNotEmpty) {
  EventParser parser;
  auto r = parser.ParseObject(R"({"domain":"a.com"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->domain, "a.com");
  EXPECT_FALSE(r->type.has_value());
  EXPECT_FALSE(r->id.has_value());
  EXPECT_FALSE(r->ts.has_value());
  auto empty = parser.ParseObject("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->domain.has_value());
}

TEST(ParseObjectTest, UnescapesStrings) {
  EventParser parser;
  auto r = parser.ParseObject(
      R"({"domain":"b\u00fccher.de","type":"deli\u0076ered","id":"q\"b\\s\/\n\t\ud83d\ude00"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->domain, "bücher.de");
  EXPECT_EQ(r->type, "delivered");
  EXPECT_EQ(r->id, "q\"b\\s/\n\t\xF0\x9F\x98\x80");
}

TEST(ParseObjectTest, IgnoresUnknownFieldsOfAnyShape) {
  EventParser parser;
  auto r =
      parser.ParseObject(R"({"x":{"nested":[1,2,{"domain":"evil.com"}]},"domain":"a.com","y":null,)"
                         R"("type":"delivered","z":[true,false],"w":1.5e300})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->domain, "a.com");
  EXPECT_EQ(r->type, "delivered");
}

TEST(ParseObjectTest, RejectsWrongFieldTypes) {
  EventParser parser;
  auto domain = parser.ParseObject(R"({"domain":5,"type":"delivered"})");
  ASSERT_FALSE(domain.ok());
  EXPECT_EQ(domain.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(domain.status().message(), HasSubstr("'domain' must be a string"));
  auto type = parser.ParseObject(R"({"domain":"a.com","type":["delivered"]})");
  EXPECT_THAT(type.status().message(), HasSubstr("'type' must be a string"));
  auto id = parser.ParseObject(R"({"domain":"a.com","id":7})");
  EXPECT_THAT(id.status().message(), HasSubstr("'id' must be a string"));
  auto id_null = parser.ParseObject(R"({"domain":"a.com","id":null})");
  EXPECT_THAT(id_null.status().message(), HasSubstr("'id' must be a string"));
}

TEST(ParseObjectTest, TsMustBeAnInteger) {
  EventParser parser;
  for (const char* bad : {R"({"ts":1.5})", R"({"ts":"123"})", R"({"ts":true})", R"({"ts":null})"}) {
    auto r = parser.ParseObject(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("'ts' must be an integer")) << bad;
  }
  // JSON has one number type: an integral float is that integer.
  for (const char* integral : {R"({"ts":1e3})", R"({"ts":1000.0})"}) {
    auto r = parser.ParseObject(integral);
    ASSERT_TRUE(r.ok()) << integral << ": " << r.status().ToString();
    EXPECT_EQ(r->ts, 1000) << integral;
  }
  // Whole, but past int64: an integer of the right JSON type whose value
  // ValidateEvent refuses as too large (not "not an integer"), like an
  // integer beyond 64 bits.
  for (const char* large : {R"({"domain":"a.com","type":"delivered","ts":9.3e18})",
                            R"({"domain":"a.com","type":"delivered","ts":9223372036854775808})",
                            R"({"domain":"a.com","type":"delivered","ts":99999999999999999999})"}) {
    auto r = parser.ParseObject(large);
    ASSERT_TRUE(r.ok()) << large << ": " << r.status().ToString();
    EXPECT_TRUE(r->ts_too_large) << large;
    std::string_view code;
    Result<Event> event = ValidateEvent(*r, &code);
    ASSERT_FALSE(event.ok()) << large;
    EXPECT_THAT(event.status().message(), HasSubstr("'ts' is too large")) << large;
    EXPECT_EQ(code, "invalid_field") << large;
  }
  // Below -2^63: negative, whatever its size.
  auto very_negative = parser.ParseObject(R"({"ts":-99999999999999999999})");
  ASSERT_TRUE(very_negative.ok()) << very_negative.status().ToString();
  EXPECT_LT(*very_negative->ts, 0);
  auto negative = parser.ParseObject(R"({"ts":-5})");
  ASSERT_TRUE(negative.ok()) << "the parser reads it; ValidateEvent rejects it";
  EXPECT_EQ(negative->ts, -5);
}

TEST(ParseObjectTest, RejectsNonObjectsAndMalformedJson) {
  EventParser parser;
  for (const char* bad : {"[]", "\"a.com\"", "42", "null"}) {
    auto r = parser.ParseObject(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("not a JSON object")) << bad;
  }
  for (const char* bad :
       {"", "{", R"({"domain":"a.com")", R"({"domain" "a.com"})", R"({"domain":"a.com"} x)",
        R"({"domain":"a.com"}{})", R"({"domain":"a.com",})", R"({domain:"a.com"})"}) {
    auto r = parser.ParseObject(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("malformed JSON")) << bad;
  }
}

TEST(ParseObjectTest, AllowsSurroundingWhitespace) {
  // Record values written by kcat and friends often end in a newline.
  EventParser parser;
  for (const char* json :
       {"{\"domain\":\"a.com\"}\n", "  {\"domain\":\"a.com\"}  \r\n", "\t{\"domain\":\"a.com\"}"}) {
    auto r = parser.ParseObject(json);
    ASSERT_TRUE(r.ok()) << json << ": " << r.status().ToString();
    EXPECT_EQ(r->domain, "a.com");
  }
}

TEST(ParseObjectTest, ParserIsReusableAcrossCallsOfDifferentSizes) {
  EventParser parser;
  std::string big = R"({"domain":")" + std::string(5000, 'a') + R"(.com","type":"delivered"})";
  auto r1 = parser.ParseObject(big);
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->domain->size(), 5004u);
  auto r2 = parser.ParseObject(R"({"domain":"b.com"})");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->domain, "b.com");
  EXPECT_FALSE(r2->type.has_value());
}

TEST(ParseBatchNdjsonTest, ParsesLinesSkippingBlankOnes) {
  auto out = Parse(
      "\n"
      R"({"domain":"a.com","type":"delivered"})"
      "\n\n   \n\t\n"
      R"({"domain":"b.com","type":"bounced","id":"x","ts":5})"
      "\n",
      BatchFormat::kNdjson);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.items.size(), 2u);
  ExpectIndexesDense(out.items);
  EXPECT_EQ(out.items[0].domain, "a.com");
  EXPECT_EQ(out.items[1].domain, "b.com");
  EXPECT_EQ(out.items[1].type, "bounced");
  EXPECT_EQ(out.items[1].id, "x");
  EXPECT_EQ(out.items[1].ts, 5);
}

TEST(ParseBatchNdjsonTest, AcceptsCrlfWhitespaceAndNoFinalNewline) {
  auto out = Parse(
      "  {\"domain\":\"a.com\",\"type\":\"delivered\"}  \r\n"
      "\r\n"
      "\t{ \"domain\" : \"b.com\" , \"type\" : \"delivered\" }\t\r\n"
      "{\"domain\":\"c.com\",\"type\":\"bounced\"}",
      BatchFormat::kNdjson);
  ASSERT_TRUE(out.status.ok());
  ASSERT_EQ(out.items.size(), 3u);
  for (const Item& item : out.items) EXPECT_TRUE(item.ok) << item.error;
  EXPECT_EQ(out.items[0].domain, "a.com");
  EXPECT_EQ(out.items[1].domain, "b.com");
  EXPECT_EQ(out.items[2].domain, "c.com");
  EXPECT_EQ(out.items[2].type, "bounced");
}

TEST(ParseBatchNdjsonTest, ReadsJsonTextSequenceRecords) {
  // RFC 7464: each record starts with the record separator (0x1E).
  auto out = Parse(
      "\x1e{\"domain\":\"a.com\",\"type\":\"delivered\"}\n"
      "\x1e{\"domain\":\"b.com\",\"type\":\"bounced\",\"id\":\"k\"}\n",
      BatchFormat::kNdjson);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.items.size(), 2u);
  for (const Item& item : out.items) EXPECT_TRUE(item.ok) << item.error;
  EXPECT_EQ(out.items[0].domain, "a.com");
  EXPECT_EQ(out.items[1].domain, "b.com");
  EXPECT_EQ(out.items[1].id, "k");
}

TEST(ParseBatchTest, ALeadingByteOrderMarkIsSkippedInEveryFormat) {
  const std::string bom = "\xEF\xBB\xBF";
  const std::string item = R"({"domain":"a.com","type":"delivered"})";
  EXPECT_EQ(DetectBatchFormat("", bom + "[" + item + "]"), BatchFormat::kJsonArray);
  EXPECT_EQ(DetectBatchFormat("application/json", bom + item), BatchFormat::kJsonObjectOrNdjson);
  for (const auto& [body, format] : std::vector<std::pair<std::string, BatchFormat>>{
           {bom + "[" + item + "]", BatchFormat::kJsonArray},
           {bom + item + "\n", BatchFormat::kNdjson},
           {bom + item, BatchFormat::kJsonObjectOrNdjson}}) {
    auto out = Parse(body, format);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    ASSERT_EQ(out.items.size(), 1u);
    EXPECT_TRUE(out.items[0].ok) << out.items[0].error;
    EXPECT_EQ(out.items[0].domain, "a.com");
  }
}

TEST(ParseBatchTest, ABodyOfOnlyAByteOrderMarkIsAnEmptyBatch) {
  const std::string bom = "\xEF\xBB\xBF";
  EXPECT_EQ(DetectBatchFormat("", bom), BatchFormat::kNdjson);
  auto out = Parse(bom, BatchFormat::kNdjson);
  EXPECT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_TRUE(out.items.empty());
  EXPECT_EQ(DetectBatchFormat("", bom + " \n ["), BatchFormat::kJsonArray);
}

// The positions an error gives count the client's bytes, the mark's too.
TEST(ParseBatchTest, ErrorPositionsCountAByteOrderMark) {
  const std::string bom = "\xEF\xBB\xBF";
  const std::string cut = R"([{"domain":"a.com","type":"delivered"})";  // 38 bytes, no "]"
  auto without = Parse(cut, BatchFormat::kJsonArray);
  auto with = Parse(bom + cut, BatchFormat::kJsonArray);
  EXPECT_THAT(without.status.message(), ::testing::HasSubstr("ends after 38 bytes"));
  EXPECT_THAT(with.status.message(), ::testing::HasSubstr("ends after 41 bytes"));
  const std::string more = "[]x";
  EXPECT_THAT(Parse(bom + more, BatchFormat::kJsonArray).status.message(),
              ::testing::HasSubstr("closed after 5 bytes"));
}

TEST(ParseBatchTest, AByteOrderMarkAfterTheStartIsNotSkipped) {
  // Only the body's first bytes can be a byte-order mark; inside, it is a
  // character the JSON does not allow there.
  auto out = Parse(R"({"domain":"a.com","type":"delivered"})"
                   "\n\xEF\xBB\xBF{\"domain\":\"b.com\",\"type\":\"delivered\"}\n",
                   BatchFormat::kNdjson);
  ASSERT_TRUE(out.status.ok());
  ASSERT_EQ(out.items.size(), 2u);
  EXPECT_TRUE(out.items[0].ok);
  EXPECT_FALSE(out.items[1].ok);
}

TEST(ParseBatchNdjsonTest, EmptyBodyHasNoItems) {
  EXPECT_TRUE(Parse("", BatchFormat::kNdjson).items.empty());
  EXPECT_TRUE(Parse("\n\r\n  \n", BatchFormat::kNdjson).items.empty());
  EXPECT_TRUE(Parse("\n\r\n  \n", BatchFormat::kNdjson).status.ok());
}

TEST(ParseBatchNdjsonTest, ReportsBadItemsAndKeepsGoing) {
  auto out = Parse(
      "{\"domain\":\"a.com\",\"type\":\"delivered\"}\n"
      "[1,2]\n"                                          // 1: not an object
      "{\"domain\":5,\"type\":\"delivered\"}\n"          // 2: domain not a string
      "{\"domain\":\"b.com\",\"ts\":1.5}\n"              // 3: ts float
      "{\"domain\":\"c.com\",\"ts\":\"1\"}\n"            // 4: ts string
      "{\"domain\":\"d.com\"} {\"domain\":\"e.com\"}\n"  // 5: two objects on a line
      "{\"domain\":\"f.com\"} garbage\n"                 // 6: trailing garbage
      "{\"domain\":\"g.com\"\n"                          // 7: truncated
      "not json at all\n"                                // 8
      "{\"domain\":\"h.com\",\"type\":\"bounced\",\"extra\":{\"a\":[1]}}\n",  // 9: fine
      BatchFormat::kNdjson);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.items.size(), 10u);
  ExpectIndexesDense(out.items);
  EXPECT_TRUE(out.items[0].ok);
  EXPECT_EQ(out.items[0].domain, "a.com");
  EXPECT_THAT(out.items[1].error, HasSubstr("not a JSON object"));
  EXPECT_THAT(out.items[2].error, HasSubstr("'domain' must be a string"));
  EXPECT_THAT(out.items[3].error, HasSubstr("'ts' must be an integer"));
  EXPECT_THAT(out.items[4].error, HasSubstr("'ts' must be an integer"));
  EXPECT_THAT(out.items[5].error, HasSubstr("one object per line"));
  EXPECT_THAT(out.items[6].error, HasSubstr("malformed JSON"));
  EXPECT_THAT(out.items[7].error, HasSubstr("malformed JSON"));
  EXPECT_THAT(out.items[8].error,
              AnyOf(HasSubstr("malformed JSON"), HasSubstr("not a JSON object")));
  for (int i = 1; i <= 8; ++i) EXPECT_FALSE(out.items[i].ok) << i;
  EXPECT_TRUE(out.items[9].ok) << out.items[9].error;
  EXPECT_EQ(out.items[9].domain, "h.com");
  EXPECT_EQ(out.items[9].type, "bounced");
}

TEST(ParseBatchNdjsonTest, UnescapesStrings) {
  auto out = Parse("{\"domain\":\"b\\u00fccher.de\",\"id\":\"\\\"q\\\"\"}\n", BatchFormat::kNdjson);
  ASSERT_EQ(out.items.size(), 1u);
  ASSERT_TRUE(out.items[0].ok) << out.items[0].error;
  EXPECT_EQ(out.items[0].domain, "bücher.de");
  EXPECT_EQ(out.items[0].id, "\"q\"");
}

TEST(ParseBatchNdjsonTest, EnforcesMaxItems) {
  std::string body;
  for (int i = 0; i < 5; ++i) body += "{\"domain\":\"a.com\",\"type\":\"delivered\"}\n\n";
  auto exact = Parse(body, BatchFormat::kNdjson, 5);
  EXPECT_TRUE(exact.status.ok());
  EXPECT_EQ(exact.items.size(), 5u);
  auto over = Parse(body, BatchFormat::kNdjson, 4);
  EXPECT_EQ(over.status.code(), Code::kTooLarge);
  EXPECT_THAT(over.status.message(), HasSubstr("4"));
  EXPECT_EQ(over.items.size(), 4u) << "items before the limit were reported";
  // Blank lines do not count; bad items do.
  auto bad = Parse("x\ny\nz\n", BatchFormat::kNdjson, 2);
  EXPECT_EQ(bad.status.code(), Code::kTooLarge);
}

TEST(ParseBatchArrayTest, ParsesItems) {
  auto out = Parse(
      " [ {\"domain\":\"a.com\",\"type\":\"delivered\"} ,\n"
      "   {\"domain\":\"b.com\",\"type\":\"bounced\",\"id\":\"i\",\"ts\":12} ] \n",
      BatchFormat::kJsonArray);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.items.size(), 2u);
  ExpectIndexesDense(out.items);
  EXPECT_EQ(out.items[0].domain, "a.com");
  EXPECT_EQ(out.items[1].domain, "b.com");
  EXPECT_EQ(out.items[1].id, "i");
  EXPECT_EQ(out.items[1].ts, 12);
  auto empty = Parse("[]", BatchFormat::kJsonArray);
  EXPECT_TRUE(empty.status.ok());
  EXPECT_TRUE(empty.items.empty());
}

// simdjson On-Demand is a forward-only cursor: a bad field ends the reading
// of its object mid-way, and the array iteration must still resume at the
// next item rather than inside the abandoned one.
TEST(ParseBatchArrayTest, ItemsAfterAWrongTypeFieldAreParsedCorrectly) {
  auto out = Parse(R"([
      {"domain":"a.com","type":"delivered"},
      {"domain":5,"type":"bounced","id":"wrong-1","ts":1},
      {"domain":"b.com","type":"bounced","id":"after-1","ts":2},
      {"domain":{"nested":{"domain":"x.com"}},"type":"bounced","id":"wrong-2"},
      {"domain":"c.com","type":"delivered","id":"after-2"},
      {"ts":1.5,"domain":"wrong3.com","type":"bounced","id":"wrong-3"},
      {"domain":"d.com","type":"bounced","ts":4},
      {"type":["delivered",{"domain":"y.com"}],"domain":"wrong4.com"},
      {"domain":"e.com","type":"delivered","ts":5},
      "just a string",
      {"domain":"f.com","type":"bounced"},
      [{"domain":"z.com"}],
      {"id":{"a":[1,2,{"b":"}"}]},"domain":"wrong5.com"},
      {"domain":"g.com","type":"delivered","id":"last"}
    ])",
                   BatchFormat::kJsonArray);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.items.size(), 14u);
  ExpectIndexesDense(out.items);
  struct Want {
    bool ok;
    const char* domain;
    const char* type;
    const char* id;
    std::optional<int64_t> ts;
  };
  const Want want[] = {
      {true, "a.com", "delivered", nullptr, std::nullopt},
      {false, nullptr, nullptr, nullptr, std::nullopt},
      {true, "b.com", "bounced", "after-1", 2},
      {false, nullptr, nullptr, nullptr, std::nullopt},
      {true, "c.com", "delivered", "after-2", std::nullopt},
      {false, nullptr, nullptr, nullptr, std::nullopt},
      {true, "d.com", "bounced", nullptr, 4},
      {false, nullptr, nullptr, nullptr, std::nullopt},
      {true, "e.com", "delivered", nullptr, 5},
      {false, nullptr, nullptr, nullptr, std::nullopt},
      {true, "f.com", "bounced", nullptr, std::nullopt},
      {false, nullptr, nullptr, nullptr, std::nullopt},
      {false, nullptr, nullptr, nullptr, std::nullopt},
      {true, "g.com", "delivered", "last", std::nullopt},
  };
  for (size_t i = 0; i < out.items.size(); ++i) {
    SCOPED_TRACE(i);
    const Item& got = out.items[i];
    ASSERT_EQ(got.ok, want[i].ok) << got.error;
    if (!got.ok) continue;
    EXPECT_EQ(got.domain, want[i].domain);
    EXPECT_EQ(got.type, want[i].type);
    EXPECT_EQ(got.id, want[i].id ? std::optional<std::string>(want[i].id) : std::nullopt);
    EXPECT_EQ(got.ts, want[i].ts);
  }
  EXPECT_THAT(out.items[1].error, HasSubstr("'domain' must be a string"));
  EXPECT_THAT(out.items[3].error, HasSubstr("'domain' must be a string"));
  EXPECT_THAT(out.items[5].error, HasSubstr("'ts' must be an integer"));
  EXPECT_THAT(out.items[7].error, HasSubstr("'type' must be a string"));
  EXPECT_THAT(out.items[9].error, HasSubstr("not a JSON object"));
  EXPECT_THAT(out.items[11].error, HasSubstr("not a JSON object"));
  EXPECT_THAT(out.items[12].error, HasSubstr("'id' must be a string"));
}

TEST(ParseBatchArrayTest, UnknownFieldsAndEscapesInItems) {
  auto out = Parse(
      R"([{"meta":{"domain":"no.com"},"domain":"b\u00FCcher.de","type":"bounced","v":[1,{}]},)"
      R"({"domain":"a.com","type":"delivered","id":"tab\there"}])",
      BatchFormat::kJsonArray);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.items.size(), 2u);
  EXPECT_EQ(out.items[0].domain, "bücher.de");
  EXPECT_EQ(out.items[1].id, "tab\there");
}

TEST(ParseBatchArrayTest, MalformedArraysAreInvalidArgument) {
  const char* bodies[] = {
      R"([{"domain":"a.com","type":"delivered"})",                    // no ']'
      R"([{"domain":"a.com","type":"delivered"},)",                   // no item after ','
      R"([{"domain":"a.com","type":"delivered"},{"domain":"b.com")",  // truncated item
      R"([{"domain":"a.com","type":"delivered"} {"domain":"b.com","type":"x"}])",  // missing ','
      R"([{"domain":"a.com","type":"delivered"}] garbage)",                        // after ']'
      R"([{"domain":"a.com","type":"delivered"}]])",
      R"([{"domain":"a.com","type":"delivered"}][])",
      R"([{"domain" "a.com"}])",
      R"([{"domain":"a.com",}])",
      "[",
      "",
      "   ",
  };
  for (const char* body : bodies) {
    SCOPED_TRACE(body);
    auto out = Parse(body, BatchFormat::kJsonArray);
    EXPECT_EQ(out.status.code(), Code::kInvalidArgument) << out.status.ToString();
    EXPECT_THAT(out.status.message(), HasSubstr("malformed JSON"));
  }
}

TEST(ParseBatchArrayTest, MalformedArrayMessageNamesTheItem) {
  auto out =
      Parse(R"([{"domain":"a.com","type":"delivered"},{"domain":"b.com","type":"delivered"},)"
            R"({"domain":"c.com" "type":"delivered"}])",
            BatchFormat::kJsonArray);
  EXPECT_EQ(out.status.code(), Code::kInvalidArgument);
  EXPECT_THAT(out.status.message(), HasSubstr("item 2"));
  EXPECT_LE(out.items.size(), 2u);
}

TEST(ParseBatchArrayTest, TruncatedArrayMessageSaysWhereTheBodyEnds) {
  for (std::string_view body :
       {std::string_view(R"([{"domain":"a.com","type":"delivered"},)"), std::string_view("["),
        std::string_view(R"([{"domain":"a.com","type":"delivered"}  )")}) {
    SCOPED_TRACE(body);
    auto out = Parse(body, BatchFormat::kJsonArray);
    EXPECT_EQ(out.status.code(), Code::kInvalidArgument);
    EXPECT_THAT(out.status.message(),
                HasSubstr(fmt::format("the body ends after {} bytes, before its array is closed",
                                      body.size())));
  }
}

// A closed array with bytes after it is not "cut short": the message says
// where the array closed (found by a black-box probe: it said the body
// ended before the array was closed).
TEST(ParseBatchArrayTest, TrailingBytesAfterTheArraySayWhereItClosed) {
  const std::string array = R"([{"domain":"a.com","type":"delivered"}])";
  for (std::string suffix : {" x", "{}", " [1]", R"( "]")"}) {
    std::string body = array + suffix;
    SCOPED_TRACE(body);
    auto out = Parse(body, BatchFormat::kJsonArray);
    EXPECT_EQ(out.status.code(), Code::kInvalidArgument);
    EXPECT_THAT(out.status.message(),
                HasSubstr(fmt::format("the array is closed after {} bytes, but more follows",
                                      array.size())));
    EXPECT_THAT(out.status.message(), Not(HasSubstr("before its array is closed")));
  }
  // A brace where a bracket should close, or a missing quote, is neither:
  // the generic message.
  for (std::string_view body : {R"([{"domain":"a.com","type":"delivered"}}])",
                                R"([{"domain":"a.com,"type":"delivered"}])"}) {
    SCOPED_TRACE(body);
    auto out = Parse(body, BatchFormat::kJsonArray);
    EXPECT_EQ(out.status.code(), Code::kInvalidArgument);
    EXPECT_THAT(out.status.message(), Not(HasSubstr("array is closed")));
    EXPECT_THAT(out.status.message(), Not(HasSubstr("before its array")));
  }
}

// Found by fuzz/event_parser_fuzzer: a value that starts like `null` but is
// not made the error locator throw simdjson_error, which escaped the handler
// and terminated the server (POST /events with body `[nx]`).
TEST(ParseBatchArrayTest, MisspelledNullIsInvalidArgumentNotAnException) {
  for (const char* body : {R"([{"domain":"a.com","type":"delivered"},nul])", "[nx]", "[1,n]",
                           "[[1,nulll]]", R"([{"a":nope}])"}) {
    SCOPED_TRACE(body);
    BatchOutcome out;
    ASSERT_NO_THROW(out = Parse(body, BatchFormat::kJsonArray));
    EXPECT_EQ(out.status.code(), Code::kInvalidArgument);
    EXPECT_THAT(out.status.message(), HasSubstr("malformed JSON"));
  }
}

TEST(ParseBatchArrayTest, NotAnArrayIsInvalidArgument) {
  auto out = Parse(R"({"domain":"a.com","type":"delivered"})", BatchFormat::kJsonArray);
  EXPECT_EQ(out.status.code(), Code::kInvalidArgument);
  EXPECT_THAT(out.status.message(), HasSubstr("not a JSON array"));
  EXPECT_TRUE(out.items.empty());
}

TEST(ParseBatchArrayTest, EnforcesMaxItems) {
  std::string body = "[";
  for (int i = 0; i < 5; ++i) {
    if (i) body += ",";
    body += R"({"domain":"a.com","type":"delivered"})";
  }
  body += "]";
  auto exact = Parse(body, BatchFormat::kJsonArray, 5);
  EXPECT_TRUE(exact.status.ok()) << exact.status.ToString();
  EXPECT_EQ(exact.items.size(), 5u);
  auto over = Parse(body, BatchFormat::kJsonArray, 3);
  EXPECT_EQ(over.status.code(), Code::kTooLarge);
  EXPECT_EQ(over.items.size(), 3u);
  auto zero = Parse(body, BatchFormat::kJsonArray, 0);
  EXPECT_EQ(zero.status.code(), Code::kTooLarge);
  EXPECT_TRUE(zero.items.empty());
}

TEST(ParseBatchTest, ParserIsReusableAcrossFormatsAndErrors) {
  EventParser parser;
  auto broken = Parse(parser, R"([{"domain":"a.com"})", BatchFormat::kJsonArray);
  EXPECT_FALSE(broken.status.ok());
  auto nd = Parse(parser, "{\"domain\":\"b.com\"}\n", BatchFormat::kNdjson);
  ASSERT_EQ(nd.items.size(), 1u);
  EXPECT_EQ(nd.items[0].domain, "b.com");
  auto arr = Parse(parser, R"([{"domain":"c.com"}])", BatchFormat::kJsonArray);
  ASSERT_TRUE(arr.status.ok());
  ASSERT_EQ(arr.items.size(), 1u);
  EXPECT_EQ(arr.items[0].domain, "c.com");
  auto obj = parser.ParseObject(R"({"domain":"d.com"})");
  ASSERT_TRUE(obj.ok());
  EXPECT_EQ(obj->domain, "d.com");
}

TEST(ParseBatchTest, LargeBatchRoundTrip) {
  std::string nd;
  std::string arr = "[";
  for (int i = 0; i < 2000; ++i) {
    std::string item = R"({"domain":"d)" + std::to_string(i) + R"(.com","type":")" +
                       (i % 3 ? "delivered" : "bounced") + R"(","ts":)" + std::to_string(i) + "}";
    nd += item + "\n";
    arr += (i ? "," : "") + item;
  }
  arr += "]";
  for (auto [body, format] : {std::pair<std::string_view, BatchFormat>{nd, BatchFormat::kNdjson},
                              {arr, BatchFormat::kJsonArray}}) {
    auto out = Parse(body, format, 100000);
    ASSERT_TRUE(out.status.ok());
    ASSERT_EQ(out.items.size(), 2000u);
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE(out.items[i].ok);
      EXPECT_EQ(out.items[i].domain, "d" + std::to_string(i) + ".com");
      EXPECT_EQ(out.items[i].ts, i);
    }
  }
}

}  // namespace
}  // namespace catchall
