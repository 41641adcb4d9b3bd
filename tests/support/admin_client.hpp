// A minimal HTTP/1.1 GET client for the admin endpoint (one request per connection,
// "Connection: close", body read to EOF) and a reader for its Prometheus text.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "test_env.hpp"

namespace ringway::test {

struct HttpResponse {
  int status = 0;  // 0: no response (connect failed, timeout, malformed)
  std::string body;
};

HttpResponse http_get(uint16_t port, const std::string& path, Millis timeout);

// Sum of every sample of `metric` whose labels include all of `labels` (so a per-worker metric
// asked without a worker label is summed over workers). nullopt when no sample matches.
std::optional<double> metric_value(const std::string& prometheus_text, const std::string& metric,
                                   const std::map<std::string, std::string>& labels = {});

// Convenience: GET /stats and read one metric; nullopt when the endpoint or metric is missing.
std::optional<double> fetch_metric(uint16_t admin_port, const std::string& metric,
                                   const std::map<std::string, std::string>& labels = {});

}  // namespace ringway::test
