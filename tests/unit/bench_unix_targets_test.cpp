// Unit tests of the bench stack's Unix-socket targets: their names parse, and pgsluice's stack config for them loads with the socket directory as host.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "bench/cli_options.hpp"
#include "bench/stack.hpp"
#include "conf/config.hpp"

namespace pgsluice::bench {
namespace {

TEST(bench_unix_targets, names_are_stack_targets) {
  const auto targets = parse_targets("pgbouncer-unix,pgsluice-unix");
  ASSERT_EQ(parse_error(targets), nullptr);
  EXPECT_EQ(std::get<0>(targets).at(0).name, "pgbouncer-unix");
  EXPECT_EQ(std::get<0>(targets).at(1).name, "pgsluice-unix");
  EXPECT_TRUE(std::get<0>(targets).at(1).url.empty());  // from the local stack
}

TEST(bench_unix_targets, stack_config_serves_the_unix_database_through_the_socket_directory) {
  const auto dir = std::filesystem::temp_directory_path();  // exists: the config check looks
  const std::string text = pgsluice_stack_config(6543, 5433, "sluice", {{"u", "p"}}, 20, 11000, {}, {}, {}, dir);
  const auto c = conf::load_config_from_string(text, "pgsluice.toml");
  const auto db = std::find_if(c->databases.begin(), c->databases.end(),
                               [](const conf::database_config& d) { return d.name == unix_database("sluice"); });
  ASSERT_NE(db, c->databases.end());
  EXPECT_EQ(db->dbname, "sluice");
  ASSERT_EQ(db->backends.size(), 1u);
  EXPECT_EQ(db->backends[0].host, dir.string());
  EXPECT_EQ(db->backends[0].port, 5433);
  // Without a socket directory there is no such database.
  EXPECT_EQ(pgsluice_stack_config(6543, 5433, "sluice", {{"u", "p"}}, 20, 11000).find("sluice_unix"), std::string::npos);
}

}  // namespace
}  // namespace pgsluice::bench
