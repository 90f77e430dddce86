#include "http_probe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "engine/http.h"
#include "engine/metrics.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Every status the server answers is counted under its own code, so that
// an alert on code=~"5.." sees it (a black-box probe found 501 and 507
// counted as code="other").
TEST(HttpProbeTest, EveryAnsweredStatusHasItsOwnCodeLabel) {
  Metrics metrics;
  HttpRouter router;
  router.Mount("/events", [](const HttpRequest&, const Responder&) {});
  HttpProbe probe(metrics, &router);
  const int answered[] = {200, 204, 400, 401, 403, 404, 405, 408, 413, 414,
                          415, 417, 422, 431, 500, 501, 503, 505, 507};
  for (int status : answered) {
    probe.OnRequest(0, HttpMethod::kPut, status, std::chrono::milliseconds(1));
  }
  probe.OnRequest(0, HttpMethod::kPut, 418, std::chrono::milliseconds(1));
  const std::string text = metrics.Serialize();
  for (int status : answered) {
    EXPECT_THAT(text, HasSubstr("catchall_http_requests_total{code=\"" + std::to_string(status) +
                                "\",method=\"PUT\",route=\"/events\"} 1"))
        << status;
  }
  // A code the server never answers still counts, as "other".
  EXPECT_THAT(text, HasSubstr("catchall_http_requests_total{code=\"other\",method=\"PUT\","
                              "route=\"/events\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("code=\"418\"")));
}

}  // namespace
}  // namespace catchall
