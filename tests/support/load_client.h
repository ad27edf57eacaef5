#ifndef NODEDNS_TESTS_SUPPORT_LOAD_CLIENT_H_
#define NODEDNS_TESTS_SUPPORT_LOAD_CLIENT_H_

// Sends A queries for `names` (round robin) at a steady rate from one UDP
// socket to 127.0.0.1:port for a bounded time, and records every answer.
// Runs on its own thread; Join() waits for the last answer (or its timeout).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace nodedns::testing {

class LoadClient {
 public:
  using Clock = std::chrono::steady_clock;
  struct Result {
    size_t name_index = 0;
    Clock::time_point sent;
    Clock::time_point received;  // epoch when unanswered
    bool answered = false;
    int rcode = -1;
    uint32_t ttl = 0;         // of the first answer record
    std::string rdata;        // of the first answer record
    int ede = -1;             // first EDE info code, -1 if none
    std::chrono::microseconds latency() const {
      return std::chrono::duration_cast<std::chrono::microseconds>(received - sent);
    }
  };

  LoadClient(uint16_t port, std::vector<std::string> names, int qps, std::chrono::milliseconds duration);
  ~LoadClient();
  void Join();
  const std::vector<Result>& results() const { return results_; }

 private:
  void Run();
  uint16_t port_;
  std::vector<std::string> names_;
  int qps_;
  std::chrono::milliseconds duration_;
  std::vector<Result> results_;
  std::thread thread_;
};

}  // namespace nodedns::testing

#endif  // NODEDNS_TESTS_SUPPORT_LOAD_CLIENT_H_
