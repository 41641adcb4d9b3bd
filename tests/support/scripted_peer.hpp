// Fake peers: scripted TCP connections driven by one epoll thread per PeerHost. The same
// scripts serve as fake upstreams (PeerHost::listen: every accepted connection runs the script)
// and as downstream clients (PeerHost::connect), so one thread can drive a thousand sessions.
// Every connection hashes what it sends and what it receives (StreamHash), and the test reads
// those records to check byte-exact delivery, EOF versus RST, and when each happened.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sockets.hpp"
#include "test_env.hpp"

namespace ringway::test {

inline constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

// What one connection does. The named constructors are the modes the test plan lists.
struct PeerScript {
  bool echo = false;              // write back every byte read; FIN after the peer's FIN
  uint64_t send_bytes = 0;        // pattern bytes to send (ignored when echo)
  uint64_t seed = 1;              // selects the pattern stream
  bool send_after_eof = false;    // start sending only once the peer has sent FIN
  bool wait_for_go = false;       // start sending only after PeerHost::go()
  bool fin_after_send = true;     // shutdown(SHUT_WR) once everything is sent
  bool read = true;               // false: never read (the peer's writes must block)
  uint64_t read_rate = 0;         // bytes/s while slow (0 = unlimited)
  uint64_t slow_read_bytes = 0;   // bytes read at read_rate before reading at full speed
  uint64_t rst_after = kNoLimit;  // abortive close (RST) once this many bytes were received
  int rcvbuf = 0;                 // SO_RCVBUF before listen/connect (0 = kernel default)

  static PeerScript Echo() { return PeerScript{.echo = true}; }
  // Reads to EOF, hashing; sends nothing; closes after the peer's FIN.
  static PeerScript Sink() { return PeerScript{}; }
  // Sends n bytes then FIN, reading (and hashing) concurrently until the peer's FIN.
  static PeerScript Source(uint64_t n, uint64_t seed) {
    return PeerScript{.send_bytes = n, .seed = seed};
  }
  // Reads to EOF first, then sends n bytes and FIN (the upstream of a downstream half-close).
  static PeerScript SinkThenSource(uint64_t n, uint64_t seed) {
    return PeerScript{.send_bytes = n, .seed = seed, .send_after_eof = true};
  }
  // Reads the first `slow_bytes` at `rate` bytes/s, then at full speed, until EOF.
  static PeerScript SlowReader(uint64_t rate, uint64_t slow_bytes) {
    return PeerScript{.read_rate = rate, .slow_read_bytes = slow_bytes};
  }
  // Accepts and never reads nor writes; stays open until the other side goes away.
  static PeerScript NeverRead(int rcvbuf = 0) {
    return PeerScript{.read = false, .rcvbuf = rcvbuf};
  }
  // Reads n bytes, then closes with RST.
  static PeerScript RstAfter(uint64_t n) { return PeerScript{.rst_after = n}; }
  // Sends n bytes and FIN, then keeps reading until the peer's FIN.
  static PeerScript FinAfter(uint64_t n, uint64_t seed) { return Source(n, seed); }
};

// What happened on one connection (a snapshot; the host thread updates its own copy).
struct ConnRecord {
  bool connected = false;
  int connect_errno = 0;
  uint64_t bytes_received = 0;
  uint64_t recv_digest = 0;
  uint64_t bytes_sent = 0;
  uint64_t sent_digest = 0;
  bool eof = false;              // the peer's FIN arrived (read returned 0)
  bool reset = false;            // ECONNRESET or EPIPE
  int error = 0;                 // another errno that ended the connection
  bool send_done = false;        // every byte sent and FIN sent (when the script sends FIN)
  bool closed = false;           // our fd is closed
  Clock::time_point ended_at{};  // first EOF, RST or error
  uint16_t local_port = 0;
  // Ended by the other side in any way (EOF, RST or error).
  bool ended() const { return eof || reset || error != 0; }
};

// One line for failure messages: "sent 1048576 (digest ..) received .. eof reset closed".
std::string describe(const ConnRecord& r);

class PeerHost {
 public:
  PeerHost();
  ~PeerHost();
  PeerHost(const PeerHost&) = delete;
  PeerHost& operator=(const PeerHost&) = delete;

  // A listener on host:0 whose accepted connections each run `script`; returns the port (0 on
  // failure). The socket is created on the calling thread, so a caller inside a network
  // namespace (NetnsScope) gets a listener in that namespace.
  uint16_t listen(const std::string& host, const PeerScript& script, int backlog = 4096);
  // Starts a connect on the calling thread (same namespace rule) and returns the connection's
  // id, an index into records(). A `source_host` ("127.0.0.5") binds the local address first
  // (port chosen at connect time), so many sessions to one gateway are not limited by one
  // address's ephemeral ports.
  size_t connect(const Endpoint& ep, const PeerScript& script, const std::string& source_host = "");
  // Releases every connection whose script waits for go.
  void go();
  // Closes a connection now: with RST (abortive) or with a plain close.
  void abort(size_t id);
  void close(size_t id);

  std::vector<ConnRecord> records() const;
  ConnRecord record(size_t id) const;
  size_t count() const;
  // Waits (bounded) until `pred` holds for the records; returns whether it did.
  bool wait(const std::function<bool(const std::vector<ConnRecord>&)>& pred, Millis timeout) const;

 private:
  struct Conn;
  struct Listener;

  void run();
  void post(std::function<void()> fn);
  void add_conn(size_t id, int fd, const PeerScript& script, bool connecting);
  void on_accept(Listener& l);
  void step(Conn& c, uint32_t events);
  void step_read(Conn& c, bool ignore_rate);
  void step_write(Conn& c);
  void finish(Conn& c, bool abortive);
  bool wants_write(const Conn& c) const;
  void update_interest(Conn& c);
  void publish(const Conn& c);

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;

  // Owned by the host thread.
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<Conn>>
      conns_;  // indexed by id (null: not ours yet); fd -1 once closed
  bool go_ = false;

  // Shared with the test thread.
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<ConnRecord> records_;
  std::vector<std::function<void()>> commands_;
  bool stop_ = false;
};

}  // namespace ringway::test
