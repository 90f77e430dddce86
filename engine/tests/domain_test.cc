#include "engine/domain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace catchall {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

// The normalized form of `input`, or "ERROR: <message>".
std::string Norm(std::string_view input) {
  Result<std::string> r = NormalizeDomain(input);
  return r.ok() ? r.value() : "ERROR: " + r.status().message();
}

// The error message for `input`; fails the test if it normalized.
std::string ErrorOf(std::string_view input) {
  Result<std::string> r = NormalizeDomain(input);
  EXPECT_FALSE(r.ok()) << "'" << input << "' normalized to '" << (r.ok() ? *r : "") << "'";
  if (r.ok()) return {};
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  return r.status().message();
}

TEST(NormalizeDomainTest, LowerCasesAscii) {
  EXPECT_EQ(Norm("example.com"), "example.com");
  EXPECT_EQ(Norm("Example.COM"), "example.com");
  EXPECT_EQ(Norm("EXAMPLE.COM"), "example.com");
  EXPECT_EQ(Norm("Mail-1.Example.Co.UK"), "mail-1.example.co.uk");
}

TEST(NormalizeDomainTest, DropsOneTrailingDot) {
  EXPECT_EQ(Norm("example.com."), "example.com");
  EXPECT_EQ(Norm("Example.COM."), "example.com");
  EXPECT_THAT(ErrorOf("a.com.."), HasSubstr("empty label"));
  EXPECT_THAT(ErrorOf("bücher.de.."), HasSubstr("empty label"));
}

TEST(NormalizeDomainTest, ConvertsInternationalizedNamesToPunycode) {
  EXPECT_EQ(Norm("bücher.de"), "xn--bcher-kva.de");
  EXPECT_EQ(Norm("BÜCHER.de"), "xn--bcher-kva.de");
  EXPECT_EQ(Norm("Bücher.DE."), "xn--bcher-kva.de");
  // IANA's IDN test domains.
  EXPECT_EQ(Norm("例え.テスト"), "xn--r8jz45g.xn--zckzah");
  EXPECT_EQ(Norm("пример.испытание"), "xn--e1afmkfd.xn--80akhbyknj4f");
  EXPECT_EQ(Norm("ПРИМЕР.ИСПЫТАНИЕ"), "xn--e1afmkfd.xn--80akhbyknj4f");
  EXPECT_EQ(Norm("москва.рф"), "xn--80adxhks.xn--p1ai");
  // Already-converted names are unchanged (and their case folded).
  EXPECT_EQ(Norm("xn--bcher-kva.de"), "xn--bcher-kva.de");
  EXPECT_EQ(Norm("XN--BCHER-KVA.DE"), "xn--bcher-kva.de");
  // Mixed: one IDN label among ASCII ones.
  EXPECT_EQ(Norm("mail.bücher.example"), "mail.xn--bcher-kva.example");
}

TEST(NormalizeDomainTest, UsesNonTransitionalProcessing) {
  // IDNA2008 keeps sharp s (transitional processing would give "fass.de").
  EXPECT_EQ(Norm("faß.de"), "xn--fa-hia.de");
}

TEST(NormalizeDomainTest, MapsFullwidthCharactersAndIdeographicFullStop) {
  EXPECT_EQ(Norm("bücher。de"), "xn--bcher-kva.de");
  EXPECT_EQ(Norm("例え。テスト"), "xn--r8jz45g.xn--zckzah");
  EXPECT_EQ(Norm("example。com"), "example.com");
  EXPECT_EQ(Norm("ｅｘａｍｐｌｅ．ｃｏｍ"), "example.com");
  // UTS#46 maps the soft hyphen to nothing.
  EXPECT_EQ(Norm("exa\u00admple.com"), "example.com");
  // A trailing ideographic full stop is the one trailing dot.
  EXPECT_EQ(Norm("bücher.de。"), "xn--bcher-kva.de");
}

TEST(NormalizeDomainTest, DropsOnlyOneTrailingDotWhateverItsForm) {
  // "." then "。" is two trailing dots, like "a.com..".
  EXPECT_THAT(ErrorOf("a.com。."), HasSubstr("empty label"));
  EXPECT_THAT(ErrorOf("bücher.de。。"), HasSubstr("empty label"));
}

TEST(NormalizeDomainTest, RejectsInvalidALabels) {
  // "xn--a" decodes to U+0080, a control character.
  EXPECT_THAT(ErrorOf("xn--a.com"), HasSubstr("xn--a.com"));
  EXPECT_THAT(ErrorOf("xn--a.com"), HasSubstr("punycode"));
  EXPECT_THAT(ErrorOf("www.xn--zz.com"), HasSubstr("punycode"));
  // "xn--" with nothing after it.
  EXPECT_THAT(ErrorOf("xn--.com"), HasSubstr("'xn--'"));
  EXPECT_THAT(ErrorOf("xn--abc-.com"), HasSubstr("xn--abc-"));
  EXPECT_THAT(ErrorOf("mail.xn--zz.bücher.de"), HasSubstr("not a valid internationalized"));
}

TEST(NormalizeDomainTest, LabelLengthLimit) {
  const std::string l63(63, 'a');
  const std::string l64(64, 'a');
  EXPECT_EQ(Norm(l63 + ".com"), l63 + ".com");
  EXPECT_EQ(Norm("x." + l63), "x." + l63);
  std::string error = ErrorOf(l64 + ".com");
  EXPECT_THAT(error, HasSubstr(l64));
  EXPECT_THAT(error, HasSubstr("64"));
  EXPECT_THAT(error, HasSubstr("63"));
  EXPECT_THAT(ErrorOf("x." + l64), HasSubstr("64 characters"));
}

TEST(NormalizeDomainTest, TotalLengthLimit) {
  const std::string l63(63, 'a');
  // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253
  std::string d253 = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b');
  ASSERT_EQ(d253.size(), 253u);
  EXPECT_EQ(Norm(d253), d253);
  EXPECT_EQ(Norm(d253 + "."), d253) << "253 characters plus the trailing dot is fine";
  std::string d254 = l63 + "." + l63 + "." + l63 + "." + std::string(62, 'b');
  ASSERT_EQ(d254.size(), 254u);
  std::string error = ErrorOf(d254);
  EXPECT_THAT(error, HasSubstr("254"));
  EXPECT_THAT(error, HasSubstr("253"));
}

TEST(NormalizeDomainTest, TotalLengthLimitAppliesAfterPunycode) {
  // 50 two-byte characters become a 56-character A-label.
  std::string label;
  for (int i = 0; i < 50; ++i) label += "ü";
  const std::string four = label + "." + label + "." + label + "." + label + ".";
  std::string fits = four + std::string(25, 'a');  // 4 * 56 + 4 + 25 = 253
  Result<std::string> ok = NormalizeDomain(fits);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->size(), 253u);
  // 254: libidn2 itself refuses it (its message counts the length octets).
  EXPECT_THAT(ErrorOf(four + std::string(26, 'a')),
              AnyOf(HasSubstr("the limit is 253"), HasSubstr("longer than")));
}

TEST(NormalizeDomainTest, RejectsVeryLongInputEarly) {
  std::string huge(5000, 'a');
  EXPECT_THAT(ErrorOf(huge), HasSubstr("5000 bytes"));
  std::string huge_idn;
  for (int i = 0; i < 600; ++i) huge_idn += "ü";
  EXPECT_THAT(ErrorOf(huge_idn), HasSubstr("1200 bytes"));
}

TEST(NormalizeDomainTest, RejectsEmptyNames) {
  EXPECT_THAT(ErrorOf(""), HasSubstr("empty"));
  EXPECT_THAT(ErrorOf("."), HasSubstr("empty"));
  EXPECT_THAT(ErrorOf(".."), HasSubstr("empty"));
  EXPECT_THAT(ErrorOf("。"), HasSubstr("empty"));
}

TEST(NormalizeDomainTest, RejectsEmptyLabels) {
  EXPECT_THAT(ErrorOf("a..b"), HasSubstr("'a..b' has an empty label"));
  EXPECT_THAT(ErrorOf(".example.com"), HasSubstr("'.example.com' has an empty label"));
  EXPECT_THAT(ErrorOf("example..com."), HasSubstr("empty label"));
}

TEST(NormalizeDomainTest, RejectsHyphensAtLabelEdges) {
  EXPECT_THAT(ErrorOf("-example.com"), HasSubstr("label '-example' must not start or end"));
  EXPECT_THAT(ErrorOf("example-.com"), HasSubstr("label 'example-'"));
  EXPECT_THAT(ErrorOf("mail.example.-com"), HasSubstr("'-com'"));
  EXPECT_THAT(ErrorOf("example.com-"), HasSubstr("'com-'"));
  // Inner hyphens are fine, even several.
  EXPECT_EQ(Norm("my--example.com"), "my--example.com");
  EXPECT_EQ(Norm("a-b-c.com"), "a-b-c.com");
}

TEST(NormalizeDomainTest, RejectsCharactersOutsideLetterDigitHyphen) {
  std::string error = ErrorOf("my_domain.com");
  EXPECT_THAT(error, HasSubstr("'_'"));
  EXPECT_THAT(error, HasSubstr("my_domain.com"));
  EXPECT_THAT(ErrorOf("my domain.com"), HasSubstr("' '"));
  error = ErrorOf("user@example.com");
  EXPECT_THAT(error, HasSubstr("'@'"));
  EXPECT_THAT(error, HasSubstr("user@example.com"));
  EXPECT_THAT(ErrorOf("example.com/path"), HasSubstr("'/'"));
  EXPECT_THAT(ErrorOf("example.com:80"), HasSubstr("':'"));
  EXPECT_THAT(ErrorOf("a*.com"), HasSubstr("'*'"));
  EXPECT_THAT(ErrorOf(" example.com"), HasSubstr("' '"));
  EXPECT_THAT(ErrorOf("example.com "), HasSubstr("' '"));
  // Quotes and backslashes are shown escaped, so the message stays readable.
  EXPECT_THAT(ErrorOf("a\"b.com"), HasSubstr("\\x22"));
  EXPECT_THAT(ErrorOf("a\\b.com"), HasSubstr("\\x5c"));
  EXPECT_THAT(ErrorOf("a\tb.com"), HasSubstr("\\x09"));
}

TEST(NormalizeDomainTest, RejectsNulBytes) {
  EXPECT_THAT(ErrorOf(std::string_view("exa\0mple.com", 12)), HasSubstr("\\x00"));
  EXPECT_THAT(ErrorOf(std::string_view("example.com\0", 12)), HasSubstr("\\x00"));
  EXPECT_THAT(ErrorOf(std::string_view("b\xc3\xbc\0cher.de", 10)), HasSubstr("NUL"));
}

TEST(NormalizeDomainTest, RejectsAllNumericTopLevelLabel) {
  EXPECT_THAT(ErrorOf("1.2.3.4"), HasSubstr("all-numeric"));
  EXPECT_THAT(ErrorOf("1.2.3.4"), HasSubstr("1.2.3.4"));
  EXPECT_THAT(ErrorOf("example.123"), HasSubstr("all-numeric"));
  EXPECT_THAT(ErrorOf("127.0.0.1."), HasSubstr("all-numeric"));
  EXPECT_EQ(Norm("123.com"), "123.com");
  EXPECT_EQ(Norm("1.2.3.com"), "1.2.3.com");
  EXPECT_EQ(Norm("example.c0m"), "example.c0m");
  EXPECT_EQ(Norm("example.1-2"), "example.1-2") << "a hyphen makes a label non-numeric";
}

TEST(NormalizeDomainTest, AcceptsSingleLabelNames) {
  EXPECT_EQ(Norm("localhost"), "localhost");
  EXPECT_EQ(Norm("LOCALHOST."), "localhost");
  EXPECT_EQ(Norm("bücher"), "xn--bcher-kva");
  EXPECT_THAT(ErrorOf("42"), HasSubstr("all-numeric"));
}

TEST(NormalizeDomainTest, RejectsInvalidUtf8) {
  EXPECT_THAT(ErrorOf("\xff.com"), HasSubstr("\\xff"));
  EXPECT_THAT(ErrorOf("b\xc3.com"), HasSubstr("\\xc3"));          // truncated sequence
  EXPECT_THAT(ErrorOf("\xc0\xae.com"), HasSubstr("\\xc0\\xae"));  // overlong '.'
  EXPECT_THAT(ErrorOf("\xed\xa0\x80.com"),
              HasSubstr("not a valid internationalized"));  // surrogate
}

// A message shows what the client sent: valid UTF-8 as it is (a probe
// read 'b\xc3\xbccher-.de' for bücher-.de), bytes that are not UTF-8 and
// invisible characters escaped.
TEST(NormalizeDomainTest, MessagesShowVisibleCharactersAndEscapeTheRest) {
  EXPECT_THAT(ErrorOf("bücher-.de"), HasSubstr("'bücher-.de'"));
  EXPECT_THAT(ErrorOf("пример-.рф"), HasSubstr("'пример-.рф'"));
  EXPECT_THAT(ErrorOf("例え.テスト/x"), HasSubstr("例え.テスト/x"));
  EXPECT_THAT(ErrorOf("a\U0001F600b-.com"), HasSubstr("a\U0001F600b"));  // 4 bytes
  EXPECT_THAT(ErrorOf("b\xc3(.com"), HasSubstr("b\\xc3(.com"));
  EXPECT_THAT(ErrorOf("a\xc2\x85"
                      "b.com"),
              HasSubstr("a\\xc2\\x85b"));                                 // C1 control
  EXPECT_THAT(ErrorOf("a\u200bb-.com"), HasSubstr("a\\xe2\\x80\\x8bb"));  // zero width
  EXPECT_THAT(ErrorOf("a\u202eb-.com"), HasSubstr("a\\xe2\\x80\\xaeb"));  // bidi override
  EXPECT_THAT(ErrorOf("a\ufeffb-.com"), HasSubstr("a\\xef\\xbb\\xbfb"));  // BOM
  EXPECT_THAT(ErrorOf("a\u061cb-.com"), HasSubstr("a\\xd8\\x9cb"));       // Arabic letter mark
  EXPECT_THAT(ErrorOf("a\U000E0041b-.com"), HasSubstr("a\\xf3\\xa0\\x81\\x81b"));  // a tag
  // Cut at 80 bytes, never inside a character.
  std::string long_name = std::string(79, 'a') + "ü" + std::string(300, 'b') + ".com";
  std::string error = ErrorOf(long_name);
  EXPECT_THAT(error, HasSubstr(std::string(79, 'a') + "\\xc3..."));
  EXPECT_THAT(error, Not(HasSubstr("ü")));
}

TEST(NormalizeDomainTest, RejectsCodePointsIdnaDisallows) {
  EXPECT_THAT(ErrorOf("example\u2028.com"), HasSubstr("not a valid internationalized"));
  EXPECT_THAT(ErrorOf("\U0001F4A9.la"), HasSubstr("not a valid internationalized"));
  EXPECT_THAT(ErrorOf("bü_cher.de"), HasSubstr("_"));
}

TEST(NormalizeDomainTest, IsIdempotent) {
  for (std::string_view input : {"Example.COM.", "bücher.de", "例え。テスト",
                                 "ｅｘａｍｐｌｅ．ｃｏｍ", "faß.de", "localhost"}) {
    Result<std::string> once = NormalizeDomain(input);
    ASSERT_TRUE(once.ok()) << input << ": " << once.status().ToString();
    Result<std::string> twice = NormalizeDomain(*once);
    ASSERT_TRUE(twice.ok()) << *once << ": " << twice.status().ToString();
    EXPECT_EQ(*twice, *once);
  }
}

// Every normalized domain has the shape; the shape is not a validation.
TEST(HasNormalizedDomainShapeTest, TrueForEveryNormalizedFormAndOnlyLowerCaseLdhAndDots) {
  for (const char* input : {"Example.COM.", "bücher.de", "xn--bcher-kva.de", "a-1.b2.com"}) {
    Result<std::string> normalized = NormalizeDomain(input);
    ASSERT_TRUE(normalized.ok()) << input;
    EXPECT_TRUE(HasNormalizedDomainShape(*normalized)) << *normalized;
  }
  EXPECT_TRUE(HasNormalizedDomainShape(std::string(kMaxDomainLength, 'a')));
  EXPECT_TRUE(HasNormalizedDomainShape("a..b"));  // a shape, not a validation
  EXPECT_FALSE(HasNormalizedDomainShape(std::string(kMaxDomainLength + 1, 'a')));
  EXPECT_FALSE(HasNormalizedDomainShape(""));
  EXPECT_FALSE(HasNormalizedDomainShape("UP.COM"));
  EXPECT_FALSE(HasNormalizedDomainShape("a_b.com"));
  EXPECT_FALSE(HasNormalizedDomainShape("caf\xc3\xa9.com"));
}

TEST(IsNormalizedDomainTest, TrueOnlyForCanonicalForms) {
  EXPECT_TRUE(IsNormalizedDomain("example.com"));
  EXPECT_TRUE(IsNormalizedDomain("xn--bcher-kva.de"));
  EXPECT_TRUE(IsNormalizedDomain("localhost"));
  EXPECT_FALSE(IsNormalizedDomain("Example.com"));
  EXPECT_FALSE(IsNormalizedDomain("example.com."));
  EXPECT_FALSE(IsNormalizedDomain("bücher.de"));
  EXPECT_FALSE(IsNormalizedDomain("XN--BCHER-KVA.DE"));
  EXPECT_FALSE(IsNormalizedDomain(""));
  EXPECT_FALSE(IsNormalizedDomain("a..b"));
  EXPECT_FALSE(IsNormalizedDomain("1.2.3.4"));
  EXPECT_FALSE(IsNormalizedDomain("xn--a.com"));
}

}  // namespace
}  // namespace catchall
