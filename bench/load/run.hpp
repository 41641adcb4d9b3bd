// The client run of ringway-load: starts the worker threads of stream/rr/crr/hold, drives the
// phases (connect, warmup, measure, stop), prints a progress line per second, measures the
// target process, and prints the final table or JSON.
#pragma once

#include <functional>

#include "common.hpp"

namespace ringway::load {

// One worker: runs until control.stopping(), bumping `counters`. It must increment
// control.ready_workers once its connections are set up (or failed), and poll the phase at least
// every 100 ms.
using WorkerBody =
    std::function<void(int worker_index, ThreadCounters& counters, RunControl& control)>;

// Runs `threads` workers and reports. Returns the process exit code: 0, or 1 when nothing
// succeeded (no byte, request or held connection at all).
int run_client(const Options& options, int threads, const WorkerBody& body);

// Connections of worker `worker` out of `workers` when `total` are spread evenly, and the global
// number of its first connection (what picks the source address).
int share_of(int total, int workers, int worker);
int first_of(int total, int workers, int worker);

}  // namespace ringway::load
