#ifndef NODEDNS_LIB_COMMON_SD_NOTIFY_H_
#define NODEDNS_LIB_COMMON_SD_NOTIFY_H_

// systemd's service notification protocol (sd_notify(3)), implemented on its
// documented wire format rather than linking libsystemd: one datagram with
// "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET ("@..." is
// the abstract namespace). Without $NOTIFY_SOCKET every call is a no-op.

#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace nodedns {

// Sends `state` (e.g. "READY=1\nSTATUS=serving"). OK when not under systemd.
absl::Status SdNotify(std::string_view state);

// The watchdog interval systemd expects keep-alives within ($WATCHDOG_USEC,
// if $WATCHDOG_PID is unset or is this process); ZeroDuration if none.
absl::Duration SdWatchdogInterval();

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_SD_NOTIFY_H_
