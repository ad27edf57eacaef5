#include "lib/control/commands.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "lib/control/control_target.h"
#include "lib/control/protocol.h"
#include "lib/dns/name.h"
#include "lib/dns/query_view.h"

namespace nodedns::control {
namespace {

using nlohmann::json;
namespace p = protocol;

// Requests are flat; nlohmann's parser is iterative, but dumping or copying a
// value recurses once per level, so deeper nesting is refused up front.
constexpr int kMaxJsonDepth = 16;

// How deep `text`'s arrays and objects nest (strings skipped).
int JsonDepth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// A value for an error message: short, and never throwing. Arrays and
// objects are not spelt out.
std::string Shown(const json& v) {
  if (v.is_array()) return v.empty() ? "[]" : "[...]";
  if (v.is_object()) return v.empty() ? "{}" : "{...}";
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// The fields of one request object. Each Take* consumes a field; Finish()
// refuses whatever was not consumed. Errors read
// `COMMAND: "FIELD" must be WHAT, got VALUE`.
class Fields {
 public:
  Fields(const json& object, std::string command) : object_(object), command_(std::move(command)) {}

  absl::Status Error(std::string_view field, std::string_view what, const json* got) const {
    std::string m = command_ + ": \"" + std::string(field) + "\" ";
    if (got == nullptr) return absl::InvalidArgumentError(m + "is missing (" + std::string(what) + ")");
    return absl::InvalidArgumentError(m + "must be " + std::string(what) + ", got " + Shown(*got));
  }

  // nullptr if absent.
  const json* Take(std::string_view field) {
    auto it = object_.find(field);
    if (it == object_.end()) return nullptr;
    taken_.insert(std::string(field));
    return &*it;
  }

  absl::StatusOr<std::optional<std::string>> String(std::string_view field, size_t max_size) {
    const json* v = Take(field);
    if (v == nullptr) return std::nullopt;
    std::string what = "a string of at most " + std::to_string(max_size) + " bytes";
    if (!v->is_string() || v->get_ref<const std::string&>().size() > max_size) return Error(field, what, v);
    return v->get<std::string>();
  }

  absl::StatusOr<std::optional<int64_t>> Int(std::string_view field, int64_t min, int64_t max) {
    const json* v = Take(field);
    if (v == nullptr) return std::nullopt;
    std::string what = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    // 5.0 is a number_float: refused like any other non-integer.
    if (v->is_number_unsigned()) {
      uint64_t u = v->get<uint64_t>();
      if (u > static_cast<uint64_t>(max) || static_cast<int64_t>(u) < min) return Error(field, what, v);
      return static_cast<int64_t>(u);
    }
    if (!v->is_number_integer()) return Error(field, what, v);
    int64_t i = v->get<int64_t>();
    if (i < min || i > max) return Error(field, what, v);
    return i;
  }

  absl::StatusOr<int64_t> RequiredInt(std::string_view field, int64_t min, int64_t max) {
    auto v = Int(field, min, max);
    if (!v.ok()) return v.status();
    if (!*v) return Error(field, "an integer from " + std::to_string(min) + " to " + std::to_string(max), nullptr);
    return **v;
  }

  absl::StatusOr<std::optional<bool>> Bool(std::string_view field) {
    const json* v = Take(field);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) return Error(field, "true or false", v);
    return v->get<bool>();
  }

  absl::Status Finish() const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (taken_.contains(it.key())) continue;
      return absl::InvalidArgumentError(command_ + ": unknown field \"" + it.key().substr(0, 64) + "\"");
    }
    return absl::OkStatus();
  }

  const std::string& command() const { return command_; }

 private:
  const json& object_;
  std::string command_;
  absl::flat_hash_set<std::string> taken_{p::kCommand};
};

#define NODEDNS_ASSIGN_OR_RETURN(lhs, expr) \
  auto lhs##_or = (expr);                   \
  if (!lhs##_or.ok()) return lhs##_or.status(); \
  auto lhs = std::move(*lhs##_or)

// A domain name field: its text and its lower-case wire form.
absl::Status NameInto(Fields& f, const std::string& text, std::string* lower) {
  auto wire = dns::NameFromText(text);
  if (!wire.ok()) {
    return absl::InvalidArgumentError(f.command() + ": \"name\" " + std::string(wire.status().message()));
  }
  *lower = dns::Lowercase(*wire);
  return absl::OkStatus();
}

absl::StatusOr<ControlRequest> ParseDump(Fields& f) {
  DumpRequest r;
  NODEDNS_ASSIGN_OR_RETURN(name, f.String(p::kName, 1024));
  NODEDNS_ASSIGN_OR_RETURN(limit, f.Int(p::kLimit, 0, p::kMaxDumpLimit));
  if (name) {
    r.name_text = *name;
    if (auto st = NameInto(f, *name, &r.name_lower); !st.ok()) return st;
  }
  r.limit = limit ? static_cast<uint64_t>(*limit) : p::kDefaultDumpLimit;
  return r;
}

absl::StatusOr<ControlRequest> ParseFlush(Fields& f) {
  FlushRequest r;
  NODEDNS_ASSIGN_OR_RETURN(name, f.String(p::kName, 1024));
  NODEDNS_ASSIGN_OR_RETURN(all, f.Bool(p::kAll));
  r.all = all.value_or(false);
  if (r.all && name) return absl::InvalidArgumentError("flush: give \"name\" or \"all\": true, not both");
  if (!r.all && !name) return absl::InvalidArgumentError("flush: give \"name\" (a domain name) or \"all\": true");
  if (name) {
    r.name_text = *name;
    if (auto st = NameInto(f, *name, &r.name_lower); !st.ok()) return st;
  }
  return r;
}

// The fields handover and release share.
template <typename T>
absl::Status ParsePeerFields(Fields& f, T* r) {
  NODEDNS_ASSIGN_OR_RETURN(pid, f.RequiredInt(p::kPid, 1, p::kMaxPid));
  NODEDNS_ASSIGN_OR_RETURN(protocol, f.RequiredInt(p::kProtocol, 1, 1000000));
  NODEDNS_ASSIGN_OR_RETURN(version, f.String(p::kVersion, 64));
  r->pid = static_cast<pid_t>(pid);
  r->protocol = protocol;
  r->version = version.value_or("");
  return absl::OkStatus();
}

absl::StatusOr<ControlRequest> ParseRelease(Fields& f) {
  ReleaseRequest r;
  if (auto st = ParsePeerFields(f, &r); !st.ok()) return st;
  const json* a = f.Take(p::kAddresses);
  std::string what = "an array of 1 to " + std::to_string(p::kMaxAddresses) + " \"ADDR:PORT\" strings";
  if (a == nullptr) return f.Error(p::kAddresses, what, nullptr);
  if (!a->is_array() || a->empty() || a->size() > p::kMaxAddresses) return f.Error(p::kAddresses, what, a);
  for (const json& e : *a) {
    if (!e.is_string()) return f.Error(p::kAddresses, what, &e);
    auto addr = SocketAddress::Parse(e.get_ref<const std::string&>());
    if (!addr.ok()) return f.Error(p::kAddresses, what, &e);
    r.addresses.push_back(*addr);
  }
  return r;
}

json ZonesJson(const std::vector<ZoneSummary>& zones) {
  json out = json::array();
  for (const ZoneSummary& z : zones) {
    out.push_back({{"zone", z.name}, {"servers", z.servers}, {"max_stale_seconds", z.max_stale_seconds},
                   {"last_known_good", z.last_known_good}});
  }
  return out;
}

json Dump(const DumpRequest& r, cache::Cache& cache, absl::Time now) {
  json entries = json::array();
  uint64_t matched = 0;
  static constexpr const char* kKinds[] = {"positive", "nxdomain", "nodata", "servfail", "other"};
  for (const cache::EntrySummary& e : cache.Summaries()) {
    std::string_view qname = dns::CacheKeyQname(e.key);
    if (!r.name_lower.empty() && qname != r.name_lower) continue;
    if (++matched > r.limit) continue;
    bool fresh = now < e.expires_at;
    json j = {{"name", dns::NameToText(qname)},
              {"type", dns::TypeToText(dns::CacheKeyQtype(e.key))},
              {"dnssec_ok", dns::CacheKeyDo(e.key)},
              {"kind", kKinds[static_cast<int>(e.kind)]},
              {"state", fresh ? "fresh" : "stale"},
              {"age_seconds", absl::ToInt64Seconds(now - e.inserted_at)},
              {"pinned", e.tier == cache::Tier::kPinned},
              {"bytes", e.image_len}};
    if (fresh) {
      j["ttl_remaining_seconds"] = absl::ToInt64Seconds(e.expires_at - now);
    } else {
      j["stale_seconds"] = absl::ToInt64Seconds(now - e.expires_at);
      j["stale_remaining_seconds"] = std::max<int64_t>(0, absl::ToInt64Seconds(e.stale_until - now));
    }
    entries.push_back(std::move(j));
  }
  return {{"ok", true}, {"entries", entries}, {"matched", matched}, {"truncated", matched > r.limit}};
}

json Flush(const FlushRequest& r, cache::Cache& cache) {
  size_t n;
  if (r.all) {
    n = cache.entries();
    cache.Clear();
    spdlog::info("cache flushed by dnsctl: {} entries removed", n);
  } else {
    n = cache.EraseName(r.name_lower);
    spdlog::info("cache flush of {} by dnsctl: {} entries removed", r.name_text, n);
  }
  return {{"ok", true}, {"removed", n}};
}

json Answer(const absl::StatusOr<json>& result) {
  if (!result.ok()) return ErrorAnswer(std::string(result.status().message()));
  json j = *result;
  j[p::kOk] = true;
  return j;
}

// Answers a parsed request. `respond` takes the answer object.
void Dispatch(const ControlRequest& request, const PeerCredentials& peer, ControlTarget& target,
              const std::function<void(const json&)>& reply) {
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, StatsRequest>) {
          json j = StatsJson(target.Stats());
          j[p::kOk] = true;
          reply(j);
        } else if constexpr (std::is_same_v<T, UpstreamsRequest>) {
          StatsSnapshot s = target.Stats();
          json j = {{p::kOk, true}, {"upstreams", UpstreamsJson(s)}, {"zones", ZonesJson(target.Zones())}};
          if (!s.upstreams_error.empty()) j["upstreams_error"] = s.upstreams_error;
          reply(j);
        } else if constexpr (std::is_same_v<T, DumpRequest>) {
          reply(Dump(r, target.Cache(), target.CacheNow()));
        } else if constexpr (std::is_same_v<T, FlushRequest>) {
          reply(Flush(r, target.Cache()));
        } else if constexpr (std::is_same_v<T, ReloadRequest>) {
          reply(Answer(target.Reload()));
        } else if constexpr (std::is_same_v<T, SnapshotRequest>) {
          target.Snapshot([reply](absl::StatusOr<json> result) { reply(Answer(result)); });
        } else if constexpr (std::is_same_v<T, HealthRequest>) {
          HealthStatus h = target.Health();
          reply({{p::kOk, true}, {"healthy", h.healthy}, {"ready", h.ready}, {"detail", h.detail}});
        } else if constexpr (std::is_same_v<T, HandoverRequest>) {
          reply(Answer(target.Handover(r, peer)));
        } else if constexpr (std::is_same_v<T, ReleaseRequest>) {
          reply(Answer(target.Release(r, peer)));
        }
      },
      request);
}

#undef NODEDNS_ASSIGN_OR_RETURN

}  // namespace

absl::StatusOr<ControlRequest> ParseControlRequest(std::string_view line) {
  if (JsonDepth(line) > kMaxJsonDepth) {
    return absl::InvalidArgumentError("malformed request: nested more than " + std::to_string(kMaxJsonDepth) +
                                      " levels deep");
  }
  json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded() || !req.is_object()) {
    return absl::InvalidArgumentError("malformed request: expected one JSON object with a \"command\" string");
  }
  auto cmd = req.find(p::kCommand);
  if (cmd == req.end() || !cmd->is_string()) {
    return absl::InvalidArgumentError("malformed request: \"command\" must be a string");
  }
  const std::string& name = cmd->get_ref<const std::string&>();
  Fields f(req, name);
  absl::StatusOr<ControlRequest> r;
  if (name == p::kStats) {
    r = StatsRequest{};
  } else if (name == p::kUpstreams) {
    r = UpstreamsRequest{};
  } else if (name == p::kDump) {
    r = ParseDump(f);
  } else if (name == p::kFlush) {
    r = ParseFlush(f);
  } else if (name == p::kReload) {
    r = ReloadRequest{};
  } else if (name == p::kSnapshot) {
    r = SnapshotRequest{};
  } else if (name == p::kHealth) {
    r = HealthRequest{};
  } else if (name == p::kHandover) {
    HandoverRequest h;
    if (auto st = ParsePeerFields(f, &h); !st.ok()) return st;
    r = h;
  } else if (name == p::kRelease) {
    r = ParseRelease(f);
  } else {
    return absl::InvalidArgumentError("unknown command '" + name.substr(0, 64) + "'");
  }
  if (!r.ok()) return r.status();
  if (auto st = f.Finish(); !st.ok()) return st;
  return r;
}

json HandoverRequestJson(const HandoverRequest& r) {
  return {{p::kCommand, p::kHandover}, {p::kPid, r.pid}, {p::kProtocol, r.protocol}, {p::kVersion, r.version}};
}

json ReleaseRequestJson(const ReleaseRequest& r) {
  json addresses = json::array();
  for (const SocketAddress& a : r.addresses) addresses.push_back(a.ToString());
  return {{p::kCommand, p::kRelease}, {p::kPid, r.pid}, {p::kProtocol, r.protocol}, {p::kVersion, r.version},
          {p::kAddresses, addresses}};
}

std::string RenderAnswer(const json& answer) {
  return answer.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

json ErrorAnswer(std::string_view message) { return {{p::kOk, false}, {p::kError, std::string(message)}}; }

StreamServerOptions ControlSocketOptions() {
  StreamServerOptions o;
  o.delimiter = "\n";
  o.max_request = 64 * 1024;
  o.request_timeout = absl::Seconds(2);
  o.answer_timeout = absl::Seconds(60);
  o.max_connections = 64;
  o.oversize = RenderAnswer(ErrorAnswer("request too large"));
  o.internal_error = RenderAnswer(ErrorAnswer("internal error"));
  return o;
}

void HandleControlRequest(std::string_view line, const PeerCredentials& peer, ControlTarget& target,
                          const std::function<void(std::string)>& respond) {
  // Answered at most once, also when a handler throws after answering.
  auto answered = std::make_shared<bool>(false);
  auto reply = [respond, answered](const json& j) {
    if (*answered) return;
    *answered = true;
    respond(RenderAnswer(j));
  };
  try {
    auto request = ParseControlRequest(line);
    if (!request.ok()) {
      reply(ErrorAnswer(std::string(request.status().message())));
      return;
    }
    Dispatch(*request, peer, target, reply);
  } catch (const std::exception& e) {
    spdlog::error("control: internal error answering a request: {}", e.what());
    reply(ErrorAnswer(std::string("internal error: ") + e.what()));
  } catch (...) {
    spdlog::error("control: internal error answering a request");
    reply(ErrorAnswer("internal error"));
  }
}

}  // namespace nodedns::control
