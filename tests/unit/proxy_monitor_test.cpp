// The lag monitor's parsing of what a server answers: LSN text and one sample row.
#include <gtest/gtest.h>

#include "proxy/monitor.hpp"

namespace px = pgsluice::proxy;

namespace {

TEST(monitor, lsn_text_round_trips) {
  EXPECT_EQ(px::parse_lsn("0/0"), 0u);
  EXPECT_EQ(px::parse_lsn("16/B374D848"), (std::uint64_t{0x16} << 32) | 0xB374D848u);
  EXPECT_EQ(px::format_lsn((std::uint64_t{0x16} << 32) | 0xB374D848u), "16/B374D848");
  EXPECT_EQ(px::parse_lsn(px::format_lsn(123456789012345ull)), 123456789012345ull);
  for (const char* bad : {"", "/", "1/", "/1", "G/0", "1/2/3", "1 /2", "100000000/0"}) EXPECT_FALSE(px::parse_lsn(bad)) << bad;
}

TEST(monitor, sample_rows) {
  using row = std::vector<std::optional<std::string>>;
  auto primary = px::parse_wal_sample(row{"f", "123456", std::nullopt});
  ASSERT_TRUE(primary);
  EXPECT_FALSE(primary->in_recovery);
  EXPECT_EQ(primary->position, 123456u);
  EXPECT_FALSE(primary->replay_age_ms);
  auto replica = px::parse_wal_sample(row{"t", "1000", "250"});
  ASSERT_TRUE(replica);
  EXPECT_TRUE(replica->in_recovery);
  EXPECT_EQ(replica->replay_age_ms, 250);
  // A standby that has replayed nothing yet reports NULL positions: known to be in recovery, nothing else.
  auto fresh = px::parse_wal_sample(row{"t", std::nullopt, std::nullopt});
  ASSERT_TRUE(fresh);
  EXPECT_FALSE(fresh->position);
  EXPECT_FALSE(px::parse_wal_sample(row{"t"}));
  EXPECT_FALSE(px::parse_wal_sample(row{std::nullopt, "1", "1"}));
  EXPECT_FALSE(px::parse_wal_sample(row{"t", "12x", "1"})->position);
}

TEST(monitor, sample_rows_with_received_position_and_timeline) {
  using row = std::vector<std::optional<std::string>>;
  auto s = px::parse_wal_sample(row{"t", "1000", "5", "1200", "2"});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->received, 1200u);
  EXPECT_EQ(s->timeline, 2u);
}

TEST(monitor, primary_conninfo_pointed_at_the_new_primary) {
  // Host and port replaced, other keywords kept, hostaddr dropped, quoting kept valid.
  EXPECT_EQ(px::repoint_conninfo("host=10.0.0.1 port=5432 user=repl application_name=r1", "10.0.0.2", 5433),
            "host='10.0.0.2' port='5433' user='repl' application_name='r1'");
  EXPECT_EQ(px::repoint_conninfo("user=repl hostaddr=10.0.0.1", "db2", 6000), "user='repl' host='db2' port='6000'");
  EXPECT_EQ(px::repoint_conninfo("user=repl password='a \\'b'", "db2", 6000),
            "user='repl' password='a \\'b' host='db2' port='6000'");
  // A unix-socket directory stays when the new primary is on this machine's loopback.
  EXPECT_EQ(px::repoint_conninfo("host='/tmp/s' port=4000 user=postgres", "127.0.0.1", 4001),
            "host='/tmp/s' port='4001' user='postgres'");
  EXPECT_EQ(px::repoint_conninfo("host=/tmp/s port=4000", "10.0.0.9", 4001), "host='10.0.0.9' port='4001'");
}

}  // namespace
