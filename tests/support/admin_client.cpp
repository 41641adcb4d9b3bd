// A minimal HTTP/1.1 GET client and Prometheus text reader (see admin_client.hpp).
#include "admin_client.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <sstream>

#include "sockets.hpp"

namespace ringway::test {

HttpResponse http_get(uint16_t port, const std::string& path, Millis timeout) {
  HttpResponse r;
  const auto deadline = Clock::now() + timeout;
  Fd fd = connect_tcp(Endpoint{"127.0.0.1", port}, timeout);
  if (!fd.valid()) return r;
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (!write_all(fd.get(), req.data(), req.size(), timeout)) return r;
  std::string raw;
  char buf[16384];
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) return r;
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK\r\n...headers...\r\n\r\nbody"
  if (raw.compare(0, 5, "HTTP/") != 0) return r;
  size_t sp = raw.find(' ');
  size_t head_end = raw.find("\r\n\r\n");
  if (sp == std::string::npos || head_end == std::string::npos) return r;
  r.status = std::atoi(raw.c_str() + sp + 1);
  std::string headers = raw.substr(0, head_end);
  r.body = raw.substr(head_end + 4);
  // A chunked body (a server may choose it even with Connection: close) is de-chunked here.
  if (headers.find("ransfer-Encoding: chunked") != std::string::npos ||
      headers.find("ransfer-encoding: chunked") != std::string::npos) {
    std::string out;
    size_t pos = 0;
    while (pos < r.body.size()) {
      size_t eol = r.body.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t len = std::strtoul(r.body.substr(pos, eol - pos).c_str(), nullptr, 16);
      if (len == 0) break;
      out.append(r.body, eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    r.body = out;
  }
  return r;
}

// Parses `name{a="x",b="y"} value` (labels optional); false for comments and other lines.
static bool parse_sample(const std::string& line, std::string& name,
                         std::map<std::string, std::string>& labels, double& value) {
  if (line.empty() || line[0] == '#') return false;
  size_t i = line.find_first_of("{ ");
  if (i == std::string::npos) return false;
  name = line.substr(0, i);
  labels.clear();
  if (line[i] == '{') {
    size_t end = line.find('}', i);
    if (end == std::string::npos) return false;
    std::string body = line.substr(i + 1, end - i - 1);
    size_t p = 0;
    while (p < body.size()) {
      size_t eq = body.find('=', p);
      if (eq == std::string::npos || eq + 1 >= body.size() || body[eq + 1] != '"') break;
      size_t close = body.find('"', eq + 2);
      if (close == std::string::npos) break;
      labels[body.substr(p, eq - p)] = body.substr(eq + 2, close - eq - 2);
      p = close + 1;
      if (p < body.size() && body[p] == ',') ++p;
    }
    i = end + 1;
  }
  char* endp = nullptr;
  std::string rest = line.substr(i);
  value = std::strtod(rest.c_str(), &endp);
  return endp != rest.c_str();
}

std::optional<double> metric_value(const std::string& text, const std::string& metric,
                                   const std::map<std::string, std::string>& want) {
  std::istringstream in(text);
  std::string line;
  std::optional<double> sum;
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  while (std::getline(in, line)) {
    if (!parse_sample(line, name, labels, value) || name != metric) continue;
    bool match = true;
    for (const auto& [k, v] : want) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) match = false;
    }
    if (match) sum = sum.value_or(0) + value;
  }
  return sum;
}

std::optional<double> fetch_metric(uint16_t admin_port, const std::string& metric,
                                   const std::map<std::string, std::string>& labels) {
  HttpResponse r = http_get(admin_port, "/stats", scaled(Millis(2000)));
  if (r.status != 200) return std::nullopt;
  return metric_value(r.body, metric, labels);
}

}  // namespace ringway::test
