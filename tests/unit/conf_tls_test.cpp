// Unit tests of the [tls] section: every mode loads with what it needs, paths are relative to the config file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "conf/config.hpp"

namespace pgsluice::test {
namespace {

const std::string base = "[users]\napp = \"pw\"\n[databases.app]\nhost = \"127.0.0.1\"\n";

TEST(conf_tls, every_mode_loads_with_what_it_needs) {
  for (const char* mode : {"allow", "prefer", "require", "verify-ca", "verify-full"}) {
    const bool verifies = std::string(mode).starts_with("verify");
    const std::string text = base + "[tls]\nclient_tls_mode = \"" + mode +
                             "\"\nclient_tls_cert_file = \"/c.crt\"\nclient_tls_key_file = \"/c.key\"\n" +
                             (verifies ? "client_tls_ca_file = \"/ca.crt\"\n" : "") + "server_tls_mode = \"" + mode +
                             "\"\n" + (verifies ? "server_tls_ca_file = \"/sca.crt\"\n" : "") +
                             "client_tls_handshake_timeout = \"3s\"\n";
    const auto c = conf::load_config_from_string(text, "t.toml");
    EXPECT_EQ(conf::to_string(c->tls.client_tls_mode), mode);
    EXPECT_EQ(conf::to_string(c->tls.server_tls_mode), mode);
    EXPECT_EQ(c->tls.client_tls_handshake_timeout, std::chrono::seconds(3));
    EXPECT_EQ(c->tls.client_tls_cert_file, "/c.crt");
  }
  // verify-* towards servers without a CA file: the system's CAs.
  const auto c = conf::load_config_from_string(base + "[tls]\nserver_tls_mode = \"verify-full\"\n", "t.toml");
  EXPECT_TRUE(c->tls.server_tls_ca_file.empty());
}

TEST(conf_tls, relative_paths_are_relative_to_the_config_file) {
  char tmpl[] = "/tmp/pgsluice-conf-tls-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::filesystem::path dir = tmpl;
  const auto file = dir / "pgsluice.toml";
  std::ofstream(file) << base
                      << "[tls]\nclient_tls_mode = \"require\"\nclient_tls_cert_file = \"tls/server.crt\"\n"
                         "client_tls_key_file = \"/abs/server.key\"\n";
  const auto c = conf::load_config(file);
  EXPECT_EQ(c->tls.client_tls_cert_file, dir / "tls/server.crt");
  EXPECT_EQ(c->tls.client_tls_key_file, "/abs/server.key");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pgsluice::test
