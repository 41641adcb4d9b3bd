// The Engine: probes io_uring, opens every worker's SO_REUSEPORT listeners (port 0 resolved
// once, then shared), starts the pinned workers, relays drain/stop/sockets commands to them and
// sums their counters. Workers share nothing mutable on the data path.
#include "ringway/engine/engine.hpp"

#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "ringway/core/log.hpp"
#include "ringway/engine/ring.hpp"
#include "ringway/net/listener.hpp"
#include "ringway/net/socket_options.hpp"
#include "worker.hpp"

namespace ringway::engine {
namespace {

// A replaced listener is closed after its queue is accepted; a connection whose handshake
// completes between that last accept and close() is reset, unless the kernel moves it to
// another socket of the SO_REUSEPORT group (net.ipv4.tcp_migrate_req=1, Linux 5.14). Seen in
// the reload test: 1 run in 12 with 8 clients at 600/s, 0 in 12 with the sysctl on.
void warn_without_migrate_req() {
  char value = '0';
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/tcp_migrate_req", "r")) {
    if (std::fread(&value, 1, 1, f) != 1) value = '0';
    std::fclose(f);
  }
  if (value == '1') return;
  log::notice(
      "a listener is replaced (its address or pre-listen options changed); with "
      "net.ipv4.tcp_migrate_req=0 a connection arriving as the old one closes can be reset: "
      "set it to 1 to have the kernel move such connections to the new listener");
}

std::vector<int> usable_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

class EngineImpl final : public Engine {
 public:
  EngineImpl(const config::Config& config, std::unique_ptr<EngineShared> shared, Features features,
             std::vector<int> cpus)
      : config_(config), shared_(std::move(shared)), features_(features), cpus_(std::move(cpus)) {}

  ~EngineImpl() override {
    if (!stopped()) stop_now();
    join();
    for (auto& r : late_handovers_) {
      std::lock_guard lock(r->mu);
      close_fds(r->sessions);
    }
    for (auto& il : inherited_) {
      if (il.fd >= 0) ::close(il.fd);
    }
  }

  void set_session_sink(SessionSink sink) override { shared_->sink = std::move(sink); }
  void set_inherited_listeners(std::vector<InheritedListener> listeners) override {
    inherited_ = std::move(listeners);
  }
  void set_max_wait(std::chrono::milliseconds max_wait) override {
    shared_->max_wait_ms = std::max<int64_t>(1, max_wait.count());
  }
  bool workers_alive(std::chrono::milliseconds within) const override {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    for (const auto& w : workers_) {
      if (w->exited() || now - w->heartbeat_ms() > within.count()) return false;
    }
    return true;
  }

  std::vector<SessionExport> hand_over(std::chrono::milliseconds timeout) override {
    auto request = std::make_shared<HandoverRequest>();
    request->remaining = workers_.size();
    for (auto& w : workers_) {
      Command c{Command::Kind::HandOver, {}, {}};
      c.handover = request;
      w->post(std::move(c));
    }
    std::unique_lock lock(request->mu);
    if (!request->cv.wait_for(lock, timeout, [&] { return request->remaining == 0; })) {
      log::warning(
          "handover: {} workers did not finish exporting in {} ms; what they still "
          "hold stays here",
          request->remaining, timeout.count());
    }
    // A worker that answers after the timeout (wedged for a second) appends to the request
    // later; the request is kept so those records, and their fds, are closed at exit.
    std::vector<SessionExport> out;
    out.swap(request->sessions);
    late_handovers_.push_back(request);
    return out;
  }

  void import_sessions(std::vector<SessionExport> sessions) override {
    const size_t n = workers_.size();
    if (n == 0) {
      close_fds(sessions);
      return;
    }
    std::vector<std::shared_ptr<std::vector<SessionExport>>> per(n);
    for (auto& p : per)
      p = std::make_shared<std::vector<SessionExport>>();
    for (auto& e : sessions)
      per[e.worker % n]->push_back(std::move(e));
    for (size_t w = 0; w < n; ++w) {
      if (per[w]->empty()) continue;
      Command c{Command::Kind::Import, {}, {}};
      c.imports = per[w];
      workers_[w]->post(std::move(c));
    }
  }

  void retire_listeners() override {
    for (auto& w : workers_)
      w->post(Command{Command::Kind::Retire, {}, {}});
  }

  void resume_accepting() override {
    for (auto& w : workers_)
      w->post(Command{Command::Kind::Resume, {}, {}});
  }

  Result<void> start() override {
    if (!workers_.empty()) return Error{EALREADY, "engine already started"};
    const uint32_t n = shared_->worker_count;
    std::vector<std::vector<Worker::ListenerSpec>> specs(n);
    auto close_all = [&specs] {
      for (auto& list : specs) {
        for (auto& l : list)
          ::close(l.fd);
      }
    };
    for (uint32_t g = 0; g < config_.gateways.size(); ++g) {
      const auto& gw = config_.gateways[g];
      const auto options = net::listener_options(gw);
      uint16_t port = gw.bind_port;
      // Sockets of the previous process: the same key is taken as is (nothing is refused
      // meanwhile: it is the same socket); the same address with other options is replaced
      // beside it, on the port it has, and retired later.
      const std::string key = listener_key(gw);
      const std::string address_key = listener_address_key(gw);
      std::vector<InheritedListener> same;
      for (auto& il : inherited_) {
        if (il.fd < 0) continue;
        if (il.key == key) {
          same.push_back(il);
          il.fd = -1;
        } else if (il.key.rfind(address_key, 0) == 0 && port == 0) {
          port = il.address.port();
        }
      }
      if (!same.empty()) port = same.front().address.port();
      for (uint32_t w = 0; w < n; ++w) {
        if (!same.empty()) {
          // LISTENING-state options are the only ones that can change on a live socket.
          InheritedListener il = same.back();
          same.pop_back();
          if (auto r = net::apply_socket_options(il.fd, options, config::SocketState::Listening);
              !r) {
            log::warning("gateway {}: {}", gw.id(), r.error().message);
          }
          specs[w].push_back(Worker::ListenerSpec{g, il.fd, il.address, false});
          listeners_.push_back(ListenerInfo{gw.id(), w, il.address, il.fd});
          continue;
        }
        auto addr = net::SocketAddress::parse(gw.bind_address, port);
        if (!addr) {
          close_all();
          return Error{addr.error().code,
                       fmt::format("gateway {}: {}", gw.id(), addr.error().message)};
        }
        auto fd = net::open_listener(*addr, options);
        if (!fd) {
          close_all();
          return Error{fd.error().code, fmt::format("gateway {}: {}", gw.id(), fd.error().message)};
        }
        auto bound = net::SocketAddress::local_of(*fd);
        const net::SocketAddress actual = bound ? *bound : *addr;
        if (w == 0 && port == 0) {
          // bindPort 0: the kernel picked a port for the first socket; every other worker
          // binds that same port so the SO_REUSEPORT group spans all workers.
          port = actual.port();
          log::info("gateway {}: bindPort 0, the kernel chose port {} (shared by {} workers)",
                    gw.id(), port, n);
        }
        specs[w].push_back(Worker::ListenerSpec{g, *fd, actual, false});
        listeners_.push_back(ListenerInfo{gw.id(), w, actual, *fd});
      }
      // More old sockets than workers: the extra ones are shared out too (never closed, which
      // would reset what waits in their queues).
      for (uint32_t i = 0; !same.empty(); ++i) {
        specs[i % n].push_back(Worker::ListenerSpec{g, same.back().fd, same.back().address, false});
        listeners_.push_back(ListenerInfo{gw.id(), i % n, same.back().address, same.back().fd});
        same.pop_back();
      }
    }
    // What no gateway took: options or address changed, or the gateway is gone. Each keeps
    // accepting (for the gateway of that name, if it still exists) until retire_listeners().
    uint32_t next = 0;
    for (auto& il : inherited_) {
      if (il.fd < 0) continue;
      uint32_t g = 0;
      while (g < config_.gateways.size() && shared_->gateway_ids[g] != il.gateway)
        ++g;
      if (g == config_.gateways.size()) {
        log::notice("listener {} of gateway {} (no longer configured) closed",
                    il.address.to_string(), il.gateway);
        ::close(il.fd);
        il.fd = -1;
        continue;
      }
      // Not listed in listeners_: it is never handed on (it is closed soon) nor logged.
      if (next == 0) warn_without_migrate_req();
      specs[next++ % n].push_back(Worker::ListenerSpec{g, il.fd, il.address, true});
      il.fd = -1;
    }
    inherited_.clear();
    for (uint32_t w = 0; w < n; ++w) {
      workers_.push_back(
          std::make_unique<Worker>(*shared_, w, cpus_[w % cpus_.size()], std::move(specs[w])));
    }
    for (uint32_t w = 0; w < n; ++w) {
      Result<void> r = workers_[w]->start();
      if (!r) {
        for (uint32_t i = 0; i < w; ++i)
          workers_[i]->post(Command{Command::Kind::StopNow, {}, {}});
        for (auto& worker : workers_)
          worker->join();
        workers_.clear();  // closes the listeners of workers that never ran
        listeners_.clear();
        return Error{r.error().code, fmt::format("worker {}: {}", w, r.error().message)};
      }
    }
    return {};
  }

  const Features& features() const override { return features_; }
  uint32_t worker_count() const override { return shared_->worker_count; }
  std::vector<ListenerInfo> listeners() const override { return listeners_; }

  void begin_drain(std::chrono::steady_clock::time_point deadline) override {
    for (auto& w : workers_)
      w->post(Command{Command::Kind::Drain, deadline, {}});
  }
  void stop_now() override {
    for (auto& w : workers_)
      w->post(Command{Command::Kind::StopNow, {}, {}});
  }
  void join() override {
    for (auto& w : workers_)
      w->join();
  }
  bool stopped() const override {
    for (const auto& w : workers_) {
      if (!w->exited()) return false;
    }
    return true;
  }

  StatsSnapshot stats() const override {
    StatsSnapshot snap;
    for (size_t g = 0; g < config_.gateways.size(); ++g) {
      StatsSnapshot::Named named;
      named.id = shared_->gateway_ids[g];
      for (const auto& w : workers_) {
        for (size_t i = 0; i < named.gateway.size(); ++i) {
          named.gateway[i] += w->gateway_stats(g).get(static_cast<GatewayStat>(i));
        }
      }
      snap.sessions_active +=
          named.gateway[static_cast<size_t>(GatewayStat::downstream_connections_active)];
      snap.gateways.push_back(std::move(named));
    }
    for (size_t u = 0; u < config_.upstreams.size(); ++u) {
      StatsSnapshot::Named named;
      named.id = shared_->upstream_ids[u];
      for (const auto& w : workers_) {
        for (size_t i = 0; i < named.upstream.size(); ++i) {
          named.upstream[i] += w->upstream_stats(u).get(static_cast<UpstreamStat>(i));
        }
      }
      snap.upstreams.push_back(std::move(named));
    }
    for (size_t u = 0; u < config_.upstreams.size(); ++u) {
      const UpstreamHostState& state = *shared_->host_states[u];
      const ResolvedUpstream& resolved = shared_->upstreams[u];
      for (size_t h = 0; h < state.hosts; ++h) {
        StatsSnapshot::Host host;
        host.upstream = shared_->upstream_ids[u];
        host.host = resolved.hosts[h].to_string();
        host.priority = resolved.priorities[h];
        host.health_checked = config_.upstreams[u].health_check.has_value();
        host.healthy = state.healthy[h].load(std::memory_order_relaxed) != 0;
        host.ejected = state.ejected[h].load(std::memory_order_relaxed) != 0;
        host.became_unhealthy = state.became_unhealthy[h].load(std::memory_order_relaxed);
        host.became_healthy = state.became_healthy[h].load(std::memory_order_relaxed);
        host.ejections = state.ejections[h].load(std::memory_order_relaxed);
        snap.hosts.push_back(std::move(host));
      }
    }
    for (const auto& w : workers_) {
      std::array<int64_t, static_cast<size_t>(WorkerStat::kCount)> values{};
      for (size_t i = 0; i < values.size(); ++i) {
        values[i] = w->worker_stats().get(static_cast<WorkerStat>(i));
      }
      snap.workers.push_back(values);
    }
    return snap;
  }

  std::string sockets_json(size_t max_sessions, std::chrono::milliseconds timeout) override {
    auto request = std::make_shared<SocketsRequest>();
    request->max_sessions = max_sessions;
    request->remaining = workers_.size();
    for (auto& w : workers_)
      w->post(Command{Command::Kind::Sockets, {}, request});
    std::unique_lock lock(request->mu);
    // Workers that do not answer in time are left out; the request object outlives them
    // (shared_ptr), so a late answer is harmless.
    request->cv.wait_for(lock, timeout, [&] { return request->remaining == 0; });
    std::string out = "{\"listeners\":[";
    for (size_t i = 0; i < request->listeners.size(); ++i) {
      if (i > 0) out += ',';
      out += request->listeners[i];
    }
    out += "],\"sessions\":[";
    for (size_t i = 0; i < request->sessions.size(); ++i) {
      if (i > 0) out += ',';
      out += request->sessions[i];
    }
    out += "]}";
    return out;
  }

 private:
  const config::Config& config_;
  std::unique_ptr<EngineShared> shared_;
  Features features_;
  std::vector<int> cpus_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<ListenerInfo> listeners_;
  std::vector<InheritedListener> inherited_;
  // Hand-over requests answered late stay alive so a worker can still append to them.
  std::vector<std::shared_ptr<HandoverRequest>> late_handovers_;
};

}  // namespace

Result<std::unique_ptr<Engine>> Engine::create(const config::Config& config,
                                               std::vector<ResolvedUpstream> upstreams) {
  auto features = probe_io_uring();
  if (!features) return features.error();
  if (upstreams.size() != config.upstreams.size()) {
    return Error{EINVAL, "engine: one resolved entry per configured upstream is required"};
  }
  for (size_t u = 0; u < upstreams.size(); ++u) {
    if (upstreams[u].hosts.empty()) {
      return Error{EINVAL, fmt::format("upstream {} has no host", config.upstreams[u].id())};
    }
    upstreams[u].weights.resize(upstreams[u].hosts.size(), 1);
    upstreams[u].priorities.resize(upstreams[u].hosts.size(), 0);
  }
  for (const auto& gw : config.gateways) {
    for (const auto& h : gw.tcp_hosts) {
      if (h.upstream_index >= config.upstreams.size()) {
        return Error{EINVAL,
                     fmt::format("gateway {}: tcpHost {} refers to no upstream", gw.id(), h.name)};
      }
    }
  }
  auto shared = std::make_unique<EngineShared>();
  shared->config = &config;
  shared->upstreams = std::move(upstreams);
  for (const auto& gw : config.gateways)
    shared->gateway_ids.push_back(gw.id());
  for (const auto& up : config.upstreams) {
    shared->upstream_ids.push_back(up.id());
    shared->upstream_options.push_back(net::upstream_options(up));
  }
  shared->gateway_active = std::make_unique<std::atomic<int64_t>[]>(config.gateways.size());
  shared->upstream_sessions = std::make_unique<std::atomic<int64_t>[]>(config.upstreams.size());
  for (size_t u = 0; u < config.upstreams.size(); ++u) {
    auto state = std::make_unique<UpstreamHostState>(shared->upstreams[u].hosts.size());
    if (const auto& od = config.upstreams[u].outlier_detection) {
      state->outlier = std::make_unique<OutlierDetector>(*od, shared->upstreams[u].hosts.size(),
                                                         0xA0761D6478BD642FULL + u);
    }
    shared->host_states.push_back(std::move(state));
  }
  if (const char* forced = std::getenv("RINGWAY_FORWARDING"); forced != nullptr && *forced) {
    const std::string_view f(forced);
    if (f == "copy") {
      shared->forced_splice_mode = config::SpliceMode::Never;
    } else if (f == "splice") {
      shared->forced_splice_mode = config::SpliceMode::Always;
    } else if (f == "auto") {
      shared->forced_splice_mode = config::SpliceMode::Auto;
    } else {
      return Error{EINVAL, fmt::format("RINGWAY_FORWARDING={}: allowed values are copy, splice "
                                       "and auto",
                                       f)};
    }
    log::notice("RINGWAY_FORWARDING={}: every gateway's spliceMode is overridden", f);
  }
  // Bundles where the start-up trial passed (ring.cpp), one-shot recvs elsewhere. RINGWAY_RECV
  // forces either (tests run the fallback on kernels that have bundles; an A/B compares the
  // two). A forced bundle on a kernel that failed the trial is an error rather than a silent
  // fallback, which would make an A/B compare a path with itself.
  Features used = *features;
  used.recv_mode = used.recv_bundle ? RecvMode::Bundle : RecvMode::OneShot;
  if (const char* forced = std::getenv("RINGWAY_RECV"); forced != nullptr && *forced) {
    const std::string_view f(forced);
    if (f == "oneshot") {
      used.recv_mode = RecvMode::OneShot;
    } else if (f == "bundle") {
      if (!used.recv_bundle) {
        return Error{ENOSYS,
                     "RINGWAY_RECV=bundle: this kernel's io_uring failed the recv bundle "
                     "trial (IORING_RECVSEND_BUNDLE needs Linux 6.10+); unset it to use "
                     "one-shot recvs"};
      }
      used.recv_mode = RecvMode::Bundle;
    } else if (f == "auto") {
      used.recv_mode = used.recv_bundle ? RecvMode::Bundle : RecvMode::OneShot;
    } else {
      return Error{EINVAL, fmt::format("RINGWAY_RECV={}: allowed values are auto, oneshot and "
                                       "bundle (multishot recv is not implemented: see README)",
                                       f)};
    }
    log::notice("RINGWAY_RECV={}: recvs are {}", f,
                used.recv_mode == RecvMode::Bundle ? "bundles" : "one-shot");
  }
  shared->recv_mode = used.recv_mode;
  auto cpus = usable_cpus();
  shared->worker_count =
      config.settings.workers != 0 ? config.settings.workers : static_cast<uint32_t>(cpus.size());
  return std::unique_ptr<Engine>(new EngineImpl(config, std::move(shared), used, std::move(cpus)));
}

}  // namespace ringway::engine
