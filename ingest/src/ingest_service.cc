#include "ingest/ingest_service.h"

#include <fmt/format.h>
#include <strings.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <utility>
#include <vector>

#include "engine/domain.h"
#include "engine/event.h"
#include "engine/event_parser.h"
#include "engine/json_writer.h"
#include "engine/this_thread.h"
#include "ingest_probe.h"

namespace catchall {
namespace {

constexpr std::string_view kPathHelp =
    "expected PUT /events/{domain}/delivered, PUT /events/{domain}/bounced or POST /events";

// The answer when the log did not take the records: 507 insufficient_storage
// when its disk is full (the client may retry once space is freed), else
// 503 log_unavailable with Retry-After. `what` prefixes the reason.
HttpResponse NotStored(const Status& s, std::string_view what) {
  std::string message = what.empty() ? s.message() : fmt::format("{}: {}", what, s.message());
  if (s.code() == Code::kNoSpace) {
    return HttpResponse::FromStatus(Status::NoSpace(message), "insufficient_storage");
  }
  return HttpResponse::FromStatus(Status::Unavailable(message), "log_unavailable");
}

// Per-thread parser: simdjson parsers are reused, not shared.
EventParser& ThreadParser() {
  thread_local EventParser parser;
  return parser;
}

LogRecord ToRecord(const Event& event) {
  LogRecord record;
  record.key = event.domain;
  record.value.reserve(event.domain.size() + 48 + event.id.size());
  AppendEventJson(event, &record.value);
  return record;
}

struct RejectedItem {
  size_t index;
  std::string_view code;
  std::string message;
};

std::string BatchBody(size_t accepted, size_t rejected, const std::vector<RejectedItem>& errors,
                      bool truncated) {
  std::string body = fmt::format(R"({{"accepted":{},"rejected":{})", accepted, rejected);
  if (accepted == 0 && rejected > 0) {
    body += R"(,"code":"no_valid_items","message":"every item of the batch was rejected")";
  }
  body += R"(,"errors":[)";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i) body += ',';
    body += fmt::format(R"({{"index":{},"code":)", errors[i].index);
    AppendJsonString(errors[i].code, &body);
    body += R"(,"message":)";
    AppendJsonString(errors[i].message, &body);
    body += '}';
  }
  body += ']';
  if (truncated) body += R"(,"errors_truncated":true)";
  body += '}';
  return body;
}

}  // namespace

IngestService::IngestService(IngestOptions options, LogAppender* log, Metrics* metrics)
    : options_(options),
      log_(log),
      probe_(metrics ? std::make_unique<IngestProbe>(*metrics) : nullptr),
      batch_thread_(options.offload_batch_bytes > 0 ? std::make_unique<boost::asio::thread_pool>(1)
                                                    : nullptr) {
  // Its one thread parses large batches: named for `top -H` before any.
  if (batch_thread_) boost::asio::post(*batch_thread_, [] { NameThisThread("ingest-batch"); });
}

IngestService::~IngestService() { Stop(); }

void IngestService::Stop() {
  // join() waits until the queued batches have run.
  if (batch_thread_) batch_thread_->join();
}

namespace {
// parts[0] == "events"
bool IsBatchPath(const std::vector<std::string_view>& parts) { return parts.size() == 1; }
bool IsSinglePath(const std::vector<std::string_view>& parts) {
  return parts.size() == 3 && !parts[1].empty() && !parts[2].empty();
}
}  // namespace

bool IngestService::ServesPath(std::string_view path) {
  std::vector<std::string_view> parts = SplitPath(path);
  return IsBatchPath(parts) || IsSinglePath(parts);
}

void IngestService::Handle(const HttpRequest& request, const Responder& respond) {
  std::vector<std::string_view> parts = SplitPath(request.path());
  if (IsBatchPath(parts)) {
    if (request.method != HttpMethod::kPost) {
      return respond(HttpResponse::MethodNotAllowed("POST"));
    }
    if (batch_thread_ && request.body.size() >= options_.offload_batch_bytes) {
      // The copy's views still point into the caller's request, which lives
      // until the answer.
      boost::asio::post(*batch_thread_,
                        [this, request, respond] { HandleBatch(request, respond); });
      return;
    }
    return HandleBatch(request, respond);
  }
  if (IsSinglePath(parts)) {
    if (request.method != HttpMethod::kPut) {
      return respond(HttpResponse::MethodNotAllowed("PUT"));
    }
    return HandleSingle(request, parts[1], parts[2], respond);
  }
  respond(HttpResponse::Error(404, "not_found", kPathHelp));
}

void IngestService::HandleSingle(const HttpRequest& request, std::string_view domain_segment,
                                 std::string_view type_segment, const Responder& respond) {
  // Percent-encoded octets of unreserved characters are the same path
  // (RFC 3986, 6.2.2.2): "%64elivered" is "delivered", as the domain's
  // segment is decoded too.
  std::optional<std::string> decoded_type;
  if (type_segment.find('%') != std::string_view::npos) {
    if (Result<std::string> d = PercentDecode(type_segment); d.ok()) {
      decoded_type = std::move(d).value();
      type_segment = *decoded_type;
    }
  }
  auto type = ParseEventType(type_segment);
  if (!type) {
    if (probe_) probe_->OnRejected("invalid_event_type");
    return respond(HttpResponse::Error(
        400, "invalid_event_type",
        fmt::format("unknown event type '{}'; expected 'delivered' or 'bounced'",
                    type_segment.substr(0, 40))));
  }
  Result<std::string> decoded = PercentDecode(domain_segment);
  Result<std::string> domain =
      decoded.ok() ? NormalizeDomain(*decoded) : Result<std::string>(decoded.status());
  if (!domain.ok()) {
    if (probe_) probe_->OnRejected("invalid_domain");
    return respond(HttpResponse::Error(400, "invalid_domain", domain.status().message()));
  }
  Event event;
  event.domain = std::move(domain).value();
  event.type = *type;
  std::string_view key = request.Header("Idempotency-Key");
  // Two keys: which one a retry repeats is anyone's guess, and taking the
  // first counted a retry that sent only the second twice.
  if (size_t keys = request.HeaderCount("Idempotency-Key"); keys > 1) {
    if (probe_) probe_->OnRejected("invalid_idempotency_key");
    return respond(
        HttpResponse::Error(400, "invalid_idempotency_key",
                            fmt::format("Idempotency-Key is sent {} times; send it once", keys)));
  }
  if (!key.empty()) {
    if (key.size() > kMaxEventIdLength) {
      if (probe_) probe_->OnRejected("invalid_idempotency_key");
      return respond(
          HttpResponse::Error(400, "invalid_idempotency_key",
                              fmt::format("Idempotency-Key is {} bytes long; the limit is {}",
                                          key.size(), kMaxEventIdLength)));
    }
    // ASCII only (what HTTP allows in a field value, without obs-text):
    // bytes that are not valid UTF-8 could not round-trip through the
    // record's JSON unchanged, and two different keys would then count as
    // one.
    for (unsigned char c : key) {
      if ((c < 0x20 && c != '\t') || c > 0x7e) {
        if (probe_) probe_->OnRejected("invalid_idempotency_key");
        return respond(HttpResponse::Error(
            400, "invalid_idempotency_key",
            "Idempotency-Key must be ASCII: visible characters, space or tab (no other control "
            "bytes, no non-ASCII bytes)"));
      }
    }
    event.id = std::string(key);
  }
  std::vector<LogRecord> records;
  records.push_back(ToRecord(event));
  EventType event_type = event.type;
  IngestProbe* probe = probe_.get();
  auto done = [respond, probe, event_type](const Status& s) {
    if (!s.ok()) {
      if (probe) probe->OnNotStored(s);
      return respond(NotStored(s, "the event was not acknowledged"));
    }
    if (probe) probe->OnAccepted(event_type, 1);
    respond(HttpResponse::NoContent());
  };
  Status s = log_->Append(std::move(records), done);
  if (!s.ok()) {
    if (probe_) probe_->OnNotStored(s);
    respond(NotStored(s, ""));
  }
}

void IngestService::HandleBatch(const HttpRequest& request, const Responder& respond) {
  // A compressed body would be read as broken JSON ("not valid UTF-8").
  std::string_view coding = request.Header("Content-Encoding");
  constexpr std::string_view kIdentity = "identity";
  if (!coding.empty() && !(coding.size() == kIdentity.size() &&
                           strncasecmp(coding.data(), kIdentity.data(), kIdentity.size()) == 0)) {
    return respond(HttpResponse::Error(
        415, "unsupported_content_encoding",
        fmt::format("Content-Encoding '{}' is not supported; send the body uncompressed",
                    coding.substr(0, 40))));
  }
  BatchFormat format = DetectBatchFormat(request.Header("Content-Type"), request.body);
  std::vector<LogRecord> records;
  std::vector<RejectedItem> errors;
  size_t rejected = 0;
  size_t delivered = 0;
  size_t bounced = 0;
  // Rejected items by code, counted once the body as a whole is read: a
  // body refused whole (413, 400) rejects one request, not its items (a
  // probe's 100,001 empty objects counted 100,000 missing fields).
  std::vector<std::pair<std::string_view, size_t>> rejected_by_code;
  IngestProbe* probe = probe_.get();
  Status parsed = ThreadParser().ParseBatch(
      request.body, format, options_.max_batch_items,
      [&](size_t index, const Result<RawEvent>& raw) {
        std::string_view code = "invalid_item";
        Result<Event> event = raw.ok() ? ValidateEvent(*raw, &code) : raw.status();
        if (!event.ok()) {
          ++rejected;
          auto same = std::find_if(rejected_by_code.begin(), rejected_by_code.end(),
                                   [&](const auto& entry) { return entry.first == code; });
          if (same == rejected_by_code.end()) {
            rejected_by_code.emplace_back(code, 1);
          } else {
            ++same->second;
          }
          if (errors.size() < options_.max_reported_errors) {
            errors.push_back(RejectedItem{index, code, event.status().message()});
          }
          return;
        }
        (event->type == EventType::kBounced ? bounced : delivered) += 1;
        records.push_back(ToRecord(*event));
      });
  if (!parsed.ok()) {
    // The body as a whole is unusable; nothing of it is stored.
    if (probe_) {
      probe_->OnRejected(parsed.code() == Code::kTooLarge ? "too_many_items" : "malformed_body");
    }
    return respond(HttpResponse::Error(
        parsed.code() == Code::kTooLarge ? 413 : 400,
        parsed.code() == Code::kTooLarge ? "too_many_items" : "malformed_body", parsed.message()));
  }
  size_t accepted = records.size();
  if (probe_) {
    probe_->OnBatch(accepted + rejected);
    for (const auto& [code, n] : rejected_by_code) probe_->OnRejected(code, n);
  }
  bool truncated = rejected > errors.size();
  if (accepted == 0) {
    return respond(
        HttpResponse::Json(rejected > 0 ? 422 : 200, BatchBody(0, rejected, errors, truncated)));
  }
  auto done = [respond, probe, accepted, rejected, delivered, bounced, truncated,
               errors = std::move(errors)](const Status& s) {
    if (!s.ok()) {
      if (probe) probe->OnNotStored(s);
      return respond(NotStored(s, "the batch was not acknowledged"));
    }
    if (probe) {
      probe->OnAccepted(EventType::kDelivered, delivered);
      probe->OnAccepted(EventType::kBounced, bounced);
    }
    respond(HttpResponse::Json(200, BatchBody(accepted, rejected, errors, truncated)));
  };
  Status s = log_->Append(std::move(records), std::move(done));
  if (!s.ok()) {
    if (probe_) probe_->OnNotStored(s);
    respond(NotStored(s, ""));
  }
}

}  // namespace catchall
