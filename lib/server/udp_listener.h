#ifndef NODEDNS_LIB_SERVER_UDP_LISTENER_H_
#define NODEDNS_LIB_SERVER_UDP_LISTENER_H_

// A UDP socket served from a libuv loop. The socket is driven directly with
// a uv_poll_t so that one readable event becomes one recvmmsg of up to
// kBatch queries and one sendmmsg of every answer available at once: the
// syscalls, not the DNS work, dominate the cost of a cache hit.
// When a read finds a full batch waiting, the receive queue's fill is passed
// to the resolver (Resolver::NoteReceiveBacklog): the measure of overload for
// load shedding.
// A socket bound to a wildcard address (0.0.0.0, ::) learns each query's
// destination address (IP_PKTINFO / IPV6_RECVPKTINFO) and sends the answer
// from it, as a client expects (a reply from another address is dropped).
//
// Threading: belongs to one worker loop; not thread-safe.
// Lifetime: Close(), let the loop run the close callback, then destroy.

#include <sys/socket.h>
#include <uv.h>

#include <vector>

#include "lib/server/counters.h"
#include "lib/resolver/resolver.h"
#include "lib/server/query_log.h"

namespace nodedns::server {

class UdpListener final : public resolver::ReplySink {
 public:
  static constexpr int kBatch = 32;
  static constexpr size_t kMaxQuerySize = 4096;

  // Takes ownership of `fd` (closed by Close()).
  UdpListener(uv_loop_t* loop, int fd, resolver::Resolver* resolver, Counters* counters, uint16_t max_udp_size);
  ~UdpListener() override;
  UdpListener(const UdpListener&) = delete;
  UdpListener& operator=(const UdpListener&) = delete;

  absl::Status Start();
  // Stops reading new queries; answers still pending can be sent.
  void StopReading();
  // Answers every datagram already queued on the socket (bounded), whether
  // or not reading is stopped: nothing the kernel accepted is dropped at
  // shutdown.
  void Drain();
  void Close();

  void SendReply(const resolver::ReplyTarget& to, absl::Span<const uint8_t> answer) override;
  // New queries go to `resolver` (configuration reload); answers of queries
  // the previous one still has in flight keep arriving through SendReply.
  void set_resolver(resolver::Resolver* resolver) { resolver_ = resolver; }
  void set_query_log(QueryLog* log) { query_log_ = log; }

 private:
  static void OnReadable(uv_poll_t* handle, int status, int events);
  // True once the socket had nothing more to read.
  bool ReadBatches();
  void Flush(int count);
  // Tells the resolver how full the socket's receive queue is (SO_MEMINFO).
  void ReportBacklog();
  // The destination of received message i (wildcard sockets only).
  resolver::PacketInfo ReceivedInfo(int i) const;
  // Writes the control message that sends from `info` into `buf`; returns
  // its length (0: none).
  static size_t WriteSourceControl(const resolver::PacketInfo& info, uint8_t* buf);
  static constexpr size_t kControlSize = 64;  // >= CMSG_SPACE(sizeof(in6_pktinfo))

  uv_loop_t* const loop_;
  const int fd_;
  resolver::Resolver* resolver_;
  Counters* const counters_;
  QueryLog* query_log_ = nullptr;
  const size_t slot_size_;
  uv_poll_t poll_;
  bool polling_ = false;
  bool closed_ = false;
  bool pktinfo_ = false;  // bound to a wildcard address
  std::vector<uint8_t> in_;   // kBatch x kMaxQuerySize
  std::vector<uint8_t> out_;  // kBatch x slot_size_
  mmsghdr in_msgs_[kBatch];
  iovec in_iov_[kBatch];
  sockaddr_storage peers_[kBatch];
  mmsghdr out_msgs_[kBatch];
  iovec out_iov_[kBatch];
  alignas(cmsghdr) uint8_t in_control_[kBatch][kControlSize];
  alignas(cmsghdr) uint8_t out_control_[kBatch][kControlSize];
};

}  // namespace nodedns::server

#endif  // NODEDNS_LIB_SERVER_UDP_LISTENER_H_
