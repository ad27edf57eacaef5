#ifndef NODEDNS_LIB_APP_STARTUP_CHECK_H_
#define NODEDNS_LIB_APP_STARTUP_CHECK_H_

// What start-up would refuse, checked without starting: `nodedns
// --check-config` runs these after the config has parsed (and its
// "resolv.conf" servers were read, as start-up reads them), so that a file it
// accepts does not then fail to start. Nothing is bound, created or changed.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/config/command_line.h"
#include "lib/config/config.h"

namespace nodedns::app {

// Errors: --user names no account (or one we may not become); the control
// socket's path does not fit a socket address, or its owner or group does
// not exist.
absl::Status CheckStartup(const config::CommandLine& cl, const config::Config& c);

// Warnings, one line each: a listen address (unless [interface] setup puts
// it on the node interface at start-up), the metrics or the health address that is not
// one of this host's (a bind to it with port 0 fails). Start-up would fail
// here, but a file checked on another machine than the node it is for (a CI
// job, the chart's test) may well be right.
std::vector<std::string> HostAddressWarnings(const config::Config& c);

}  // namespace nodedns::app

#endif  // NODEDNS_LIB_APP_STARTUP_CHECK_H_
