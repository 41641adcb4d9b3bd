// `ringway import-gloo`: Gloo Gateway (gateway.solo.io/v1) and Upstream (gloo.solo.io/v1) YAML
// to Ringway TOML in the shape of CONFIG.md. It lives in the config layer because it is the same
// knowledge as the loader (which Gloo fields Ringway carries, under which TOML names) seen from
// the other side; it touches no sockets, and tests link it without the daemon.
//
// Also UpstreamGroup (gloo.solo.io/v1), which weighted tcpHost destinations refer to.
// Input: single documents, multi-document files, and `kubectl get -o yaml` List output. Every
// field that cannot be carried becomes a `# not carried: <path>: <why>` comment at the top of its
// resource; a resource Ringway cannot serve at all (an httpGateway, a kube Upstream, a Pod) is
// left out with a comment saying so.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ringway::config {

struct ImportSource {
  std::string name;  // shown in comments and errors (the file path)
  std::string text;  // YAML
};

struct ImportResult {
  std::string toml;                 // the config; empty when there are errors
  std::vector<std::string> errors;  // "FILE:LINE:COL: error: ..." (YAML syntax, missing names)
  // Also written into the TOML as "# warning:" lines: an upstream referred to but not imported.
  std::vector<std::string> warnings;
  size_t gateways = 0;  // resources written
  size_t upstreams = 0;
  size_t upstream_groups = 0;
  size_t left_out = 0;  // documents not carried at all
  bool ok() const { return errors.empty(); }
};

ImportResult import_gloo(const std::vector<ImportSource>& sources);

}  // namespace ringway::config
