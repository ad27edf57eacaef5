#ifndef NODEDNS_LIB_CONTROL_CLIENT_H_
#define NODEDNS_LIB_CONTROL_CLIENT_H_

// The client side of the control protocol: one JSON request on a new
// connection, one JSON answer. Used by dnsctl and by a starting nodedns that
// takes over from a running one.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace nodedns::control {

// Errors: NotFound or Unavailable (nothing serves on `path`), PermissionDenied,
// DeadlineExceeded (no answer in time), DataLoss (an incomplete or non-JSON
// answer). A daemon-side error is an OK result with "ok": false. A connection
// the daemon closed before taking the request (cut to make room, its slots
// full of idle connections) is tried again, up to three times in all.
absl::StatusOr<nlohmann::json> Call(const std::string& path, const nlohmann::json& request, absl::Duration timeout);

// Fields of an answer, read without trusting their types (another nodedns,
// of another version, may have sent it): "ok" is true; an integer field, 0
// if absent or not an integer; the "error" string, or a placeholder.
bool AnswerOk(const nlohmann::json& answer);
int64_t AnswerInt(const nlohmann::json& answer, const char* key);
std::string AnswerError(const nlohmann::json& answer);

}  // namespace nodedns::control

#endif  // NODEDNS_LIB_CONTROL_CLIENT_H_
