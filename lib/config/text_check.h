#ifndef NODEDNS_LIB_CONFIG_TEXT_CHECK_H_
#define NODEDNS_LIB_CONFIG_TEXT_CHECK_H_

// Limits a configuration file must meet before toml++ parses it. toml++
// recurses once per level of a dotted key or table header and overflows the
// stack at some 30,000 levels ("[a.a.a...]" in a 200 KB file), so depth is
// bounded by a cheap scan of the raw text first; the scan knows TOML's
// strings and comments, so a dot or bracket inside them does not count.
// Because toml++ stops at the first error, only what precedes it can nest:
// the scan needs to agree with TOML only on valid text.

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"

namespace nodedns::config {

inline constexpr size_t kMaxConfigBytes = 1 << 20;  // 1 MiB: a config with the zone cap is ~40 KB
inline constexpr int kMaxConfigNesting = 32;      // arrays and inline tables inside each other
inline constexpr int kMaxDotsPerLine = 64;        // dotted keys and headers (and floats) on one line
inline constexpr size_t kMaxZones = 256;          // [[zone]] tables: each costs memory on every worker
inline constexpr size_t kMaxPinnedNames = 1000;   // pin names over all zones: their entries are never evicted

// "SOURCE:LINE: reason" if `text` is larger or deeper than the limits above,
// contains a NUL byte, or holds no setting at all (empty, or comments only:
// such a file would silently reset everything to the built-in defaults). With
// `whole_file`, a last line without its newline is refused too: that is what
// a file caught in the middle of being written looks like.
absl::Status CheckConfigText(std::string_view text, std::string_view source, bool whole_file);

}  // namespace nodedns::config

#endif  // NODEDNS_LIB_CONFIG_TEXT_CHECK_H_
