#include "engine/event.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "engine/event_parser.h"
#include "test_util.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;

RawEvent Raw(std::optional<std::string_view> domain, std::optional<std::string_view> type,
             std::optional<std::string_view> id = std::nullopt,
             std::optional<int64_t> ts = std::nullopt) {
  RawEvent raw;
  raw.domain = domain;
  raw.type = type;
  raw.id = id;
  raw.ts = ts;
  return raw;
}

TEST(EventTypeTest, NamesRoundTripAndAreCaseSensitive) {
  EXPECT_EQ(EventTypeName(EventType::kDelivered), "delivered");
  EXPECT_EQ(EventTypeName(EventType::kBounced), "bounced");
  EXPECT_EQ(ParseEventType("delivered"), EventType::kDelivered);
  EXPECT_EQ(ParseEventType("bounced"), EventType::kBounced);
  EXPECT_EQ(ParseEventType("Delivered"), std::nullopt);
  EXPECT_EQ(ParseEventType("bounce"), std::nullopt);
  EXPECT_EQ(ParseEventType(""), std::nullopt);
  EXPECT_EQ(ParseEventType("delivered "), std::nullopt);
}

TEST(ValidateEventTest, NormalizesAndCopiesFields) {
  std::string_view code = "untouched";
  auto e = ValidateEvent(Raw("Bücher.DE.", "bounced", "msg-1", 1700000000000), &code);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->domain, "xn--bcher-kva.de");
  EXPECT_EQ(e->type, EventType::kBounced);
  EXPECT_EQ(e->id, "msg-1");
  EXPECT_EQ(e->ts, 1700000000000);
  EXPECT_TRUE(code.empty()) << code;

  auto minimal = ValidateEvent(Raw("a.com", "delivered"));
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ(minimal->type, EventType::kDelivered);
  EXPECT_TRUE(minimal->id.empty());
  EXPECT_FALSE(minimal->ts.has_value());
  EXPECT_TRUE(ValidateEvent(Raw("a.com", "delivered", std::nullopt, 0)).ok());
}

TEST(ValidateEventTest, MissingFields) {
  std::string_view code;
  auto no_domain = ValidateEvent(Raw(std::nullopt, "delivered"), &code);
  ASSERT_FALSE(no_domain.ok());
  EXPECT_EQ(no_domain.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(code, "missing_field");
  EXPECT_THAT(no_domain.status().message(), HasSubstr("'domain'"));

  auto no_type = ValidateEvent(Raw("a.com", std::nullopt), &code);
  ASSERT_FALSE(no_type.ok());
  EXPECT_EQ(code, "missing_field");
  EXPECT_THAT(no_type.status().message(), HasSubstr("'type'"));
}

TEST(ValidateEventTest, InvalidEventType) {
  std::string_view code;
  auto r = ValidateEvent(Raw("a.com", "opened"), &code);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(code, "invalid_event_type");
  EXPECT_THAT(r.status().message(), HasSubstr("'opened'"));
  ValidateEvent(Raw("a.com", "DELIVERED"), &code).status().PermitUnchecked();
  EXPECT_EQ(code, "invalid_event_type");
  // A huge type is not echoed back in full.
  std::string huge(10000, 'x');
  auto big = ValidateEvent(Raw("a.com", huge), &code);
  EXPECT_EQ(code, "invalid_event_type");
  EXPECT_LT(big.status().message().size(), 200u);
}

TEST(ValidateEventTest, InvalidDomain) {
  std::string_view code;
  auto r = ValidateEvent(Raw("not a domain", "delivered"), &code);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(code, "invalid_domain");
  EXPECT_THAT(r.status().message(), HasSubstr("' '"));
  ValidateEvent(Raw("", "bounced"), &code).status().PermitUnchecked();
  EXPECT_EQ(code, "invalid_domain");
  ValidateEvent(Raw("1.2.3.4", "bounced"), &code).status().PermitUnchecked();
  EXPECT_EQ(code, "invalid_domain");
}

TEST(ValidateEventTest, InvalidOptionalFields) {
  std::string_view code;
  auto empty_id = ValidateEvent(Raw("a.com", "delivered", ""), &code);
  ASSERT_FALSE(empty_id.ok());
  EXPECT_EQ(code, "invalid_field");
  EXPECT_THAT(empty_id.status().message(), HasSubstr("'id'"));

  std::string id256(kMaxEventIdLength, 'i');
  EXPECT_TRUE(ValidateEvent(Raw("a.com", "delivered", id256)).ok());
  std::string id257(kMaxEventIdLength + 1, 'i');
  auto long_id = ValidateEvent(Raw("a.com", "delivered", id257), &code);
  ASSERT_FALSE(long_id.ok());
  EXPECT_EQ(code, "invalid_field");
  EXPECT_THAT(long_id.status().message(), HasSubstr("257"));

  auto negative_ts = ValidateEvent(Raw("a.com", "delivered", std::nullopt, -1), &code);
  ASSERT_FALSE(negative_ts.ok());
  EXPECT_EQ(code, "invalid_field");
  EXPECT_THAT(negative_ts.status().message(), HasSubstr("'ts'"));
}

TEST(ValidateEventTest, ErrorCodePointerIsOptional) {
  EXPECT_FALSE(ValidateEvent(Raw(std::nullopt, std::nullopt)).ok());
  EXPECT_FALSE(ValidateEvent(Raw("a..b", "delivered")).ok());
}

TEST(AppendEventJsonTest, WritesTheTopicRecordFormat) {
  Event e;
  e.domain = "example.com";
  e.type = EventType::kDelivered;
  std::string out = "prefix:";
  AppendEventJson(e, &out);
  EXPECT_EQ(out, R"(prefix:{"domain":"example.com","type":"delivered"})");

  e.type = EventType::kBounced;
  e.id = "abc";
  e.ts = 1234567890123;
  out.clear();
  AppendEventJson(e, &out);
  EXPECT_EQ(out, R"({"domain":"example.com","type":"bounced","id":"abc","ts":1234567890123})");

  e.id.clear();
  e.ts = 0;
  out.clear();
  AppendEventJson(e, &out);
  EXPECT_EQ(out, R"({"domain":"example.com","type":"bounced","ts":0})");
}

class EventRoundTripTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EventRoundTripTest, ParsesBackToTheSameEvent) {
  Event e;
  e.domain = "xn--bcher-kva.de";
  e.type = EventType::kBounced;
  e.id = GetParam();
  e.ts = 1700000000000;
  std::string json;
  AppendEventJson(e, &json);
  EXPECT_TRUE(test::IsValidJson(json)) << json;

  EventParser parser;
  auto raw = parser.ParseObject(json);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString() << " in " << json;
  auto back = ValidateEvent(*raw);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->domain, e.domain);
  EXPECT_EQ(back->type, e.type);
  EXPECT_EQ(back->id, e.id);
  EXPECT_EQ(back->ts, e.ts);
}

std::string AllControlCharacters() {
  std::string s;
  for (int c = 1; c < 0x20; ++c) s.push_back(static_cast<char>(c));
  return s + "\x7f";
}

INSTANTIATE_TEST_SUITE_P(Ids, EventRoundTripTest,
                         ::testing::Values(std::string("plain-id"), std::string("with \"quotes\""),
                                           std::string("back\\slash\\"), std::string("\\\"\\\""),
                                           std::string("line\nbreak\r\ttab"),
                                           AllControlCharacters(), std::string("nul\0byte", 8),
                                           std::string("bücher 日本語 \xF0\x9F\x98\x80"),
                                           std::string("</script><!--"),
                                           std::string(kMaxEventIdLength, 'x')),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return "Id" + std::to_string(param.index);
                         });

TEST(AppendEventJsonTest, InvalidUtf8InIdBecomesReplacementCharacter) {
  Event e;
  e.domain = "a.com";
  e.id = "bad\xff\xfe-id";
  std::string json;
  AppendEventJson(e, &json);
  EXPECT_TRUE(test::IsValidJson(json)) << json;
  EXPECT_EQ(test::JsonStringField(json, "id"), "bad\xEF\xBF\xBD\xEF\xBF\xBD-id");
}

}  // namespace
}  // namespace catchall
