#include "lib/control/http_endpoint.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_control_target.h"

namespace nodedns::control {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ParseHttpRequestTest, AcceptsWhatProbesAndPrometheusSend) {
  auto r = ParseHttpRequest(
      "GET /metrics?x=1 HTTP/1.1\r\nHost: 10.0.0.1:9253\r\nUser-Agent: Prometheus/2.45\r\nAccept: */*\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/metrics");
  r = ParseHttpRequest("HEAD /healthz HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->method, "HEAD");
  // Header values may carry obs-text and tabs.
  EXPECT_TRUE(ParseHttpRequest("GET / HTTP/1.1\r\nX-A: \xff\tb\r\n\r\n").ok());
}

TEST(ParseHttpRequestTest, RefusesAnythingElse) {
  for (const char* bad : {"garbage\r\n\r\n", "GET /metrics\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
                          "GET /metrics HTTP/2.0\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n", " /metrics HTTP/1.1\r\n\r\n",
                          "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", "GET /metrics HTTP/1.1\r\n: x\r\n\r\n",
                          "GET /metrics HTTP/1.1\r\nHost: a\r\n", "G(T /metrics HTTP/1.1\r\n\r\n",
                          "GET /metrics HTTP/1.1\n\n", "VERYLONGMETHODNAME1 / HTTP/1.1\r\n\r\n"}) {
    EXPECT_FALSE(ParseHttpRequest(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseHttpRequest(std::string("GET /\x01 HTTP/1.1\r\n\r\n")).ok());
  static constexpr char kNul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
  EXPECT_FALSE(ParseHttpRequest(std::string(kNul, sizeof(kNul) - 1)).ok());
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "X: y\r\n";
  EXPECT_FALSE(ParseHttpRequest(many + "\r\n").ok());
  EXPECT_FALSE(ParseHttpRequest("GET /" + std::string(3000, 'a') + " HTTP/1.1\r\n\r\n").ok());
}

TEST(HandleHttpRequestTest, Routes) {
  testing::FakeControlTarget t;
  EXPECT_THAT(HandleHttpRequest("GET /metrics HTTP/1.1\r\n\r\n", t), HasSubstr("nodedns_cache_entries 5\n"));
  EXPECT_THAT(HandleHttpRequest("GET /healthz HTTP/1.1\r\n\r\n", t), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(HandleHttpRequest("GET /readyz HTTP/1.1\r\n\r\n", t), StartsWith("HTTP/1.1 200 OK\r\n"));
  t.health = {false, false, "worker 1 silent for 2500 ms; "};
  std::string sick = HandleHttpRequest("GET /healthz HTTP/1.1\r\n\r\n", t);
  EXPECT_THAT(sick, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_THAT(sick, HasSubstr("worker 1 silent"));
  EXPECT_THAT(HandleHttpRequest("GET /readyz HTTP/1.1\r\n\r\n", t), StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(HandleHttpRequest("GET /nope HTTP/1.1\r\n\r\n", t), StartsWith("HTTP/1.1 404"));
  std::string post = HandleHttpRequest("POST /metrics HTTP/1.1\r\n\r\n", t);
  EXPECT_THAT(post, StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(post, HasSubstr("Allow: GET, HEAD\r\n"));
  EXPECT_THAT(HandleHttpRequest("garbage\r\n\r\n", t), StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  // HEAD: the headers of the GET answer, no body.
  std::string head = HandleHttpRequest("HEAD /readyz HTTP/1.1\r\n\r\n", t);
  EXPECT_THAT(head, HasSubstr("Content-Length: 10\r\n"));
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
}

TEST(HandleHttpRequestTest, AnExceptionBecomes500) {
  testing::FakeControlTarget t;
  t.throw_from_stats = true;
  EXPECT_THAT(HandleHttpRequest("GET /metrics HTTP/1.1\r\n\r\n", t), StartsWith("HTTP/1.1 500 Internal Server Error"));
  EXPECT_THAT(HandleHttpRequest("GET /healthz HTTP/1.1\r\n\r\n", t), StartsWith("HTTP/1.1 200"));
}

}  // namespace
}  // namespace nodedns::control
