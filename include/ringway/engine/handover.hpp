// What moves between two Ringway processes at a reload or restart: listen sockets and live
// sessions, as plain data plus file descriptors. The engine produces these (Engine::hand_over)
// and consumes them (Engine::set_inherited_listeners, Engine::import_sessions); the app layer
// carries them across the process boundary (app/handover). Nothing here knows about the wire.
//
// Ownership: every fd in these structs is owned by whoever holds the struct. The exporting
// worker gives its fds away with the struct; an importing worker takes them over.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ringway/config/model.hpp"
#include "ringway/net/address.hpp"

namespace ringway::engine {

// What a listen socket is, as far as taking it over goes: the configured bind address and
// port, then every option applied before listen() (STATE_PREBIND and STATE_BOUND) — those
// cannot be changed on a socket that already listens. Two gateways with equal keys can share
// a socket; STATE_LISTENING options are simply applied again to a socket taken over.
std::string listener_key(const config::Gateway& gateway);
// The "address|port|" prefix of listener_key(): a socket with the same prefix but another key
// is replaced by a new one on the same port (SO_REUSEPORT) and retired.
std::string listener_address_key(const config::Gateway& gateway);

// A listen socket handed from one process to the next.
struct InheritedListener {
  std::string gateway;  // Gateway::id() in the old process
  std::string key;      // listener_key() of that gateway in the old process
  int fd = -1;
  net::SocketAddress address;  // as bound (port 0 already resolved)
};

// One direction of a session at its quiet point. `pending` holds the bytes read from the source
// and not yet written to the destination; they are written first by the importing worker.
// `pipe_fd` is reserved for the splice forwarding mode (bytes parked in a pipe, in order after
// `pending`); it is -1 in copy mode and an importer that does not know pipes refuses a record
// with one (the exporter then keeps the session).
struct DirectionExport {
  std::string pending;
  int pipe_fd = -1;
  uint32_t pipe_bytes = 0;
  bool eof = false;   // the source sent FIN (no more bytes will be read from it)
  bool shut = false;  // FIN already forwarded: shutdown(dst, SHUT_WR) was done
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
};

// One session at a quiet point: no operation of the exporting worker in flight on its fds.
// A session whose upstream connect had not completed travels as "fresh" (upstream_fd == -1):
// nothing has been read from its downstream yet (reading starts only once connected), so the
// importer simply starts it again from the connect, with its own config.
struct SessionExport {
  int downstream_fd = -1;
  int upstream_fd = -1;     // -1: fresh, connect in the importer
  uint32_t worker = 0;      // the exporting worker (the importer spreads by it)
  std::string gateway;      // Gateway::id() in the exporter's config
  std::string upstream;     // Upstream::id(); empty when fresh
  net::SocketAddress host;  // the upstream host connected to
  uint8_t attempts = 0;
  int64_t accepted_wall_ns = 0;
  // A PROXY header named the real client (gateway options.proxyProtocol): the header is
  // consumed, so the importer cannot read it again. It keeps the access log and the upstream
  // PROXY header right, and lets a fresh session skip straight past the PROXY stage.
  // client_source: the real client; client_destination: the address it connected to.
  bool proxied = false;
  net::SocketAddress client_source;
  net::SocketAddress client_destination;
  DirectionExport dirs[2];  // [0] downstream -> upstream, [1] upstream -> downstream
};

// Closes every fd in the records (what the exporter does once the importer has them).
void close_fds(std::vector<SessionExport>& sessions);

}  // namespace ringway::engine
