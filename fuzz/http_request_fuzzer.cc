// Fuzzes the HTTP request path up to the handlers: raw bytes from a client
// go through Beast's request parser with the server's limits, become an
// HttpRequest (the server's own conversion, engine/src/http_wire.h) and are
// dispatched by an HttpRouter to the real IngestService and QueryService,
// over an in-memory log and status reader. Several pipelined requests in one
// input are served in turn, as on a keep-alive connection.
//
// Invariants, for every request:
//  - exactly one response, with a status in 100..599, that Beast serializes
//    into a response that parses back the same;
//  - every status >= 400 has a JSON object body with a non-empty "code" and
//    "message" (405 also an Allow header); bytes Beast refuses get one too;
//  - nothing acknowledged is lost, nothing refused is stored: a 204 from
//    PUT /events means exactly its one event is durable in the log, a 200
//    from POST /events exactly its "accepted" events, and any other answer
//    means nothing was stored; every stored record is a valid event keyed by
//    its normalized domain;
//  - a 200 from GET /domains/{d} reports the reader's counts and the status
//    the rules give them.
//
// The harness reads two headers of its own to steer the fakes:
// "X-Fuzz-Log: sync|refuse|fail" (the log completes appends inside Append,
// refuses them, or fails them; by default it completes them after the
// handler returns, like the real logs) and "X-Fuzz-Store: fail".
#include <simdjson.h>

#include <algorithm>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "engine/domain.h"
#include "engine/domain_status.h"
#include "engine/event.h"
#include "engine/event_parser.h"
#include "engine/http.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/runtime.h"
#include "engine/status_reader.h"
#include "fuzz_check.h"
#include "http_wire.h"
#include "ingest/ingest_service.h"
#include "query/query_service.h"

namespace catchall {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

// Small limits, so that small inputs reach them.
constexpr size_t kMaxBatchItems = 32;
constexpr size_t kMaxReportedErrors = 4;
constexpr size_t kMaxLookupDomains = 16;
constexpr uint64_t kThreshold = 5;
// Requests served from one input, like one keep-alive connection.
constexpr int kMaxRequestsPerInput = 8;

// A log in memory. Appends complete as the request's X-Fuzz-Log says.
class FakeLog : public LogAppender {
 public:
  enum class Mode { kDeferred, kSync, kRefuse, kFail };

  Status Append(std::vector<LogRecord> records, Callback done) override {
    switch (mode) {
      case Mode::kRefuse: return Status::Unavailable("fuzz: the log refuses appends");
      case Mode::kFail: done(Status::IoError("fuzz: the write failed")); return Status::Ok();
      case Mode::kSync:
        Store(std::move(records));
        done(Status::Ok());
        return Status::Ok();
      case Mode::kDeferred:
        pending_.push_back(Pending{std::move(records), std::move(done)});
        return Status::Ok();
    }
    return Status::Internal("unreachable");
  }
  int32_t partition_count() const override { return 1; }
  Status Health() const override { return Status::Ok(); }
  Status Flush(std::chrono::milliseconds /*timeout*/) override { return Status::Ok(); }

  // Makes the deferred appends durable and runs their callbacks, as the
  // log's writer thread would after the handler returned.
  void CompletePending() {
    std::vector<Pending> now;
    now.swap(pending_);
    for (Pending& p : now) {
      Store(std::move(p.records));
      p.done(Status::Ok());
    }
  }

  void Reset(Mode m) {
    mode = m;
    durable.clear();
    pending_.clear();
  }

  Mode mode = Mode::kDeferred;
  std::vector<LogRecord> durable;  // records made durable for this request

 private:
  struct Pending {
    std::vector<LogRecord> records;
    Callback done;
  };
  void Store(std::vector<LogRecord> records) {
    for (LogRecord& r : records) durable.push_back(std::move(r));
  }
  std::vector<Pending> pending_;
};

// Counters derived from the domain's bytes, so that every status occurs.
DomainCounts CountsOf(std::string_view domain) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : domain) h = (h ^ c) * 1099511628211ULL;
  return DomainCounts{h % 12, (h >> 8) % 3 == 0 ? (h >> 16) % 4 : 0};
}

class FakeStatusReader : public StatusReader {
 public:
  Result<DomainCounts> Get(std::string_view domain) const override {
    FUZZ_CHECK(IsNormalizedDomain(domain), domain);
    if (fail) return Status::IoError("fuzz: the store failed");
    return CountsOf(domain);
  }
  Status MultiGet(const std::vector<std::string>& domains,
                  std::vector<DomainCounts>* out) const override {
    if (fail) return Status::IoError("fuzz: the store failed");
    out->clear();
    for (const std::string& d : domains) {
      FUZZ_CHECK(IsNormalizedDomain(d), d);
      out->push_back(CountsOf(d));
    }
    return Status::Ok();
  }
  bool fail = false;
};

// The services and router of an embedded node, built once.
struct Node {
  Node()
      : ingest(IngestOptions{kMaxBatchItems, kMaxReportedErrors}, &log, &metrics),
        query(QueryOptions{kThreshold, kMaxLookupDomains}, &reader, &metrics) {
    router.Mount("/events", [this](const HttpRequest& r, const Responder& respond) {
      ingest.Handle(r, respond);
    });
    router.Mount("/domains", [this](const HttpRequest& r, const Responder& respond) {
      query.Handle(r, respond);
    });
    MountRuntimeEndpoints(
        &router, &metrics, [] { return Status::Ok(); }, "fuzz");
  }

  Metrics metrics;
  FakeLog log;
  FakeStatusReader reader;
  IngestService ingest;
  QueryService query;
  HttpRouter router;
  HttpServerOptions limits;  // the server's defaults
};

std::string Describe(const HttpRequest& request, const HttpResponse& response) {
  return std::string(HttpMethodName(request.method)) + " " +
         std::string(request.target.substr(0, 200)) + " -> " + std::to_string(response.status) +
         " " + response.body.substr(0, 500);
}

// Thread-local parser for the checks; the documents live until the next parse.
simdjson::dom::parser& JsonParser() {
  static simdjson::dom::parser parser;
  return parser;
}

std::string_view StringField(simdjson::dom::element e, std::string_view key) {
  std::string_view v;
  if (e[key].get_string().get(v) != simdjson::SUCCESS) return {};
  return v;
}

// A status >= 400 has {"code": "...", "message": "..."}.
void CheckError(const HttpResponse& response, const std::string& what) {
  FUZZ_CHECK(response.content_type == "application/json", what);
  simdjson::dom::element root;
  FUZZ_CHECK(JsonParser().parse(response.body).get(root) == simdjson::SUCCESS, what);
  FUZZ_CHECK(root.is_object(), what);
  FUZZ_CHECK(!StringField(root, "code").empty(), what);
  FUZZ_CHECK(!StringField(root, "message").empty(), what);
}

// The server writes the response (what DoWrite does) and Beast reads it back
// unchanged.
void CheckSerializes(const HttpResponse& response, unsigned version, const std::string& what) {
  if (response.status == 204 && response.headers.empty()) {
    FUZZ_CHECK(response.body.empty(), what);  // the server writes a constant
    return;
  }
  int status = response.status;
  const std::string& body = response.body;
  std::string bytes;
  RenderResponse(response, version, false, /*head=*/false, &bytes);
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  beast::error_code ec;
  parser.put(boost::asio::buffer(bytes), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  FUZZ_CHECK(!ec && parser.is_done(), what + " serialized as " + bytes.substr(0, 500));
  FUZZ_CHECK(parser.get().result_int() == static_cast<unsigned>(status), what);
  FUZZ_CHECK(parser.get().body() == body, what);
}

// Every stored record is a valid event whose key is its normalized domain.
void CheckStoredRecords(const std::vector<LogRecord>& records, const std::string& what) {
  static EventParser parser;
  for (const LogRecord& r : records) {
    Result<RawEvent> raw = parser.ParseObject(r.value);
    FUZZ_CHECK(raw.ok(), what + " stored " + r.value);
    Result<Event> event = ValidateEvent(*raw);
    FUZZ_CHECK(event.ok(), what + " stored " + r.value);
    FUZZ_CHECK(event->domain == r.key && IsNormalizedDomain(r.key), what + " stored " + r.value);
  }
}

void CheckIngest(const HttpRequest& request, const HttpResponse& response,
                 const std::vector<LogRecord>& stored, const std::string& what) {
  CheckStoredRecords(stored, what);
  if (response.status == 204) {
    FUZZ_CHECK(request.method == HttpMethod::kPut, what);
    FUZZ_CHECK(stored.size() == 1, what + ": acknowledged but not stored");
    return;
  }
  if (response.status == 200 && request.method == HttpMethod::kPost) {
    simdjson::dom::element root;
    FUZZ_CHECK(JsonParser().parse(response.body).get(root) == simdjson::SUCCESS, what);
    uint64_t accepted = 0;
    uint64_t rejected = 0;
    FUZZ_CHECK(root["accepted"].get_uint64().get(accepted) == simdjson::SUCCESS, what);
    FUZZ_CHECK(root["rejected"].get_uint64().get(rejected) == simdjson::SUCCESS, what);
    FUZZ_CHECK(stored.size() == accepted, what + ": accepted count differs from what was stored");
    FUZZ_CHECK(accepted + rejected <= kMaxBatchItems, what);
    simdjson::dom::array errors;
    FUZZ_CHECK(root["errors"].get_array().get(errors) == simdjson::SUCCESS, what);
    FUZZ_CHECK(errors.size() <= rejected && errors.size() <= kMaxReportedErrors, what);
    return;
  }
  FUZZ_CHECK(stored.empty(), what + ": not acknowledged, but stored");
}

void CheckQuery(const HttpRequest& request, const HttpResponse& response, const std::string& what) {
  if (response.status != 200 || request.method != HttpMethod::kGet) return;
  simdjson::dom::element root;
  FUZZ_CHECK(JsonParser().parse(response.body).get(root) == simdjson::SUCCESS, what);
  std::string_view domain = StringField(root, "domain");
  FUZZ_CHECK(IsNormalizedDomain(domain), what);
  DomainCounts expected = CountsOf(domain);
  uint64_t delivered = 0;
  uint64_t bounced = 0;
  FUZZ_CHECK(root["delivered"].get_uint64().get(delivered) == simdjson::SUCCESS &&
                 delivered == expected.delivered,
             what);
  FUZZ_CHECK(
      root["bounced"].get_uint64().get(bounced) == simdjson::SUCCESS && bounced == expected.bounced,
      what);
  FUZZ_CHECK(StringField(root, "status") == CatchAllStatusName(Classify(expected, kThreshold)),
             what);
}

// Serves one parsed request and checks the answer.
void Serve(Node& node, BeastRequest& parsed) {
  DecodeTargetEscapes(&parsed);  // as the server does once the headers are read
  HttpRequest request = ToHttpRequest(parsed, std::chrono::steady_clock::now());
  std::string_view log_mode = request.Header("X-Fuzz-Log");
  node.log.Reset(log_mode == "sync"     ? FakeLog::Mode::kSync
                 : log_mode == "refuse" ? FakeLog::Mode::kRefuse
                 : log_mode == "fail"   ? FakeLog::Mode::kFail
                                        : FakeLog::Mode::kDeferred);
  node.reader.fail = request.Header("X-Fuzz-Store") == "fail";

  int responses = 0;
  HttpResponse response;
  node.router.Handle(request, [&](HttpResponse&& r) {
    ++responses;
    response = std::move(r);
  });
  node.log.CompletePending();

  std::string what = Describe(request, response);
  FUZZ_CHECK(responses == 1, what + ": responded " + std::to_string(responses) + " times");
  FUZZ_CHECK(response.status >= 100 && response.status <= 599, what);
  if (response.status >= 400) CheckError(response, what);
  if (response.status == 405) {
    bool allow = false;
    for (const auto& [name, value] : response.headers) allow |= (name == "Allow");
    FUZZ_CHECK(allow, what);
  }
  std::string_view path = request.path();
  bool ingest = path == "/events" || path.substr(0, 8) == "/events/";
  if (ingest) {
    CheckIngest(request, response, node.log.durable, what);
  } else {
    FUZZ_CHECK(node.log.durable.empty(), what + ": stored by a path that is not /events");
  }
  if (path.substr(0, 9) == "/domains/") CheckQuery(request, response, what);
  CheckSerializes(response, parsed.version(), what);
}

}  // namespace
}  // namespace catchall

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace catchall;
  static Node node;
  const auto* bytes = reinterpret_cast<const char*>(data);
  size_t pos = 0;
  // How much of the input has arrived. The server's reads deliver a
  // request in pieces (a new connection's first read is 512 bytes), and
  // Beast then meets a request line or a header block split across them:
  // it parses the line only if its first look holds all of it, which the
  // 414 answer depends on (RequestLineRead). The piece size follows from
  // the input's size, so that mutations explore each.
  constexpr size_t kPieces[] = {3, 64, 512, SIZE_MAX};
  const size_t piece = kPieces[size % std::size(kPieces)];
  size_t arrived = std::min(size, piece);
  for (int served = 0; served < kMaxRequestsPerInput; ++served) {
    // A fresh parser per request, as the server's session makes one.
    BeastRequestParser parser;
    LimitRequestParser(node.limits, &parser);
    parser.eager(true);
    // As the session does: empty lines before a request line are skipped.
    while (pos < size && (bytes[pos] == '\r' || bytes[pos] == '\n')) ++pos;
    arrived = std::max(arrived, pos);
    beast::error_code ec;
    bool framing_checked = false;
    while (!ec && !parser.is_done()) {
      size_t used = parser.put(boost::asio::buffer(bytes + pos, arrived - pos), ec);
      pos += used;
      if (!ec && parser.is_header_done() && !framing_checked) {
        // The session answers what the headers alone refuse before reading
        // a body.
        framing_checked = true;
        if (auto refusal = HeadersResponse(parser)) {
          CheckError(*refusal, "refused headers");
          CheckSerializes(*refusal, parser.get().version(), "refused headers");
          return 0;  // the server closes after it
        }
      }
      if (!ec && used == 0 && !parser.is_done()) ec = http::error::need_more;
      if (ec == http::error::need_more && arrived < size) {
        ec = {};  // the next read: the unconsumed bytes, with more behind them
        arrived = size - arrived <= piece ? size : arrived + piece;
        continue;
      }
      if (ec == http::error::need_more) {
        // The parser has seen every byte left and needs more (Beast must
        // then be given more than before, as the server's reads do): the
        // client sent everything it will, and the connection ends here.
        // Before any byte of a request the server just closes; within one,
        // Beast reports a partial message.
        if (!parser.got_some()) return 0;
        ec = {};
        parser.put_eof(ec);
        break;
      }
    }
    if (ec) {
      const std::string_view unparsed(bytes + pos, arrived - pos);  // the server's buffer
      auto refusal = MalformedRequestResponse(
          node.limits, ec, RequestLineRead(parser, unparsed, node.limits.header_limit),
          UnsupportedHttpVersion(unparsed));
      FUZZ_CHECK(refusal.has_value(), "a parser error with no answer: " + ec.message());
      CheckError(*refusal, "refused request: " + ec.message());
      CheckSerializes(*refusal, 11, "refused request: " + ec.message());
      return 0;  // the server closes after a refusal
    }
    if (!parser.is_done()) return 0;
    Serve(node, parser.get());
    if (!parser.get().keep_alive() || pos >= size) return 0;
  }
  return 0;
}
