#include "lib/config/config.h"

#include <charconv>
#include <fstream>
#include <functional>
#include <map>

#include <toml++/toml.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "default_config.h"
#include "lib/config/text_check.h"
#include "lib/dns/name.h"

namespace nodedns::config {
namespace {

// Builds "file:line: reason" errors from toml++ source positions.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  absl::Status Error(const toml::source_region& where, const std::string& reason) const {
    return absl::InvalidArgumentError(source_ + ":" + std::to_string(where.begin.line) + ": " + reason);
  }

  absl::StatusOr<int64_t> Int(const toml::node& n, const std::string& key, int64_t min, int64_t max) const {
    const auto* v = n.as_integer();
    if (v == nullptr) return Error(n.source(), "'" + key + "' must be an integer");
    int64_t x = v->get();
    if (x < min || x > max) {
      return Error(n.source(), "'" + key + "' must be between " + std::to_string(min) + " and " +
                                   std::to_string(max) + ", got " + std::to_string(x));
    }
    return x;
  }

  absl::StatusOr<bool> Bool(const toml::node& n, const std::string& key) const {
    const auto* v = n.as_boolean();
    if (v == nullptr) return Error(n.source(), "'" + key + "' must be true or false");
    return v->get();
  }

  absl::StatusOr<std::string> String(const toml::node& n, const std::string& key) const {
    const auto* v = n.as_string();
    if (v == nullptr) return Error(n.source(), "'" + key + "' must be a string");
    return v->get();
  }

  absl::StatusOr<std::vector<std::string>> Strings(const toml::node& n, const std::string& key) const {
    const auto* arr = n.as_array();
    if (arr == nullptr) return Error(n.source(), "'" + key + "' must be an array of strings");
    std::vector<std::string> out;
    for (const toml::node& e : *arr) {
      auto s = String(e, key + "[]");
      if (!s.ok()) return s.status();
      out.push_back(*s);
    }
    return out;
  }

  absl::StatusOr<SocketAddress> Address(const toml::node& n, const std::string& key, int default_port) const {
    auto s = String(n, key);
    if (!s.ok()) return s.status();
    auto a = SocketAddress::Parse(*s, default_port);
    if (!a.ok()) return Error(n.source(), "'" + key + "': " + std::string(a.status().message()));
    return *a;
  }

  using Handler = std::function<absl::Status(const toml::node&, const std::string& key)>;

  // Applies `handlers` to the keys of `table`; unknown keys are errors, since
  // a misspelt knob silently ignored is worse than a refusal to start.
  absl::Status Table(const toml::table& table, const std::string& prefix,
                     const std::map<std::string, Handler>& handlers) const {
    for (auto&& [k, v] : table) {
      std::string key(k.str());
      auto it = handlers.find(key);
      if (it == handlers.end()) {
        return Error(k.source(), "unknown key '" + prefix + key + "'");
      }
      if (auto s = it->second(v, prefix + key); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  std::string source_;
};

template <typename T>
Reader::Handler IntInto(const Reader& r, T* dst, int64_t min, int64_t max) {
  return [&r, dst, min, max](const toml::node& n, const std::string& key) -> absl::Status {
    auto v = r.Int(n, key, min, max);
    if (!v.ok()) return v.status();
    *dst = static_cast<T>(*v);
    return absl::OkStatus();
  };
}

Reader::Handler BoolInto(const Reader& r, bool* dst) {
  return [&r, dst](const toml::node& n, const std::string& key) -> absl::Status {
    auto v = r.Bool(n, key);
    if (!v.ok()) return v.status();
    *dst = *v;
    return absl::OkStatus();
  };
}

Reader::Handler StringInto(const Reader& r, std::string* dst) {
  return [&r, dst](const toml::node& n, const std::string& key) -> absl::Status {
    auto v = r.String(n, key);
    if (!v.ok()) return v.status();
    *dst = *v;
    return absl::OkStatus();
  };
}

Reader::Handler SecondsInto(const Reader& r, absl::Duration* dst, int64_t min, int64_t max) {
  return [&r, dst, min, max](const toml::node& n, const std::string& key) -> absl::Status {
    auto v = r.Int(n, key, min, max);
    if (!v.ok()) return v.status();
    *dst = absl::Seconds(*v);
    return absl::OkStatus();
  };
}

Reader::Handler MillisInto(const Reader& r, absl::Duration* dst, int64_t min, int64_t max) {
  return [&r, dst, min, max](const toml::node& n, const std::string& key) -> absl::Status {
    auto v = r.Int(n, key, min, max);
    if (!v.ok()) return v.status();
    *dst = absl::Milliseconds(*v);
    return absl::OkStatus();
  };
}

// An integer percentage into a fraction (200 -> 2.0).
Reader::Handler PercentInto(const Reader& r, double* dst, int64_t min, int64_t max) {
  return [&r, dst, min, max](const toml::node& n, const std::string& key) -> absl::Status {
    auto v = r.Int(n, key, min, max);
    if (!v.ok()) return v.status();
    *dst = static_cast<double>(*v) / 100.0;
    return absl::OkStatus();
  };
}

// An "ADDR:PORT" string; "" resets it (off, or: the default place).
Reader::Handler OptionalAddressInto(const Reader& r, std::optional<SocketAddress>* dst) {
  return [&r, dst](const toml::node& n, const std::string& key) -> absl::Status {
    auto v = r.String(n, key);
    if (!v.ok()) return v.status();
    if (v->empty()) {
      dst->reset();
      return absl::OkStatus();
    }
    auto a = r.Address(n, key, -1);
    if (!a.ok()) return a.status();
    *dst = *a;
    return absl::OkStatus();
  };
}

// The zones read so far, by name, with their line: duplicates are found in
// one pass, and reported with both places.
using ZoneLines = absl::flat_hash_map<std::string, uint32_t>;

absl::Status ParseZone(const Reader& r, const toml::node& node, Config* c, ZoneLines* seen) {
  const auto* t = node.as_table();
  if (t == nullptr) return r.Error(node.source(), "each [[zone]] must be a table");
  ZoneConfig z;
  bool have_name = false, have_servers = false;
  absl::Status s = r.Table(*t, "zone.", {
      {"name", [&](const toml::node& n, const std::string& key) -> absl::Status {
         auto v = r.String(n, key);
         if (!v.ok()) return v.status();
         auto wire = dns::NameFromText(*v);
         if (!wire.ok()) return r.Error(n.source(), std::string(wire.status().message()));
         z.name = dns::NameToText(dns::Lowercase(*wire));
         have_name = true;
         return absl::OkStatus();
       }},
      {"servers", [&](const toml::node& n, const std::string& key) -> absl::Status {
         const auto* arr = n.as_array();
         if (arr == nullptr || arr->empty()) {
           return r.Error(n.source(), "'" + key + "' must be a non-empty array of \"ADDR:PORT\" strings");
         }
         for (const toml::node& e : *arr) {
           auto str = r.String(e, key + "[]");
           if (!str.ok()) return str.status();
           if (*str == kResolvConfMarker) {
             z.use_resolv_conf = true;
             continue;
           }
           auto a = r.Address(e, key + "[]", 53);
           if (!a.ok()) return a.status();
           z.servers.push_back(*a);
         }
         have_servers = true;
         return absl::OkStatus();
       }},
      {"max_stale", SecondsInto(r, &z.max_stale, 0, 7 * 86400)},
      {"last_known_good", BoolInto(r, &z.last_known_good)},
      {"filter_aaaa", BoolInto(r, &z.filter_aaaa)},
      {"mirror", BoolInto(r, &z.mirror)},
      {"pin", [&](const toml::node& n, const std::string& key) -> absl::Status {
         const auto* arr = n.as_array();
         if (arr == nullptr) return r.Error(n.source(), "'" + key + "' must be an array of names");
         z.pin.clear();
         for (const toml::node& e : *arr) {
           auto v = r.String(e, key + "[]");
           if (!v.ok()) return v.status();
           auto wire = dns::NameFromText(*v);
           if (!wire.ok()) return r.Error(e.source(), std::string(wire.status().message()));
           if (z.pin.size() >= kMaxPinnedNames) {
             return r.Error(e.source(), "more than " + std::to_string(kMaxPinnedNames) + " pinned names");
           }
           z.pin.push_back(dns::NameToText(dns::Lowercase(*wire)));
         }
         return absl::OkStatus();
       }},
      {"transport", [&](const toml::node& n, const std::string& key) -> absl::Status {
         auto v = r.String(n, key);
         if (!v.ok()) return v.status();
         if (*v == "prefer_udp") {
           z.transport = upstream::Protocol::kPreferUdp;
         } else if (*v == "udp") {
           z.transport = upstream::Protocol::kUdp;
         } else if (*v == "tcp") {
           z.transport = upstream::Protocol::kTcp;
         } else {
           return r.Error(n.source(), "'" + key + "' must be \"prefer_udp\", \"udp\" or \"tcp\"");
         }
         return absl::OkStatus();
       }},
  });
  if (!s.ok()) return s;
  if (!have_name) return r.Error(node.source(), "[[zone]] without 'name'");
  if (!have_servers) return r.Error(node.source(), "[[zone]] '" + z.name + "' without 'servers'");
  auto [first, inserted] = seen->try_emplace(z.name, node.source().begin.line);
  if (!inserted) {
    return r.Error(node.source(),
                   "zone '" + z.name + "' is configured twice (first at line " + std::to_string(first->second) + ")");
  }
  c->zones.push_back(std::move(z));
  return absl::OkStatus();
}

absl::Status Apply(const toml::table& root, const Reader& r, Config* c) {
  auto section = [&](const char* name, std::map<std::string, Reader::Handler> handlers) {
    return [&r, name, handlers = std::move(handlers)](const toml::node& n, const std::string&) -> absl::Status {
      const auto* t = n.as_table();
      if (t == nullptr) return r.Error(n.source(), std::string("'") + name + "' must be a table");
      return r.Table(*t, std::string(name) + ".", handlers);
    };
  };
  bool zones_replaced = false;
  ZoneLines zone_lines;
  return r.Table(root, "", {
      {"server", section("server", {
          {"listen", [&](const toml::node& n, const std::string& key) -> absl::Status {
             const auto* arr = n.as_array();
             if (arr == nullptr || arr->empty()) {
               return r.Error(n.source(), "'" + key + "' must be a non-empty array of \"ADDR:PORT\" strings");
             }
             c->listen.clear();
             for (const toml::node& e : *arr) {
               auto a = r.Address(e, key + "[]", -1);
               if (!a.ok()) return a.status();
               c->listen.push_back(*a);
             }
             return absl::OkStatus();
           }},
          {"workers", IntInto(r, &c->workers, 1, 64)},
          {"tcp_workers", IntInto(r, &c->tcp_workers, 1, 16)},
          {"max_udp_size", IntInto(r, &c->resolver.max_udp_size, 512, 4096)},
          {"tcp_idle_timeout_ms", MillisInto(r, &c->tcp.idle_timeout, 100, 3'600'000)},
          {"max_tcp_connections", IntInto(r, &c->tcp.max_connections, 1, 1'000'000)},
          {"max_tcp_pipeline", IntInto(r, &c->tcp.max_pipeline, 1, 65535)},
          {"tcp_frame_timeout_ms", MillisInto(r, &c->tcp.frame_timeout, 100, 600'000)},
          {"max_tcp_write_queue", IntInto(r, &c->tcp.max_write_queue, 1024, int64_t{1} << 30)},
          {"tcp_memory_budget", IntInto(r, &c->tcp.memory_budget, 1 << 20, int64_t{1} << 40)},
          {"handover_grace_ms", MillisInto(r, &c->handover_grace, 0, 600'000)},
      })},
      {"cache", section("cache", {
          {"max_entries", IntInto(r, &c->cache.max_entries, 1, int64_t{1} << 32)},
          {"max_bytes", IntInto(r, &c->cache.max_bytes, 65536, int64_t{1} << 40)},
          {"shards", IntInto(r, &c->cache.shards, 1, 4096)},
          {"min_ttl", IntInto(r, &c->resolver.image.min_ttl, 0, 86400)},
          {"max_ttl", IntInto(r, &c->resolver.image.max_ttl, 0, 7 * 86400)},
          {"negative_max_ttl", IntInto(r, &c->resolver.image.negative_max_ttl, 0, 7 * 86400)},
          {"minimal_responses", BoolInto(r, &c->resolver.image.minimal_responses)},
          {"prefetch", BoolInto(r, &c->resolver.prefetch)},
          {"prefetch_threshold_percent", PercentInto(r, &c->resolver.prefetch_threshold, 1, 50)},
          {"pin_refresh_min_s", SecondsInto(r, &c->resolver.pin_refresh_min, 1, 86400)},
      })},
      {"mirror", section("mirror", {
          {"check_interval_s", SecondsInto(r, &c->mirror.check_interval, 1, 86400)},
          {"min_transfer_interval_s", SecondsInto(r, &c->mirror.min_transfer_interval, 0, 7 * 86400)},
          {"query_timeout_ms", MillisInto(r, &c->mirror.query_timeout, 100, 30'000)},
          {"transfer_timeout_s", SecondsInto(r, &c->mirror.limits.timeout, 1, 3600)},
          {"max_records", IntInto(r, &c->mirror.limits.max_records, 1, 10'000'000)},
          {"max_bytes", IntInto(r, &c->mirror.limits.max_bytes, 65536, int64_t{1} << 30)},
      })},
      {"serve_stale", section("serve_stale", {
          {"client_timeout_ms", MillisInto(r, &c->upstream.client_timeout, 0, 10'000)},
          {"reply_ttl", IntInto(r, &c->resolver.stale_reply_ttl, 0, 3600)},
          {"failure_recheck_ms", MillisInto(r, &c->resolver.failure_recheck, 0, 3'600'000)},
          {"servfail_ttl", SecondsInto(r, &c->resolver.servfail_ttl, 0, 300)},
      })},
      {"upstream", section("upstream", {
          {"timeout_ms", MillisInto(r, &c->transport.timeout, 10, 60'000)},
          {"attempts", IntInto(r, &c->transport.attempts, 1, 10)},
          {"max_pending", IntInto(r, &c->resolver.max_pending, 1, 1'000'000)},
          {"max_waiters", IntInto(r, &c->resolver.max_waiters, 1, 100'000)},
          {"max_qps", IntInto(r, &c->upstream.max_qps, 0, 10'000'000)},
          {"max_inflight", IntInto(r, &c->upstream.limiter.max_limit, 1, 1'000'000)},
          {"limit_initial", IntInto(r, &c->upstream.limiter.initial_limit, 1, 1'000'000)},
          {"limit_min", IntInto(r, &c->upstream.limiter.min_limit, 1, 1'000'000)},
          {"limit_tolerance_percent", PercentInto(r, &c->upstream.limiter.tolerance, 110, 10'000)},
          {"limit_floor_percent", PercentInto(r, &c->upstream.limiter.floor, 1, 100'000)},
          {"max_queue", IntInto(r, &c->upstream.max_queue, 0, 1'000'000)},
          {"queue_timeout_ms", MillisInto(r, &c->upstream.queue_timeout, 0, 60'000)},
          {"breaker_failures", IntInto(r, &c->upstream.breaker.failures_to_open, 1, 1000)},
          {"probe_min_ms", MillisInto(r, &c->upstream.breaker.probe_min, 10, 60'000)},
          {"probe_max_ms", MillisInto(r, &c->upstream.breaker.probe_max, 10, 600'000)},
          {"probe_timeout_ms", MillisInto(r, &c->upstream.probe_timeout, 10, 60'000)},
          {"degraded_hold_ms", MillisInto(r, &c->upstream.degraded_hold, 0, 600'000)},
          {"fair_queue", BoolInto(r, &c->upstream.fair_queue)},
      })},
      {"fair_share", section("fair_share", {
          {"ipv4_prefix", IntInto(r, &c->resolver.fair_share.ipv4_prefix, 0, 32)},
          {"ipv6_prefix", IntInto(r, &c->resolver.fair_share.ipv6_prefix, 0, 128)},
          {"max_clients", IntInto(r, &c->resolver.fair_share.max_clients, 1, 1'000'000)},
          {"window_ms", MillisInto(r, &c->resolver.fair_share.window, 10, 60'000)},
          {"min_client_misses", IntInto(r, &c->resolver.fair_share.min_client_misses, 0, 10'000'000)},
          {"pending_pressure_percent", PercentInto(r, &c->resolver.fair_share.pending_pressure, 1, 100)},
          {"min_client_pending", IntInto(r, &c->resolver.fair_share.min_client_pending, 1, 1'000'000)},
      })},
      {"shed", section("shed", {
          {"enabled", BoolInto(r, &c->resolver.shed.enabled)},
          {"backlog_percent", PercentInto(r, &c->resolver.shed.backlog, 1, 100)},
          {"hold_ms", MillisInto(r, &c->resolver.shed.hold, 0, 600'000)},
          {"answer", [&](const toml::node& n, const std::string& key) -> absl::Status {
             auto v = r.String(n, key);
             if (!v.ok()) return v.status();
             if (*v != "drop" && *v != "refused") return r.Error(n.source(), "'" + key + "' must be \"drop\" or \"refused\"");
             c->resolver.shed.refuse = *v == "refused";
             return absl::OkStatus();
           }},
      })},
      {"zone", [&](const toml::node& n, const std::string&) -> absl::Status {
         const auto* arr = n.as_array();
         if (arr == nullptr) return r.Error(n.source(), "'zone' must be an array of tables ([[zone]])");
         if (!zones_replaced) {
           c->zones.clear();  // a file's zones replace the defaults as a whole
           zones_replaced = true;
         }
         for (const toml::node& z : *arr) {
           if (c->zones.size() >= kMaxZones) {
             return r.Error(z.source(), "more than " + std::to_string(kMaxZones) +
                                            " [[zone]] tables (each costs memory and set-up time on every worker)");
           }
           if (auto s = ParseZone(r, z, c, &zone_lines); !s.ok()) return s;
         }
         return absl::OkStatus();
       }},
      {"log", section("log", {
          {"level", [&](const toml::node& n, const std::string& key) -> absl::Status {
             auto v = r.String(n, key);
             if (!v.ok()) return v.status();
             if (!IsLogLevel(*v)) {
               return r.Error(n.source(), "'" + key + "' must be one of " + kLogLevels);
             }
             c->log_level = *v;
             return absl::OkStatus();
           }},
          {"format", [&](const toml::node& n, const std::string& key) -> absl::Status {
             auto v = r.String(n, key);
             if (!v.ok()) return v.status();
             if (*v != "text" && *v != "json") return r.Error(n.source(), "'" + key + "' must be \"text\" or \"json\"");
             c->log_format = *v;
             return absl::OkStatus();
           }},
          {"query_log_sample", IntInto(r, &c->query_log_sample, 0, 1'000'000'000)},
          {"summary_interval_s", SecondsInto(r, &c->log_summary_interval, 0, 86400)},
      })},
      {"interface", section("interface", {
          {"setup", BoolInto(r, &c->interface_setup)},
          {"name", [&](const toml::node& n, const std::string& key) -> absl::Status {
             auto v = r.String(n, key);
             if (!v.ok()) return v.status();
             if (v->empty() || v->size() > 15 || v->find_first_of("/ \t") != std::string::npos) {
               return r.Error(n.source(), "'" + key + "' must be an interface name of 1 to 15 characters");
             }
             c->interface_name = *v;
             return absl::OkStatus();
           }},
          {"addresses", [&](const toml::node& n, const std::string& key) -> absl::Status {
             const auto* arr = n.as_array();
             if (arr == nullptr) return r.Error(n.source(), "'" + key + "' must be an array of IP address strings");
             c->interface_addresses.clear();
             for (const toml::node& e : *arr) {
               auto a = r.Address(e, key + "[]", 53);
               if (!a.ok()) return a.status();
               c->interface_addresses.push_back(*a);
             }
             return absl::OkStatus();
           }},
          {"notrack", BoolInto(r, &c->interface_notrack)},
      })},
      {"control", section("control", {
          {"socket", StringInto(r, &c->control_socket)},
          {"mode", [&](const toml::node& n, const std::string& key) -> absl::Status {
             auto v = r.String(n, key);
             if (!v.ok()) return v.status();
             int mode = 0;
             auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), mode, 8);
             if (v->empty() || ec != std::errc() || p != v->data() + v->size() || mode > 0777) {
               return r.Error(n.source(), "'" + key + "' must be an octal mode such as \"0660\"");
             }
             c->control_socket_mode = mode;
             return absl::OkStatus();
           }},
          {"owner", StringInto(r, &c->control_socket_owner)},
          {"group", StringInto(r, &c->control_socket_group)},
      })},
      {"metrics", section("metrics", {{"listen", OptionalAddressInto(r, &c->metrics_listen)}})},
      {"health", section("health", {{"listen", OptionalAddressInto(r, &c->health_listen)}})},
      {"snapshot", section("snapshot", {
          {"path", StringInto(r, &c->snapshot_path)},
          {"interval_s", SecondsInto(r, &c->snapshot_interval, 1, 86400)},
      })},
  });
}

absl::StatusOr<Config> ParseInto(Config c, std::string_view text, std::string_view source_name, bool whole_file) {
  if (auto st = CheckConfigText(text, source_name, whole_file); !st.ok()) return st;
  Reader r(source_name);
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return r.Error(e.source(), std::string(e.description()));
  } catch (const std::exception& e) {  // allocation failure: refused, not fatal
    return absl::ResourceExhaustedError(std::string(source_name) + ": " + e.what());
  }
  if (auto s = Apply(root, r, &c); !s.ok()) return s;
  c.source = std::string(source_name);
  if (auto s = Validate(c); !s.ok()) {
    return absl::InvalidArgumentError(std::string(source_name) + ": " + std::string(s.message()));
  }
  return c;
}

}  // namespace


Config DefaultConfig() {
  // Parsed once: every reload and every file starts from it.
  static const Config* const kDefault = [] {
    auto c = ParseInto(Config{}, kDefaultConfigToml, "<embedded default config>", /*whole_file=*/true);
    // The embedded file is tested; failing here is a build defect.
    if (!c.ok()) abort();
    return new Config(std::move(*c));
  }();
  return *kDefault;
}

std::string_view DefaultConfigText() { return kDefaultConfigToml;
}

absl::StatusOr<Config> ParseConfig(std::string_view text, std::string_view source_name) {
  return ParseInto(DefaultConfig(), text, source_name, /*whole_file=*/false);
}

absl::StatusOr<Config> ParseConfigFile(std::string_view text, std::string_view path) {
  return ParseInto(DefaultConfig(), text, path, /*whole_file=*/true);
}

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(path + ": cannot open config file: " + std::strerror(errno));
  // Read one byte past the limit, never the whole of a huge file.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return absl::DataLossError(path + ": read error");
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(path + ": the file is larger than " + std::to_string(kMaxConfigBytes) +
                                      " bytes, the most a configuration may have");
  }
  return text;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  auto text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return ParseConfigFile(*text, path);
}

}  // namespace nodedns::config
