// Unit tests of the bench stack's TLS targets: their names parse, and pgsluice's stack config with TLS loads.
#include <gtest/gtest.h>

#include <algorithm>

#include "bench/cli_options.hpp"
#include "bench/stack.hpp"
#include "conf/config.hpp"

namespace pgsluice::bench {
namespace {

TEST(bench_tls_targets, names_are_stack_targets) {
  const auto targets = parse_targets("pgbouncer-tls,pgsluice-tls");
  ASSERT_EQ(parse_error(targets), nullptr);
  EXPECT_EQ(std::get<0>(targets).at(0).name, "pgbouncer-tls");
  EXPECT_TRUE(std::get<0>(targets).at(1).url.empty());  // from the local stack
}

TEST(bench_tls_targets, stack_config_lets_clients_choose_tls) {
  const std::string text =
      pgsluice_stack_config(6543, 5432, "sluice", {{"u", "p"}}, 20, 11000, {}, "/stack/tls/server.crt", "/stack/tls/server.key");
  const auto c = conf::load_config_from_string(text, "pgsluice.toml");
  EXPECT_EQ(c->tls.client_tls_mode, conf::tls_mode::allow);  // plaintext targets keep working
  EXPECT_EQ(c->tls.client_tls_cert_file, "/stack/tls/server.crt");
  EXPECT_EQ(c->tls.server_tls_mode, conf::tls_mode::disable);
  EXPECT_EQ(pgsluice_stack_config(6543, 5432, "sluice", {{"u", "p"}}, 20, 11000).find("[tls]"), std::string::npos);
}

}  // namespace
}  // namespace pgsluice::bench
