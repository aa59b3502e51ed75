// pool_size = "auto" in the config: where it is accepted, how it resolves per pool, how it is shown.
#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "conf/config.hpp"

namespace pgsluice::test {
namespace {

using conf::load_config_from_string;

TEST(conf_pool_size_auto, DefaultPoolSizeAutoResolvesToTheBoundsPerPool) {
  const auto c = load_config_from_string(R"(
pool_mode = "transaction"
default_pool_size = "auto"
pool_size_auto_min = 3
pool_size_auto_max = 40
[users]
app = "app-secret"
fixed = { password = "x", pool_size = 7 }
[databases.app]
host = "127.0.0.1"
)");
  EXPECT_EQ(c->default_pool_size, conf::pool_size_auto);
  const auto ps = c->effective_pool(c->databases.at(0), c->find_user("app"));
  EXPECT_TRUE(ps.pool_size_auto);
  EXPECT_EQ(ps.pool_size_auto_min, 3u);
  EXPECT_EQ(ps.pool_size, 40u) << "the ceiling of an auto pool is pool_size_auto_max";
  // A user's fixed size wins over the default.
  const auto fixed = c->effective_pool(c->databases.at(0), c->find_user("fixed"));
  EXPECT_FALSE(fixed.pool_size_auto);
  EXPECT_EQ(fixed.pool_size, 7u);
}

TEST(conf_pool_size_auto, PerDatabaseAutoAndShownAsAutoInShowConfig) {
  const auto c = load_config_from_string(R"(
default_pool_size = "auto"
min_pool_size = 50
[users]
app = "app-secret"
[databases.app]
host = "127.0.0.1"
pool_mode = "transaction"
[databases.other]
host = "127.0.0.1"
pool_mode = "transaction"
pool_size = 60
)");
  EXPECT_TRUE(c->effective_pool(c->databases.at(0), nullptr).pool_size_auto);
  EXPECT_FALSE(c->effective_pool(c->databases.at(1), nullptr).pool_size_auto);
  const auto settings = conf::current_settings(*c);
  const auto it = std::find_if(settings.begin(), settings.end(), [](const auto& s) { return s.key == "default_pool_size"; });
  ASSERT_NE(it, settings.end());
  EXPECT_EQ(it->value, "\"auto\"");
  EXPECT_EQ(it->default_value, "20");
  const auto max = std::find_if(settings.begin(), settings.end(), [](const auto& s) { return s.key == "pool_size_auto_max"; });
  ASSERT_NE(max, settings.end());
  EXPECT_EQ(max->value, "100");
}

TEST(conf_pool_size_auto, SessionModeDefaultIsRefusedNamingTheKey) {
  try {
    load_config_from_string(R"(
default_pool_size = "auto"
[users]
app = "app-secret"
[databases.app]
host = "127.0.0.1"
)");
    FAIL() << "accepted";
  } catch (const conf::config_error& e) {
    EXPECT_NE(std::string(e.what()).find("key 'default_pool_size': not supported yet: \"auto\" needs pool_mode"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace pgsluice::test
