// The client workers of ringway-load: one function per subcommand, run on each worker thread by
// run_client(). Each worker owns its sockets and its epoll instance; nothing is shared between
// workers but the counters the reporter reads.
#pragma once

#include <vector>

#include "common.hpp"
#include "sockets.hpp"

namespace ringway::load {

struct WorkerContext {
  const Options* options = nullptr;
  const ConnectSpec* spec = nullptr;
  int worker = 0;   // this worker's index
  int workers = 1;  // how many there are
};

void stream_worker(const WorkerContext& context, ThreadCounters& counters, RunControl& control);
void rr_worker(const WorkerContext& context, ThreadCounters& counters, RunControl& control);
void crr_worker(const WorkerContext& context, ThreadCounters& counters, RunControl& control);
void hold_worker(const WorkerContext& context, ThreadCounters& counters, RunControl& control);

// Connects this worker's share of --connections (at most 256 connects in flight), each bounded
// by --timeout. Failures are counted by cause; returns the connected sockets (non-blocking), and
// counts each in counters.established.
std::vector<int> connect_share(const WorkerContext& context, ThreadCounters& counters,
                               const RunControl& control);
// Blocks (1 ms naps) until the run leaves the setup phase, so every worker starts loading at once.
void wait_for_start(const RunControl& control);
// Closes a connected socket and keeps counters.established right.
void close_connection(int fd, ThreadCounters& counters);

}  // namespace ringway::load
