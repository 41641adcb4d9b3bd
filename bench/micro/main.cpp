// Entry point of ringway-micro; the benchmarks register themselves from the other files.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
