#ifndef NODEDNS_BENCH_WIRE_QUERY_H_
#define NODEDNS_BENCH_WIRE_QUERY_H_

// The load generators' queries, written without the daemon's codec on
// purpose: what measures the daemon must not share a bug with it.

#include <cstdint>
#include <string>
#include <string_view>

namespace nodedns::bench {

// A query for `name` (dotted, no trailing dot) of `type` with `id`, RD set,
// class IN, no EDNS.
inline std::string WireQuery(std::string_view name, uint16_t type, uint16_t id) {
  std::string q;
  q.push_back(static_cast<char>(id >> 8));
  q.push_back(static_cast<char>(id));
  q += std::string("\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    q.push_back(static_cast<char>(dot - start));
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q.push_back(0);
  q.push_back(static_cast<char>(type >> 8));
  q.push_back(static_cast<char>(type));
  q += std::string("\x00\x01", 2);
  return q;
}

}  // namespace nodedns::bench

#endif  // NODEDNS_BENCH_WIRE_QUERY_H_
