#include "query/query_service.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <optional>
#include <string>

#include "engine/byte_order_mark.h"
#include "engine/domain.h"
#include "engine/json_numbers.h"
#include "engine/json_writer.h"
#include "query_probe.h"

namespace catchall {
namespace {

constexpr std::string_view kPathHelp = "expected GET /domains/{domain} or POST /domains/lookup";

// Reads the domains of a lookup body: {"domains": ["a.com", ...]} or a bare
// JSON array of strings.
Status ParseLookupBody(std::string_view body, size_t max, std::vector<std::string>* out) {
  body = WithoutByteOrderMark(body);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::error_code error = parser.parse(body.data(), body.size()).get(root);
  if (error == simdjson::NUMBER_ERROR) {
    // Valid JSON with an integer beyond 64 bits (in a field we ignore):
    // read it as a double rather than refuse the body.
    if (std::optional<std::string> widened = FitOutOfRangeNumbers(body)) {
      error = parser.parse(*widened).get(root);
    }
  }
  if (error) {
    return Status::InvalidArgument(
        fmt::format("malformed JSON: {}", simdjson::error_message(error)));
  }
  simdjson::dom::array array;
  if (root.is_object()) {
    if (root["domains"].get_array().get(array) != simdjson::SUCCESS) {
      return Status::InvalidArgument(R"(expected {"domains": ["example.com", ...]})");
    }
  } else if (root.get_array().get(array) != simdjson::SUCCESS) {
    return Status::InvalidArgument(R"(expected {"domains": ["example.com", ...]})");
  }
  if (array.size() > max) {
    return Status::TooLarge(
        fmt::format("{} domains requested; at most {} per lookup", array.size(), max));
  }
  for (simdjson::dom::element e : array) {
    std::string_view s;
    if (e.get_string().get(s)) {
      return Status::InvalidArgument(
          fmt::format("item {} of \"domains\" is not a string", out->size()));
    }
    out->emplace_back(s);
  }
  return Status::Ok();
}

// Every failure to read the store is the API's 503 store_unavailable.
HttpResponse StoreUnavailable(const Status& s) {
  return HttpResponse::FromStatus(Status::Unavailable(s.message()), "store_unavailable");
}

}  // namespace

QueryService::QueryService(QueryOptions options, const StatusReader* reader, Metrics* metrics)
    : options_(options),
      reader_(reader),
      probe_(metrics ? std::make_unique<QueryProbe>(*metrics) : nullptr) {}

QueryService::~QueryService() = default;

namespace {
// parts[0] == "domains"
bool IsDomainPath(const std::vector<std::string_view>& parts) {
  return parts.size() == 2 && !parts[1].empty();
}
}  // namespace

bool QueryService::ServesPath(std::string_view path) { return IsDomainPath(SplitPath(path)); }

void QueryService::Handle(const HttpRequest& request, const Responder& respond) {
  std::vector<std::string_view> parts = SplitPath(request.path());
  if (!IsDomainPath(parts)) {
    return respond(HttpResponse::Error(404, "not_found", kPathHelp));
  }
  if (parts[1] == "lookup" && request.method == HttpMethod::kPost) {
    return respond(Lookup(request));
  }
  if (request.method != HttpMethod::kGet) {
    return respond(HttpResponse::MethodNotAllowed(parts[1] == "lookup" ? "GET, POST" : "GET"));
  }
  respond(GetOne(parts[1]));
}

HttpResponse QueryService::GetOne(std::string_view segment) const {
  Result<std::string> decoded = PercentDecode(segment);
  Result<std::string> domain =
      decoded.ok() ? NormalizeDomain(*decoded) : Result<std::string>(decoded.status());
  if (!domain.ok()) {
    if (probe_) probe_->OnInvalid();
    return HttpResponse::Error(400, "invalid_domain", domain.status().message());
  }
  Result<DomainCounts> counts = reader_->Get(*domain);
  if (!counts.ok()) return StoreUnavailable(counts.status());
  if (probe_) probe_->OnAnswer(Classify(*counts, options_.catchall_threshold));
  std::string body;
  body.reserve(128);
  AppendDomainStatusJson(*domain, *counts, options_.catchall_threshold, &body);
  return HttpResponse::Json(200, std::move(body));
}

HttpResponse QueryService::Lookup(const HttpRequest& request) const {
  std::vector<std::string> inputs;
  Status parsed = ParseLookupBody(request.body, options_.max_lookup_domains, &inputs);
  if (!parsed.ok()) {
    return HttpResponse::Error(
        parsed.code() == Code::kTooLarge ? 413 : 400,
        parsed.code() == Code::kTooLarge ? "too_many_domains" : "malformed_body", parsed.message());
  }
  if (probe_) probe_->OnLookup(inputs.size());
  // Normalize all, read the valid ones in one MultiGet, answer in input order.
  std::vector<Result<std::string>> normalized;
  std::vector<std::string> valid;
  normalized.reserve(inputs.size());
  for (const std::string& input : inputs) {
    normalized.push_back(NormalizeDomain(input));
    if (normalized.back().ok()) valid.push_back(*normalized.back());
  }
  std::vector<DomainCounts> counts;
  Status s = reader_->MultiGet(valid, &counts);
  if (!s.ok()) return StoreUnavailable(s);
  std::string body = R"({"results":[)";
  size_t next_valid = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) body += ',';
    if (normalized[i].ok()) {
      const DomainCounts& c = counts[next_valid++];
      if (probe_) probe_->OnAnswer(Classify(c, options_.catchall_threshold));
      AppendDomainStatusJson(*normalized[i], c, options_.catchall_threshold, &body);
    } else {
      if (probe_) probe_->OnInvalid();
      body += R"({"domain":)";
      AppendJsonString(inputs[i], &body);
      body += R"(,"error":{"code":"invalid_domain","message":)";
      AppendJsonString(normalized[i].status().message(), &body);
      body += "}}";
    }
  }
  body += "]}";
  return HttpResponse::Json(200, std::move(body));
}

}  // namespace catchall
