// pgbench through pgsluice: select-only and TPC-B, simple/extended/prepared, 10 and 100 clients, pool smaller than the clients.
//
// Every transaction must commit: pgbench's exit status, "actually processed: N/N" and
// "number of failed transactions: 0" are checked. While pgbench runs, PostgreSQL's own count
// of the server connections coming from pgsluice is sampled: it never exceeds the pool size. -M prepared in transaction mode exercises the
// named-statement renaming across server connections; in both modes it also exercises
// statements prepared synchronously (PQprepare) while every server is busy.

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

constexpr int pool_size = 4;

void init_pgbench_tables() {
  static bool done = false;
  if (done) return;
  auto& c = cluster();
  const auto r = run_program({"pgbench", "-i", "-s", "2", "-q", c.conninfo(c.primary_index(), c.admin().name)}, {},
                             std::chrono::minutes(3));
  ASSERT_EQ(r.status, 0) << r.output;
  done = true;
}

pgsluice_process& proxy_for(const std::string& mode) {
  static std::unique_ptr<pgsluice_process> transaction, session;
  auto& slot = mode == "transaction" ? transaction : session;
  if (!slot) {
    auto s = admin_setup(mode, pool_size);
    s.globals = "max_client_conn = 400\nquery_wait_timeout = \"120s\"\n";
    slot = start_proxy(s);
  }
  return *slot;
}

// The word following `label` in pgbench's report ("" when absent).
std::string field_after(const std::string& text, const std::string& label) {
  const auto at = text.find(label);
  if (at == std::string::npos) return {};
  const auto start = at + label.size();
  const auto end = text.find_first_of(" \n", start);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

struct bench_case {
  std::string pool_mode;
  std::string protocol;  // -M
  bool select_only;
  int clients;
};

std::string case_name(const ::testing::TestParamInfo<bench_case>& info) {
  const auto& p = info.param;
  return p.pool_mode + "_" + p.protocol + "_" + (p.select_only ? "select_only" : "tpcb") + "_" + std::to_string(p.clients) +
         "_clients";
}

class pgbench_through_proxy : public ::testing::TestWithParam<bench_case> {};

TEST_P(pgbench_through_proxy, every_transaction_commits) {
  const auto& p = GetParam();
  init_pgbench_tables();
  auto& proxy = proxy_for(p.pool_mode);
  auto& c = cluster();
  const int per_client = p.clients >= 100 ? 10 : 50;
  std::vector<std::string> argv = {"pgbench", "-n", "-c", std::to_string(p.clients), "-j", "2", "-t",
                                   std::to_string(per_client), "-M", p.protocol};
  if (p.select_only) argv.push_back("-S");
  argv.push_back(proxy.conninfo(c.admin().name, c.admin().password, c.database()));
  server_connection_sampler sampler(proxy.pid(), c.primary_index());
  const auto r = run_program(argv, {}, std::chrono::minutes(5));
  const auto servers = sampler.finish();
  ASSERT_EQ(r.status, 0) << r.output;
  expect_within_pool(servers, pool_size);

  const std::string expected = std::to_string(p.clients * per_client);
  EXPECT_EQ(field_after(r.output, "number of transactions actually processed: "), expected + "/" + expected)
      << r.output;
  EXPECT_EQ(field_after(r.output, "number of failed transactions: "), "0") << r.output;
  EXPECT_TRUE(proxy.running()) << "pgsluice exited; log: " << b::read_file_tail(proxy.log_file());
}

std::vector<bench_case> all_cases() {
  std::vector<bench_case> out;
  for (std::string mode : {"transaction", "session"})
    for (std::string proto : {"simple", "extended", "prepared"})
      for (bool select_only : {true, false})
        for (int clients : {10, 100}) out.push_back({mode, proto, select_only, clients});
  return out;
}

INSTANTIATE_TEST_SUITE_P(matrix, pgbench_through_proxy, ::testing::ValuesIn(all_cases()), case_name);

// Many more clients than servers, for many transactions each: sampled while pgbench runs,
// the server connections coming from pgsluice (as PostgreSQL lists them) never exceed the
// pool size, and the samples did see the pool at work.
TEST(pgbench_pool_limit, server_connections_never_exceed_the_pool_size) {
  auto& c = cluster();
  auto& proxy = proxy_for("transaction");
  init_pgbench_tables();
  server_connection_sampler sampler(proxy.pid(), c.primary_index());
  const auto r = run_program({"pgbench", "-n", "-c", "40", "-j", "2", "-t", "200", "-S",
                              proxy.conninfo(c.admin().name, c.admin().password, c.database())},
                             {}, std::chrono::minutes(2));
  const auto servers = sampler.finish();
  ASSERT_EQ(r.status, 0) << r.output;
  expect_within_pool(servers, pool_size);
}

}  // namespace
}  // namespace pgsluice::test::proxy
