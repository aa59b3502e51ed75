// Unit tests of backends given as a Unix-socket directory: accepted as host (shorthand and backends array), and the note that server_tls_mode does not apply there.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "conf/config.hpp"

namespace pgsluice::conf {
namespace {

std::string socket_dir() { return std::filesystem::temp_directory_path().string(); }  // exists

TEST(conf_unix_socket, a_directory_is_accepted_as_host) {
  const auto c = load_config_from_string("[users]\napp = \"secret\"\n[databases.app]\nhost = \"" + socket_dir() +
                                             "\"\nport = 5433\n[databases.two]\n[[databases.two.backends]]\nhost = \"" +
                                             socket_dir() + "\"\nport = 5434\n",
                                         "unix.toml");
  ASSERT_EQ(c->databases.size(), 2u);
  EXPECT_EQ(c->databases[0].backends.at(0).host, socket_dir());
  EXPECT_EQ(c->databases[0].backends.at(0).port, 5433);
  EXPECT_EQ(c->databases[1].backends.at(0).host, socket_dir());
  EXPECT_TRUE(c->warnings.empty());
}

TEST(conf_unix_socket, server_tls_mode_is_noted_as_not_applying_to_a_socket_backend) {
  const auto c = load_config_from_string("[tls]\nserver_tls_mode = \"prefer\"\n[users]\napp = \"secret\"\n"
                                         "[databases.app]\nhost = \"" + socket_dir() + "\"\n",
                                         "unix.toml");
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_EQ(c->warnings[0].key, "tls.server_tls_mode");
  EXPECT_NE(c->warnings[0].message.find("does not apply to the Unix-socket backend " + socket_dir()), std::string::npos)
      << c->warnings[0].message;
}

}  // namespace
}  // namespace pgsluice::conf
