// dnsctl: the operator's command-line client for nodedns. Every command is
// one JSON request on the daemon's control socket and one JSON answer;
// dnsctl prints the answer for humans, or as it is with --json.
//
// Exit codes: 0 done; 1 the daemon answered with an error (or `health`
// found it unhealthy); 2 usage error; 3 nodedns is not running (no socket,
// or nobody answering on it); 4 permission denied on the socket; 5 no
// complete answer in time.

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/control/client.h"
#include "lib/control/protocol.h"

namespace {

using nlohmann::json;
namespace p = nodedns::control::protocol;

constexpr char kDefaultSocket[] = "/run/nodedns/control.sock";

enum Exit { kOk = 0, kDaemonError = 1, kUsage = 2, kNotRunning = 3, kPermission = 4, kTimeout = 5 };

void Usage(std::ostream& out) {
  out << "usage: dnsctl [--socket PATH] [--json] [--timeout SECONDS] COMMAND [ARGS]\n"
         "\n"
         "Commands:\n"
         "  stats                    what nodedns is doing: queries, cache, stale answers, upstreams, latency\n"
         "  upstreams                servers per zone: breaker state, latency, failures\n"
         "  dump [--name NAME] [--limit N]\n"
         "                           cache entries with remaining TTL or stale age\n"
         "  flush NAME | flush --all remove a name (all types) or everything from the cache\n"
         "  reload                   re-read the configuration (as SIGHUP)\n"
         "  snapshot                 write the cache snapshot now\n"
         "  health                   exit 0 if every worker loop runs and nodedns is ready\n"
         "\n"
         "  --socket PATH   control socket (default $NODEDNS_CONTROL_SOCKET or " << kDefaultSocket << ")\n"
         "  --json          print the daemon's JSON answer as it is\n"
         "  --timeout S     seconds to wait for the answer (default 10)\n"
         "\n"
         "Exit codes: 0 ok, 1 error reported by nodedns (or unhealthy), 2 usage,\n"
         "3 nodedns not running, 4 permission denied, 5 timeout.\n";
}

int Fail(int code, const std::string& message) {
  std::cerr << "dnsctl: " << message << "\n";
  return code;
}

std::string Duration(double seconds) {
  if (seconds < 0) return "never";
  char buf[64];
  if (seconds < 1) {
    std::snprintf(buf, sizeof(buf), "%.2f ms", seconds * 1000);
  } else if (seconds < 120) {
    std::snprintf(buf, sizeof(buf), "%.1f s", seconds);
  } else if (seconds < 7200) {
    std::snprintf(buf, sizeof(buf), "%.0fm%02.0fs", std::floor(seconds / 60), std::fmod(seconds, 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%.0fh%02.0fm", std::floor(seconds / 3600), std::fmod(seconds / 60, 60));
  }
  return buf;
}

std::string Bytes(double b) {
  char buf[64];
  if (b < 1024) {
    std::snprintf(buf, sizeof(buf), "%.0f B", b);
  } else if (b < 1024 * 1024) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", b / 1024);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", b / 1024 / 1024);
  }
  return buf;
}

std::string Num(const json& j) { return j.dump(); }

// A concurrency limit: whole above one, two decimals below (paced).
std::string Limit(const json& j) {
  if (!j.is_number()) return j.dump();
  char buf[32];
  double v = j.get<double>();
  std::snprintf(buf, sizeof(buf), v < 10 && v != static_cast<int64_t>(v) ? "%.2f" : "%.0f", v);
  return buf;
}

std::string Ms(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g ms", seconds * 1000);
  return buf;
}

std::string UpstreamLine(const json& u) {
  std::string line = u["server"].get<std::string>() + " (zone " + u["zone"].get<std::string>() + "): " +
                     u["state"].get<std::string>() + " for " + Duration(u["state_seconds"].get<double>());
  if (u["workers_open"].get<int>() > 0) line += " (open on " + Num(u["workers_open"]) + " worker(s))";
  line += "; srtt " + (u["srtt_seconds"].get<double>() > 0 ? Ms(u["srtt_seconds"].get<double>()) : "-") +
          ", queries " + Num(u["queries"]) + ", failures " + Num(u["failures"]) + ", consecutive failures " +
          Num(u["consecutive_failures"]) + ", breaker transitions " + Num(u["transitions"]);
  if (u.contains("zone_health")) {
    line += "; zone " + u["zone_health"].get<std::string>() + ", limit " + Limit(u["zone_limit"]) + ", in flight " +
            Num(u["zone_inflight"]) + ", queued " + Num(u["zone_queued"]);
  }
  return line;
}

void PrintStats(const json& s) {
  const json& c = s["counters"];
  auto n = [&](const char* k) { return Num(c[k]); };
  std::cout << "nodedns " << s["version"].get<std::string>() << ", up " << Duration(s["uptime_seconds"].get<double>())
            << ", " << s["workers"] << " worker(s)\n";
  std::cout << "queries     " << n("queries") << " (udp " << n("queries_udp") << ", tcp " << n("queries_tcp") << ")\n";
  std::cout << "answers     noerror " << n("answers_noerror") << ", nxdomain " << n("answers_nxdomain") << ", servfail "
            << n("answers_servfail") << ", other " << n("answers_other_rcode") << ", truncated "
            << n("answers_truncated") << "; formerr " << n("formerr_sent") << ", dropped "
            << c["dropped_too_short"].get<uint64_t>() + c["dropped_is_response"].get<uint64_t>() +
                   c["dropped_oversize"].get<uint64_t>()
            << "\n";
  char ratio[32];
  std::snprintf(ratio, sizeof(ratio), "%.1f%%", s["hit_ratio"].get<double>() * 100);
  std::cout << "cache       hits " << n("cache_hits") << ", misses " << n("cache_misses") << ", hit ratio " << ratio
            << "; " << s["cache"]["entries"] << " entries, " << Bytes(s["cache"]["bytes"].get<double>())
            << " (max " << s["cache"]["max_entries"] << " entries, " << Bytes(s["cache"]["max_bytes"].get<double>())
            << "); evictions " << n("cache_evictions") << "\n";
  const json& age = s["stale_age_seconds"];
  std::cout << "stale       " << n("stale_answers") << " answers (client timeout " << n("stale_answers_timeout")
            << ", upstream failure " << n("stale_answers_failure") << ", breaker open " << n("stale_answers_breaker")
            << ", over cap " << n("stale_answers_over_cap") << ")";
  if (age["count"].get<uint64_t>() > 0) {
    std::cout << "; age of stale data p50 " << Duration(age["p50"].get<double>()) << ", p99 "
              << Duration(age["p99"].get<double>()) << ", max "
              << (age["max_bucket"].is_null() ? "> 3 days" : "<= " + Duration(age["max_bucket"].get<double>()));
  }
  std::cout << "\n";
  std::cout << "upstream    queries " << n("upstream_queries") << ", failures " << n("upstream_failures")
            << " (timeouts " << n("upstream_timeouts") << ", errors " << n("upstream_errors") << ", servfail/refused "
            << n("upstream_servfail") << ", malformed " << n("upstream_malformed") << "), coalesced " << n("coalesced")
            << ", refused by caps " << n("upstream_refused_cap") << ", refreshes " << n("refreshes")
            << ", prefetches " << n("prefetches") << "\n";
  const json& lat = s["latency_seconds"];
  std::cout << "latency     p50 " << Ms(lat["p50"].get<double>()) << ", p99 " << Ms(lat["p99"].get<double>())
            << " (" << lat["count"] << " answers)\n";
  for (const json& u : s["upstreams"]) std::cout << "upstream    " << UpstreamLine(u) << "\n";
  if (s.contains("upstreams_error")) std::cout << "upstream    (" << s["upstreams_error"].get<std::string>() << ")\n";
  const json& snap = s["snapshot"];
  if (snap["enabled"].get<bool>()) {
    std::cout << "snapshot    " << snap["path"].get<std::string>() << ": ";
    if (snap["age_seconds"].get<double>() >= 0) {
      std::cout << "written " << Duration(snap["age_seconds"].get<double>()) << " ago (" << snap["last_entries"]
                << " entries, " << Bytes(snap["last_bytes"].get<double>()) << ")";
    } else {
      std::cout << "not written yet";
    }
    std::cout << "; " << snap["write_failures"] << " failed writes";
    if (!snap["last_error"].get<std::string>().empty()) std::cout << " (last: " << snap["last_error"].get<std::string>() << ")";
    std::cout << "; " << snap["loaded_entries"] << " entries loaded at start-up";
    if (!snap["load_error"].get<std::string>().empty()) std::cout << " (load error: " << snap["load_error"].get<std::string>() << ")";
    std::cout << "\n";
  } else {
    std::cout << "snapshot    off\n";
  }
  if (s.contains("pins") && s["pins"]["keys"].get<int64_t>() > 0) {
    const json& p = s["pins"];
    std::cout << "pinned      " << p["keys"] << " keys: " << p["fresh"] << " fresh, " << p["stale"] << " stale, "
              << p["missing"] << " missing; " << n("pin_refreshes") << " refreshes sent\n";
  }
  for (const json& m : s.value("mirrors", json::array())) {
    std::cout << "mirror      " << m["zone"].get<std::string>() << ": ";
    if (m["serial"].is_null()) {
      std::cout << "not transferred yet";
    } else {
      std::cout << "serial " << m["serial"] << ", " << m["records"] << " records (" << m["entries"]
                << " entries), transferred " << Duration(m["last_transfer_age_seconds"].get<double>()) << " ago";
    }
    std::cout << "; " << m["transfers"] << " transfers, " << m["failures"] << " failures";
    if (m.value("deferred", 0) > 0) std::cout << ", " << m["deferred"] << " deferred (zone not healthy)";
    if (!m["last_error"].get<std::string>().empty()) std::cout << " (last: " << m["last_error"].get<std::string>() << ")";
    std::cout << "\n";
  }
  if (s.contains("supervisor")) {
    const json& sup = s["supervisor"];
    std::cout << "supervisor  " << sup["restarts"] << " restarts, " << sup["fail_opens"] << " fail-open withdrawals";
    if (!sup["last_exit"].get<std::string>().empty()) {
      std::cout << " (last: nodedns " << sup["last_exit"].get<std::string>() << "; withdrawn in "
                << Ms(sup["last_withdrawal_seconds"].get<double>()) << ")";
    }
    std::cout << "\n";
  }
}

void PrintDump(const json& r) {
  for (const json& e : r["entries"]) {
    std::cout << e["name"].get<std::string>() << " " << e["type"].get<std::string>() << " "
              << e["kind"].get<std::string>() << " ";
    if (e["state"] == "fresh") {
      std::cout << "fresh ttl " << e["ttl_remaining_seconds"] << "s";
    } else {
      std::cout << "stale for " << e["stale_seconds"] << "s (servable " << e["stale_remaining_seconds"] << "s more)";
    }
    std::cout << (e["dnssec_ok"].get<bool>() ? " do" : "") << (e.value("pinned", false) ? " pinned" : "") << " "
              << e["bytes"] << " bytes\n";
  }
  std::cout << r["matched"] << " entries" << (r["truncated"].get<bool>() ? " (output truncated, see --limit)" : "")
            << "\n";
}

// Sends one request and reads the whole answer (the daemon closes after it).
int Exchange(const std::string& path, const json& request, double timeout_s, json* answer) {
  auto r = nodedns::control::Call(path, request, absl::Seconds(timeout_s));
  if (r.ok()) {
    *answer = std::move(*r);
    return kOk;
  }
  std::string why(r.status().message());
  if (absl::IsPermissionDenied(r.status())) {
    return Fail(kPermission, "permission denied on " + path + " (run as root or as a member of the socket's group)");
  }
  if (absl::IsNotFound(r.status()) || absl::IsUnavailable(r.status())) {
    return Fail(kNotRunning, "nodedns is not running (" + why + ")");
  }
  if (absl::IsDeadlineExceeded(r.status()) || absl::IsDataLoss(r.status())) return Fail(kTimeout, why);
  return Fail(kNotRunning, "cannot reach nodedns: " + why);
}

int Print(const std::string& cmd, const json& answer, bool as_json);

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path = std::getenv("NODEDNS_CONTROL_SOCKET") ? std::getenv("NODEDNS_CONTROL_SOCKET") : kDefaultSocket;
  bool as_json = false;
  double timeout_s = 10;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--socket" || a == "--timeout") {
      if (i + 1 >= argc) return Fail(kUsage, a + " needs a value");
      std::string v = argv[++i];
      if (a == "--socket") {
        socket_path = v;
      } else {
        char* end = nullptr;
        timeout_s = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || *end != '\0' || timeout_s <= 0) return Fail(kUsage, "--timeout: expected seconds");
      }
    } else if (a == "--json") {
      as_json = true;
    } else if (a == "--version") {
      std::cout << "dnsctl " << NODEDNS_VERSION << "\n";
      return kOk;
    } else if (a == "--help" || a == "-h") {
      Usage(std::cout);
      return kOk;
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) {
    Usage(std::cerr);
    return kUsage;
  }
  const std::string cmd = args[0];
  json request = {{p::kCommand, cmd}};
  if (cmd == p::kStats || cmd == p::kUpstreams || cmd == p::kReload || cmd == p::kSnapshot || cmd == p::kHealth) {
    if (args.size() != 1) return Fail(kUsage, cmd + " takes no arguments");
  } else if (cmd == p::kDump) {
    for (size_t i = 1; i < args.size(); ++i) {
      if ((args[i] == "--name" || args[i] == "--limit") && i + 1 < args.size()) {
        if (args[i] == "--name") {
          request[p::kName] = args[++i];
        } else {
          const std::string& v = args[++i];
          char* end = nullptr;
          errno = 0;
          unsigned long long limit = std::strtoull(v.c_str(), &end, 10);
          if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0 || limit > p::kMaxDumpLimit) {
            return Fail(kUsage, "dump --limit: expected a number from 0 to " + std::to_string(p::kMaxDumpLimit));
          }
          request[p::kLimit] = limit;
        }
      } else {
        return Fail(kUsage, "dump: unexpected '" + args[i] + "' (dump [--name NAME] [--limit N])");
      }
    }
  } else if (cmd == p::kFlush) {
    if (args.size() != 2) return Fail(kUsage, "flush NAME, or flush --all");
    if (args[1] == "--all") {
      request[p::kAll] = true;
    } else {
      request[p::kName] = args[1];
    }
  } else {
    std::cerr << "dnsctl: unknown command '" << cmd << "'\n";
    Usage(std::cerr);
    return kUsage;
  }

  json answer;
  if (int rc = Exchange(socket_path, request, timeout_s, &answer); rc != kOk) return rc;
  try {
    return Print(cmd, answer, as_json);
  } catch (const json::exception& e) {
    // An older or newer nodedns may answer with other fields.
    return Fail(kTimeout, std::string("unexpected answer from nodedns: ") + e.what());
  }
}

namespace {

int Print(const std::string& cmd, const json& answer, bool as_json) {
  bool ok = answer.value(p::kOk, false);
  if (as_json) {
    std::cout << answer.dump(2) << "\n";
  } else if (!ok) {
    // printed below
  } else if (cmd == "stats") {
    PrintStats(answer);
  } else if (cmd == "upstreams") {
    for (const json& z : answer["zones"]) {
      std::cout << "zone " << z["zone"].get<std::string>() << ": servers";
      for (const json& s : z["servers"]) std::cout << " " << s.get<std::string>();
      std::cout << "; max_stale " << z["max_stale_seconds"] << "s" << (z["last_known_good"].get<bool>() ? ", last_known_good" : "")
                << "\n";
    }
    for (const json& u : answer["upstreams"]) std::cout << "  " << UpstreamLine(u) << "\n";
  } else if (cmd == "dump") {
    PrintDump(answer);
  } else if (cmd == "flush") {
    std::cout << "removed " << answer["removed"] << " entries\n";
  } else if (cmd == "reload") {
    std::cout << "reloaded" << (answer["source"].get<std::string>().empty() ? "" : " from " + answer["source"].get<std::string>()) << "\n";
    for (const json& n : answer["notes"]) std::cout << "note: " << n.get<std::string>() << "\n";
  } else if (cmd == "snapshot") {
    std::cout << "snapshot written to " << answer["path"].get<std::string>() << ": " << answer["entries"] << " entries, "
              << Bytes(answer["bytes"].get<double>()) << " in " << Duration(answer["seconds"].get<double>()) << "\n";
  } else if (cmd == "health") {
    std::cout << (answer["healthy"].get<bool>() ? "healthy" : "unhealthy: " + answer["detail"].get<std::string>())
              << ", " << (answer["ready"].get<bool>() ? "ready" : "not ready") << "\n";
  }
  if (!ok) {
    if (!as_json) std::cerr << "dnsctl: nodedns: " << answer.value(p::kError, std::string("unknown error")) << "\n";
    return kDaemonError;
  }
  if (cmd == "health" && !(answer["healthy"].get<bool>() && answer["ready"].get<bool>())) return kDaemonError;
  return kOk;
}

}  // namespace
