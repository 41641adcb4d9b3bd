// Every file under conf/ (the default config and the examples) loads with zero errors, and the
// shipped files say what the docs say they do.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "config_test_util.hpp"

namespace ringway::config {
namespace {

namespace fs = std::filesystem;

fs::path source_root() {
  const char* root = std::getenv("RINGWAY_SOURCE_ROOT");
  return root != nullptr ? fs::path(root) : fs::path();
}

std::vector<fs::path> conf_files() {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(source_root() / "conf", ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() == ".toml") files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Conf, EveryFileLoadsWithoutErrors) {
  if (source_root().empty()) GTEST_SKIP() << "RINGWAY_SOURCE_ROOT is not set (run through meson)";
  const auto files = conf_files();
  ASSERT_GE(files.size(), 3u) << "expected conf/ringway.toml and conf/examples/*.toml";
  for (const auto& file : files) {
    auto r = load_file(file.string());
    EXPECT_TRUE(r.ok()) << file << ::testing::PrintToString(testing::messages(r));
    EXPECT_TRUE(testing::errors(r).empty()) << file;
    if (r.ok()) {
      // The shipped files round-trip through --print-config as well.
      const std::string printed = to_toml(*r.config);
      auto again = load_string(printed, "printed.toml");
      ASSERT_TRUE(again.ok()) << printed;
      EXPECT_EQ(to_toml(*again.config), printed) << file;
    }
  }
}

TEST(Conf, DefaultConfigIsTheDocumentedOne) {
  if (source_root().empty()) GTEST_SKIP() << "RINGWAY_SOURCE_ROOT is not set (run through meson)";
  auto r = load_file((source_root() / "conf" / "ringway.toml").string());
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(testing::messages(r));
  EXPECT_TRUE(r.diagnostics.empty()) << ::testing::PrintToString(testing::messages(r));
  const Config& c = *r.config;
  ASSERT_EQ(c.gateways.size(), 1u);
  const Gateway& g = c.gateways[0];
  EXPECT_EQ(g.metadata.name, "tcp");
  EXPECT_EQ(g.bind_address, "127.0.0.1");
  EXPECT_EQ(g.bind_port, 8000);
  EXPECT_EQ(g.socket_options.size(), 4u);
  EXPECT_EQ(g.tcp_proxy.idle_timeout, std::chrono::seconds(3600));
  EXPECT_EQ(g.max_active_connections, 10000u);
  ASSERT_EQ(c.upstreams.size(), 1u);
  const Upstream& u = c.upstreams[0];
  EXPECT_EQ(u.metadata.name, "echo");
  ASSERT_EQ(u.hosts.size(), 1u);
  EXPECT_EQ(u.hosts[0].addr, "127.0.0.1");
  EXPECT_EQ(u.hosts[0].port, 9000);
  ASSERT_TRUE(u.tcp_keepalive.has_value());
  EXPECT_EQ(u.tcp_keepalive->keepalive_time_s, 60u);
  EXPECT_EQ(u.tcp_keepalive->keepalive_interval_s, 20u);
  EXPECT_EQ(u.tcp_keepalive->keepalive_probes, 2u);
  ASSERT_TRUE(c.settings.admin.has_value());
  EXPECT_EQ(c.settings.admin->bind_address, "127.0.0.1");
  EXPECT_EQ(c.settings.admin->bind_port, 9901);
}

}  // namespace
}  // namespace ringway::config
