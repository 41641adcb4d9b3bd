// Client and server socket helpers of ringway-load: non-blocking connect with an optional source
// address, the options the subcommands set, and SO_REUSEPORT listeners for `serve`.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <vector>

namespace ringway::load {

struct ConnectSpec {
  sockaddr_storage target{};
  socklen_t target_length = 0;
  std::vector<in_addr> sources;  // empty: the kernel picks the source address
  bool nodelay = true;           // request/response traffic must not wait for Nagle
  bool keepalive = false;
};

// Starts a non-blocking connect; connection number `index` uses sources[index % size]. Returns
// the socket (connect in progress or done) or -errno when socket/bind/connect failed at once.
int start_connect(const ConnectSpec& spec, uint64_t index);
// The outcome of a connect once the socket reported writable: 0 or the pending errno.
int connect_result(int fd);
// A listening socket on `address` with SO_REUSEPORT, so every serve thread gets its own and the
// kernel spreads connections over them. Returns the socket or -errno.
int listen_on(const sockaddr_storage& address, socklen_t length, int backlog);
void set_nodelay(int fd);
void set_keepalive(int fd);
void set_blocking(int fd, bool blocking);
// SO_RCVTIMEO and SO_SNDTIMEO, so a blocking worker still notices the stop phase in time.
void set_io_timeout(int fd, int milliseconds);

}  // namespace ringway::load
