// Observing the daemon from outside through /proc: open fds, resident memory, and sockets left
// in CLOSE_WAIT; plus the leak audit every integration test ends with.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>

#include "test_env.hpp"

namespace ringway::test {

// Number of entries in /proc/PID/fd; -1 when the process is gone.
int fd_count(pid_t pid);
// VmRSS from /proc/PID/status in KiB; -1 when unavailable.
int64_t rss_kib(pid_t pid);
// CPU time (user + system, all threads) the process has used, in seconds; -1 when gone.
double cpu_seconds(pid_t pid);
// Inodes of the sockets among the process's fds (from the "socket:[N]" links).
std::set<uint64_t> socket_inodes(pid_t pid);
// How many TCP sockets (IPv4 and IPv6) owned by the process are in CLOSE_WAIT (state 08), read
// from /proc/PID/net/tcp{,6} and matched by inode, so other processes' sockets do not count.
int close_wait_count(pid_t pid);

// The leak audit: polls (bounded by `timeout`) until the process's fd count equals
// `baseline_fds` (plus two per empty pipe the workers keep for reuse), the summed
// ringway_downstream_connections_active and ringway_splice_pipes_in_use gauges are 0 (when an
// admin port is given) and no socket of the process is in CLOSE_WAIT. Returns "" when all hold,
// else a description of what was still wrong at the deadline.
std::string audit_leaks(pid_t pid, int baseline_fds, uint16_t admin_port, Millis timeout);

}  // namespace ringway::test
