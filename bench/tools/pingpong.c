/* pingpong: the simplest possible request/response client, a yardstick for ringway-load's `rr`.
 * One blocking connection, write S bytes, read S bytes back, repeat for D seconds; prints the
 * round trips per second. If ringway-load rr -c 1 is not at least this fast, the load tool is the
 * bottleneck. Usage: pingpong HOST PORT [SECONDS [SIZE]] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s HOST PORT [SECONDS [SIZE]]\n", argv[0]);
    return 2;
  }
  double seconds = argc > 3 ? atof(argv[3]) : 5.0;
  size_t size = argc > 4 ? (size_t)atol(argv[4]) : 64;
  if (size == 0 || size > 65536 || seconds <= 0 || seconds > 3600) {
    fprintf(stderr, "pingpong: SIZE must be 1..65536 and SECONDS 0..3600\n");
    return 2;
  }
  struct sockaddr_in target;
  memset(&target, 0, sizeof(target));
  target.sin_family = AF_INET;
  target.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &target.sin_addr) != 1) {
    fprintf(stderr, "pingpong: HOST must be an IPv4 literal\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  /* A dead peer must not hang the run: reads give up after one second. */
  struct timeval tv = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr*)&target, sizeof(target)) != 0) {
    perror("pingpong: connect");
    return 1;
  }
  char* buffer = malloc(size);
  memset(buffer, 'p', size);
  unsigned long long round_trips = 0;
  double start = now_s();
  double end = start + seconds;
  double now = start;
  /* Bounded by the deadline; checking the clock every 64 round trips keeps it off the profile. */
  while (now < end) {
    if (write(fd, buffer, size) != (ssize_t)size) {
      perror("pingpong: write");
      return 1;
    }
    size_t got = 0;
    while (got < size) {
      ssize_t n = read(fd, buffer + got, size - got);
      if (n <= 0) {
        fprintf(stderr, "pingpong: read failed or peer closed\n");
        return 1;
      }
      got += (size_t)n;
    }
    ++round_trips;
    if ((round_trips & 63) == 0) now = now_s();
  }
  double elapsed = now_s() - start;
  printf("{\"round_trips\": %llu, \"seconds\": %.3f, \"requests_per_s\": %.1f}\n", round_trips,
         elapsed, (double)round_trips / elapsed);
  close(fd);
  free(buffer);
  return 0;
}
