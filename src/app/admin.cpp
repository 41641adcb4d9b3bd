// The admin endpoint (see admin.hpp): cpp-httplib on its own thread, loopback by default.
// Every handler only reads: stats are relaxed atomics summed by the engine, and socket
// options are read by each worker on its own thread (Engine::sockets_json).
#include "ringway/app/admin.hpp"

#include <httplib.h>

#include <atomic>
#include <thread>

#include "ringway/app/prometheus.hpp"
#include "ringway/config/loader.hpp"

namespace ringway::app {
namespace {

constexpr size_t kMaxSessionsPerWorker = 256;
constexpr size_t kHandlerThreads = 2;
constexpr std::chrono::milliseconds kSocketsTimeout{2000};

class HttpAdminServer final : public AdminServer {
 public:
  HttpAdminServer(const config::Config& config, engine::Engine& engine)
      : config_(config), engine_(engine) {}
  ~HttpAdminServer() override { stop(); }

  Result<void> bind(const config::Admin& admin) {
    // Two handler threads are plenty for an operator's curl and a Prometheus scraper; httplib's
    // default pool (8 or more threads) would only cost memory.
    server_.new_task_queue = [] { return new httplib::ThreadPool(kHandlerThreads); };
    install_routes();
    // SO_REUSEPORT as well as httplib's SO_REUSEADDR: at a reload the new process binds the
    // admin port while the old one still serves it, for the few hundred ms of the handover.
    server_.set_socket_options([](socket_t sock) {
      const int one = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    });
    auto address = net::SocketAddress::parse(admin.bind_address, admin.bind_port);
    if (!address) return address.error();
    int port =
        admin.bind_port == 0
            ? server_.bind_to_any_port(admin.bind_address)
            : (server_.bind_to_port(admin.bind_address, admin.bind_port) ? admin.bind_port : -1);
    if (port <= 0)
      return Error{EADDRINUSE, "admin endpoint: cannot listen on " + address->to_string()};
    auto bound = net::SocketAddress::parse(admin.bind_address, static_cast<uint16_t>(port));
    address_ = *bound;
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return {};
  }

  const net::SocketAddress& address() const override { return address_; }
  void set_draining() override { draining_.store(true, std::memory_order_relaxed); }
  void stop() override {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }

 private:
  void install_routes() {
    server_.Get("/stats", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(prometheus_text(engine_.stats(), engine_.worker_count()),
                      "text/plain; version=0.0.4");
    });
    server_.Get("/ready", [this](const httplib::Request&, httplib::Response& res) {
      bool draining = draining_.load(std::memory_order_relaxed);
      res.status = draining ? 503 : 200;
      res.set_content(draining ? "draining\n" : "ready\n", "text/plain");
    });
    server_.Get("/config", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(config::to_toml(config_), "application/toml");
    });
    server_.Get("/sockets", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(engine_.sockets_json(kMaxSessionsPerWorker, kSocketsTimeout),
                      "application/json");
    });
  }

  const config::Config& config_;
  engine::Engine& engine_;
  httplib::Server server_;
  net::SocketAddress address_;
  std::thread thread_;
  std::atomic<bool> draining_{false};
};

}  // namespace

Result<std::unique_ptr<AdminServer>> AdminServer::start(const config::Admin& admin,
                                                        const config::Config& config,
                                                        engine::Engine& engine) {
  auto server = std::make_unique<HttpAdminServer>(config, engine);
  if (auto bound = server->bind(admin); !bound) return bound.error();
  return std::unique_ptr<AdminServer>(std::move(server));
}

}  // namespace ringway::app
