#include "lib/upstream/router.h"

#include "gtest/gtest.h"
#include "lib/dns/name.h"

namespace nodedns::upstream {
namespace {

TEST(RouterTest, LongestMatchingZoneWins) {
  Router r;
  Zone zones[4];
  const Zone* root = &zones[0];
  const Zone* cluster = &zones[1];
  const Zone* svc = &zones[2];
  const Zone* reverse = &zones[3];
  r.AddZone(*dns::NameFromText("."), root);
  r.AddZone(*dns::NameFromText("Cluster.Local"), cluster);
  r.AddZone(*dns::NameFromText("svc.cluster.local"), svc);
  r.AddZone(*dns::NameFromText("10.in-addr.arpa"), reverse);
  auto route = [&](const char* n) { return r.Route(*dns::NameFromText(n)); };
  EXPECT_EQ(route("www.example.com"), root);
  EXPECT_EQ(route("kubernetes.default.SVC.cluster.local"), svc);
  EXPECT_EQ(route("pod.cluster.local"), cluster);
  EXPECT_EQ(route("cluster.local"), cluster);
  EXPECT_EQ(route("notcluster.local"), root);
  EXPECT_EQ(route("1.0.0.10.in-addr.arpa"), reverse);
  EXPECT_EQ(route("."), root);
}

TEST(RouterTest, NoRootMeansNoRoute) {
  Router r;
  Zone cluster;
  r.AddZone(*dns::NameFromText("cluster.local"), &cluster);
  EXPECT_EQ(r.Route(*dns::NameFromText("example.com")), nullptr);
}

}  // namespace
}  // namespace nodedns::upstream
