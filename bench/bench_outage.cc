// Outage benchmark driver for bench/outage.sh. Runs a fake upstream (its port
// goes to --port-file), waits until every target server answers through it,
// then for each outage (blackhole, SERVFAIL) and each target in turn: warms
// --names names with a 2 s TTL, lets them expire, breaks the upstream, queries
// them at --qps for --outage-seconds, restores the upstream (TTL 300) and
// queries for --recovery-seconds. Prints, per outage, for every target:
// answered share, NOERROR-with-data share, latency p50/p99/max during the
// outage, upstream queries during the outage per client query, and seconds
// until fresh answers resume. Loopback only; every phase is bounded.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "lib/dns/constants.h"
#include "tests/support/dns_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/load_client.h"

using nodedns::testing::FakeUpstream;
using nodedns::testing::LoadClient;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

struct Target {
  std::string name;
  uint16_t port;
};

struct Row {
  double answered = 0, noerror = 0, p50 = 0, p99 = 0, max = 0, upstream_ratio = 0, fresh_after = -1;
};

double Pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

Row Run(FakeUpstream& up, const Target& t, FakeUpstream::Mode mode, const std::string& tag, int names_n, int qps,
        int outage_s, int recovery_s) {
  std::vector<std::string> names;
  // Built with append: GCC 12 warns falsely (-Wrestrict) on chained operator+
  // (https://gcc.gnu.org/bugzilla/show_bug.cgi?id=105651).
  std::string suffix;
  suffix.append(".").append(tag).append(".").append(t.name).append(".bench");
  for (int i = 0; i < names_n; ++i) names.push_back(std::string("n").append(std::to_string(i)).append(suffix));
  up.set_mode(FakeUpstream::Mode::kAnswer);
  up.set_ttl(2);
  { LoadClient warm(t.port, names, 500, milliseconds(names_n * 1000 / 500)); }
  std::this_thread::sleep_for(milliseconds(2500));
  auto start = Clock::now();
  up.set_mode(mode);
  LoadClient during(t.port, names, qps, milliseconds(outage_s * 1000));
  during.Join();
  auto end = Clock::now();
  up.set_ttl(300);
  up.set_mode(FakeUpstream::Mode::kAnswer);
  auto restored = Clock::now();
  LoadClient after(t.port, names, qps, milliseconds(recovery_s * 1000));
  after.Join();

  Row r;
  std::vector<double> lat;
  size_t answered = 0, good = 0;
  for (const auto& q : during.results()) {
    if (!q.answered) continue;
    ++answered;
    if (q.rcode == nodedns::dns::kNoError && !q.rdata.empty()) ++good;
    lat.push_back(static_cast<double>(q.latency().count()) / 1000.0);
  }
  double n = static_cast<double>(during.results().size());
  if (std::getenv("BENCH_SLOW_DETAIL")) {  // when slow answers happened (ms after the outage began)
    std::map<int, std::pair<int, double>> slow;  // bucket -> count, max ms
    for (const auto& q : during.results()) {
      if (!q.answered || q.latency() <= milliseconds(1)) continue;
      auto& b = slow[static_cast<int>(std::chrono::duration_cast<milliseconds>(q.sent - start).count() / 100 * 100)];
      b.first++;
      b.second = std::max(b.second, q.latency().count() / 1000.0);
    }
    for (auto& [at, b] : slow) {
      std::fprintf(stderr, "%s %s: %d answers slower than 1 ms (max %.1f ms) sent at +%d ms\n", t.name.c_str(),
                   tag.c_str(), b.first, b.second, at);
    }
  }
  r.answered = 100.0 * static_cast<double>(answered) / n;
  r.noerror = 100.0 * static_cast<double>(good) / n;
  r.p50 = Pct(lat, 0.50);
  r.p99 = Pct(lat, 0.99);
  r.max = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
  size_t upstream_queries = 0;
  for (const auto& q : up.log()) upstream_queries += q.at >= start && q.at <= end;
  r.upstream_ratio = 100.0 * static_cast<double>(upstream_queries) / n;
  for (const auto& q : after.results()) {
    if (q.answered && q.rcode == nodedns::dns::kNoError && q.ttl > 30 && q.ede == -1) {
      double s = std::chrono::duration<double>(q.received - restored).count();
      if (r.fresh_after < 0 || s < r.fresh_after) r.fresh_after = s;
    }
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string port_file;
  std::vector<Target> targets;
  int names_n = 1000, qps = 1000, outage_s = 15, recovery_s = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--port-file") port_file = v;
    else if (k == "--target") targets.push_back({v.substr(0, v.find('=')), static_cast<uint16_t>(std::atoi(v.c_str() + v.find('=') + 1))});
    else if (k == "--names") names_n = std::atoi(v.c_str());
    else if (k == "--qps") qps = std::atoi(v.c_str());
    else if (k == "--outage-seconds") outage_s = std::atoi(v.c_str());
    else if (k == "--recovery-seconds") recovery_s = std::atoi(v.c_str());
  }
  auto up = FakeUpstream::Start();
  if (!up || port_file.empty() || targets.empty()) return 2;
  std::ofstream(port_file + ".tmp") << up->port() << "\n";
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  for (const Target& t : targets) {  // wait (bounded) until the target answers through us
    bool ok = false;
    for (int i = 0; i < 300 && !ok; ++i) {  // up to 30 s
      auto a = nodedns::testing::UdpExchange("127.0.0.1", t.port, nodedns::testing::MakeQuery("ready.bench", 1), 100);
      ok = a.has_value() && a->size() > 3 && ((*a)[3] & 0x0f) == 0;
      if (!ok) std::this_thread::sleep_for(milliseconds(100));
    }
    if (!ok) {
      std::fprintf(stderr, "target %s on port %d does not answer\n", t.name.c_str(), t.port);
      return 1;
    }
  }
  struct Outage {
    const char* name;
    FakeUpstream::Mode mode;
  };
  for (Outage o : {Outage{"blackhole", FakeUpstream::Mode::kDrop}, Outage{"SERVFAIL", FakeUpstream::Mode::kServFail}}) {
    std::vector<Row> rows;
    for (const Target& t : targets) rows.push_back(Run(*up, t, o.mode, o.name, names_n, qps, outage_s, recovery_s));
    std::printf("\n%s outage: %d cached names (TTL 2 s) queried at %d qps for %d s, then the upstream returns\n", o.name,
                names_n, qps, outage_s);
    std::printf("%-44s", "");
    for (const Target& t : targets) std::printf(" %12s", t.name.c_str());
    std::printf("\n");
    auto line = [&](const char* label, auto get, const char* fmt) {
      std::printf("%-44s", label);
      for (const Row& r : rows) std::printf(fmt, get(r));
      std::printf("\n");
    };
    line("answered (% of queries)", [](const Row& r) { return r.answered; }, " %12.2f");
    line("NOERROR with the cached record (%)", [](const Row& r) { return r.noerror; }, " %12.2f");
    line("latency p50 (ms)", [](const Row& r) { return r.p50; }, " %12.2f");
    line("latency p99 (ms)", [](const Row& r) { return r.p99; }, " %12.2f");
    line("latency max (ms)", [](const Row& r) { return r.max; }, " %12.2f");
    line("upstream queries / client queries (%)", [](const Row& r) { return r.upstream_ratio; }, " %12.2f");
    line("seconds until fresh answers resume", [](const Row& r) { return r.fresh_after; }, " %12.2f");
  }
  return 0;
}
