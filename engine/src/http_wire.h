// The pure part of the HTTP server's edge: how Beast's parser is bounded, how
// a parsed request becomes the handlers' HttpRequest, what a request Beast
// refused is answered, and how an HttpResponse goes back to Beast. The server
// (http_server.cc) and the HTTP fuzzer (fuzz/http_request_fuzzer.cc) both use
// these, so the fuzzer exercises the server's own code without sockets.
// Private to engine: Beast types stay out of the public headers.
#pragma once

#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>

#include "engine/http.h"
#include "engine/http_server.h"

namespace catchall {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastRequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// The handlers' name for Beast's method.
HttpMethod MethodOf(boost::beast::http::verb verb);

// Sets the header and body limits of `options` on a fresh parser.
void LimitRequestParser(const HttpServerOptions& options, BeastRequestParser* parser);

// The origin form (path and query) of a request target. A target in
// absolute form (`http://host:port/path?q`, what a client sends to a
// proxy, and which RFC 9112, 3.2.2 says a server must accept) becomes
// its path and query (`/` if it has no path, its query then dropped: no
// route reads queries); any other target is returned
// as is. The result points into `target`, or is a literal.
std::string_view OriginForm(std::string_view target);

// The JSON error answering a request its headers alone make unservable,
// nullopt if there is none; call once the headers are parsed. The
// connection must close after the answer (the body is not read).
// - Framing (RFC 9112, 6.1 and 6.3): a Transfer-Encoding on an HTTP/1.0
//   request, or one whose last coding is not chunked, is 400 (the body's
//   end cannot be known, so what follows must not be read as the next
//   request); a coding other than chunked (gzip, chunked) is 501.
// - Host (RFC 9112, 3.2): an HTTP/1.1 request without exactly one Host
//   header is 400.
// - Expect (RFC 9110, 10.1.1): an HTTP/1.1 request expecting anything
//   but 100-continue is 417; an HTTP/1.0 request's Expect is ignored.
std::optional<HttpResponse> HeadersResponse(const BeastRequestParser& parser);

// Whether `request` expects 100-continue (as one member of its Expect
// fields, in any case); HeadersResponse has refused any other expectation.
bool ExpectsContinue(const BeastRequest& request);

// Decodes the escapes of unreserved characters in `request`'s target
// (DecodeUnreservedEscapes), so that routes and handlers see `/events` for
// `/%65vents`. Call once the headers are parsed.
void DecodeTargetEscapes(BeastRequest* request);

// The handlers' view of `request`; its views point into `request`. Its
// target is in origin form (OriginForm).
HttpRequest ToHttpRequest(const BeastRequest& request,
                          std::chrono::steady_clock::time_point received);

// Whether the request line of the request `parser` reads ended within
// `header_limit` bytes. Beast sets the target once it parsed the line, but
// it parses the line only if its first look held all of it; after that it
// waits for the whole header block, consuming nothing, so `unparsed` (the
// bytes not yet consumed, which then begin with the request line) tells.
bool RequestLineRead(const BeastRequestParser& parser, std::string_view unparsed,
                     size_t header_limit);

// The version of a well-formed request line that is neither HTTP/1.0 nor
// HTTP/1.1 (`HTTP/2.0` of an HTTP/2 client's preface, `HTTP/1.2`), read
// from `unparsed` (the bytes not yet consumed, beginning with the request
// line); empty when the line's version is one Beast takes or is no
// version at all. Beast refuses both kinds alike (bad_version).
std::string_view UnsupportedHttpVersion(std::string_view unparsed);

// The JSON error answering a request that Beast's parser refused with `ec`:
// over the header limit 414 when the request line alone is longer (the
// parser never got to its end: `request_line_read` is false) and 431
// otherwise, 413 over the body limit, 505 for a well-formed version the
// server does not speak (`unsupported_version`, from
// UnsupportedHttpVersion), else 400. nullopt when `ec` is not a parser
// error (a transport error: the connection just closes).
std::optional<HttpResponse> MalformedRequestResponse(const HttpServerOptions& options,
                                                     boost::beast::error_code ec,
                                                     bool request_line_read = true,
                                                     std::string_view unsupported_version = {});

// Sets *out to the bytes of `response` as HTTP/1.x (`version` as Beast counts
// it: 10 or 11): the status line; Content-Type, the response's own headers
// and Content-Length (none of them for 1xx, 204 and 304); Connection as
// `keep_alive` and the version need; then the body, left out for a HEAD
// (whose Content-Length is still the body's). One buffer, for one send:
// Beast's serializer, walking its buffer sequences, was ~10% of the I/O
// thread answering GETs (perf). REQUIRES: the response's own headers are
// none of those four and hold no CR or LF (they come from this code, not
// from clients).
void RenderResponse(const HttpResponse& response, unsigned version, bool keep_alive, bool head,
                    std::string* out);

// A connection keeps its response buffer between requests (no allocation
// per response), up to this size; a larger one is released once written.
// Kept whatever its size, 300 idle keep-alive connections that had each
// been answered a 160 KB batch report held 49 MB until they closed (a
// review).
inline constexpr size_t kKeptResponseBytes = size_t{16} << 10;
// Empties `wire`, a response just written, releasing its memory if it
// outgrew kKeptResponseBytes.
void ReleaseWrittenResponse(std::string* wire);

}  // namespace catchall
