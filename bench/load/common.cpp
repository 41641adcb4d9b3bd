// Error-cause names and errno mapping, clocks, address and CPU-set parsing for ringway-load.
#include "common.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <time.h>

#include <cstring>
#include <string>

namespace ringway::load {

std::string_view error_cause_name(ErrorCause cause) {
  switch (cause) {
    case ErrorCause::ConnectRefused:
      return "connect_refused";
    case ErrorCause::ConnectTimeout:
      return "connect_timeout";
    case ErrorCause::AddressUnavailable:
      return "address_unavailable";
    case ErrorCause::FdLimit:
      return "fd_limit";
    case ErrorCause::Reset:
      return "reset";
    case ErrorCause::Timeout:
      return "timeout";
    case ErrorCause::ShortRead:
      return "short_read";
    case ErrorCause::ClosedByPeer:
      return "closed_by_peer";
    case ErrorCause::Other:
      return "other";
    case ErrorCause::kCount:
      break;
  }
  return "?";
}

ErrorCause connect_error_cause(int error) {
  switch (error) {
    case ECONNREFUSED:
      return ErrorCause::ConnectRefused;
    case ETIMEDOUT:
      return ErrorCause::ConnectTimeout;
    case EADDRNOTAVAIL:
    case EADDRINUSE:
      return ErrorCause::AddressUnavailable;
    case EMFILE:
    case ENFILE:
      return ErrorCause::FdLimit;
    case ECONNRESET:
    case EPIPE:
      return ErrorCause::Reset;
    default:
      return ErrorCause::Other;
  }
}

ErrorCause io_error_cause(int error) {
  switch (error) {
    case ECONNRESET:
    case EPIPE:
      return ErrorCause::Reset;
    case ETIMEDOUT:
      return ErrorCause::Timeout;
    default:
      return ErrorCause::Other;
  }
}

uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {

bool parse_ipv4(std::string_view text, in_addr& out) {
  std::string copy(text);
  return ::inet_pton(AF_INET, copy.c_str(), &out) == 1;
}

}  // namespace

bool parse_source_ips(std::string_view text, std::vector<in_addr>& out) {
  out.clear();
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    size_t dash = item.find('-');
    in_addr first{};
    if (!parse_ipv4(item.substr(0, dash), first)) return false;
    if (dash == std::string_view::npos) {
      out.push_back(first);
      continue;
    }
    in_addr last{};
    if (!parse_ipv4(item.substr(dash + 1), last)) return false;
    uint32_t from = ntohl(first.s_addr);
    uint32_t to = ntohl(last.s_addr);
    // A range wider than a /16 is a typo, not a plan.
    if (to < from || to - from > 65535) return false;
    for (uint32_t a = from; a <= to; ++a)
      out.push_back(in_addr{htonl(a)});
  }
  return true;
}

bool parse_endpoint(std::string_view text, sockaddr_storage& out, socklen_t& length) {
  std::memset(&out, 0, sizeof(out));
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return false;
  std::string host(text.substr(0, colon));
  std::string port_text(text.substr(colon + 1));
  char* end = nullptr;
  long port = std::strtol(port_text.c_str(), &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) return false;
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&out);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6->sin6_addr) != 1) {
      return false;
    }
    length = sizeof(sockaddr_in6);
    return true;
  }
  auto* a4 = reinterpret_cast<sockaddr_in*>(&out);
  a4->sin_family = AF_INET;
  a4->sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) return false;
  length = sizeof(sockaddr_in);
  return true;
}

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  int count = CPU_COUNT(&set);
  return count > 0 ? count : 1;
}

}  // namespace ringway::load
