#ifndef NODEDNS_LIB_SERVER_TCP_CONNECTION_H_
#define NODEDNS_LIB_SERVER_TCP_CONNECTION_H_

// TcpListener's private parts, shared by tcp_listener.cc (reading, running
// frames, writing) and tcp_limits.cc (the budget, the activity order, the
// sweep). Not for other users.
//
// Threading: the listener's loop thread.

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "lib/common/counters.h"
#include "lib/server/tcp_listener.h"

namespace nodedns::server {

struct TcpListener::Connection {
  TcpListener* owner = nullptr;
  uint64_t id = 0;
  uv_tcp_t tcp;
  uv_write_t write_req;  // the one write in flight
  Connection* older = nullptr;  // the listener's activity list
  Connection* newer = nullptr;
  std::vector<uint8_t> in;       // received, not yet run: a partial frame, or frames waiting for room
  std::vector<uint8_t> out;      // answers queued, not yet handed to the kernel
  std::vector<uint8_t> writing;  // the uv_write in flight: bytes from writing_from on
  size_t writing_from = 0;
  int64_t charged = 0;           // bytes charged to the budget
  int inflight = 0;              // queries waiting for an upstream answer
  int64_t read_ns = 0;           // MonotonicNanos() of the last read (latency histogram)
  absl::Time last_active;        // accepted, a complete query, or answer bytes taken by the client
  absl::Time frame_started = absl::InfiniteFuture();  // first byte of the frame in progress
  bool reading = false;
  bool queue_full = false;       // reading paused for the write queue (counted once per pause)
  bool write_in_flight = false;
  bool eof = false;              // the client finished sending
  bool closing = false;
  bool shutting_down = false;
};

namespace tcp_internal {

// Read at most this much at once unless a longer frame is in progress: what
// cannot be run at once stays with the connection, while unread bytes wait
// in the kernel at no cost to us.
inline constexpr size_t kReadChunk = 16 << 10;
inline constexpr size_t kMaxFrame = 2 + 65535;
// Buffers larger than this are freed when they empty rather than kept.
inline constexpr size_t kKeepCapacity = 4096;
// A frame in progress for less than this (its client is sending it) keeps a
// connection from being cut for a new one; answers taken by the client less
// than this ago keep it from being cut for the budget.
inline constexpr absl::Duration kCutGrace = absl::Milliseconds(250);
// glibc keeps freed memory in its arenas; after this much was released, the
// sweep hands it back (malloc_trim). Measured in README "TCP abuse".
inline constexpr int64_t kTrimAfter = int64_t{8} << 20;
// The kernel's send buffer of a connection (it doubles the value): without
// it, loopback autotuning lets a client that never reads make us answer
// about 4 MB into the kernel before its reading pauses, each time it
// reconnects (and with 64 KiB, 300 such clients reconnecting still cost
// most of a core: bench/tcp_abuse.sh). Larger answers go out in pieces.
inline constexpr int kSocketSendBuffer = 16 << 10;
// Connections accepted per loop iteration; the rest wait for the next one, so
// a burst of connects (hundreds of abusers reconnecting at once) does not hold
// UDP queries behind it (libuv stops watching the listening socket until the
// pending one is accepted).
inline constexpr int kAcceptsPerTurn = 16;

inline uv_stream_t* Stream(uv_tcp_t* tcp) { return reinterpret_cast<uv_stream_t*>(tcp); }

inline void FreeIfLarge(std::vector<uint8_t>& v) {
  if (v.empty() && v.capacity() > kKeepCapacity) std::vector<uint8_t>().swap(v);
}

inline void AddTo(std::atomic<uint64_t>& counter, int64_t n) { Bump(counter, static_cast<uint64_t>(n)); }


}  // namespace tcp_internal
}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_TCP_CONNECTION_H_
