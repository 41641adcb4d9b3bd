// The admin endpoint (settings.admin, loopback by default): /stats (Prometheus text), /ready,
// /config (effective config as TOML), /sockets (socket options read back with getsockopt).
// It runs on its own thread, off the data path.
#pragma once

#include <memory>

#include "ringway/config/model.hpp"
#include "ringway/core/result.hpp"
#include "ringway/engine/engine.hpp"
#include "ringway/net/address.hpp"

namespace ringway::app {

class AdminServer {
 public:
  // Binds and starts serving; `config` and `engine` must outlive the server.
  static Result<std::unique_ptr<AdminServer>> start(const config::Admin& admin,
                                                    const config::Config& config,
                                                    engine::Engine& engine);
  virtual ~AdminServer() = default;
  virtual const net::SocketAddress& address() const = 0;  // the actual bound address and port
  // /ready answers 503 from now on (called when draining starts).
  virtual void set_draining() = 0;
  virtual void stop() = 0;
};

}  // namespace ringway::app
