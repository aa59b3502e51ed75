// pool_size = "auto" against real PostgreSQL: many clients served right while the adaptive limit moves within its bounds.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using namespace std::chrono_literals;

constexpr int auto_min = 2;
constexpr int auto_max = 12;

struct auto_proxy {
  std::uint16_t metrics_port = 0;
  std::unique_ptr<pgsluice_process> process;
};

// pgsluice with pool_size = "auto" for the test database (the global default stays a fixed 5,
// so a pool ignoring "auto" would show a constant limit of 5), the console and /metrics.
auto_proxy start_auto_proxy() {
  auto& c = cluster();
  auto s = admin_setup("transaction", 5);
  s.globals = "pool_size_auto_min = " + std::to_string(auto_min) + "\npool_size_auto_max = " + std::to_string(auto_max) +
              "\nmax_client_conn = 200\n";
  s.database_extra = "pool_size = \"auto\"\n";
  auto_proxy p;
  p.metrics_port = b::pick_free_port();
  pgsluice_process::options o;
  o.probe = s.probe;
  o.config = [s, port = p.metrics_port, admin = c.admin().name](std::uint16_t listen) {
    return proxy_toml(s, listen) + "\n[admin]\nadmin_users = [" + toml_string(admin) +
           "]\n\n[metrics]\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) + "\n";
  };
  p.process = std::make_unique<pgsluice_process>(std::move(o));
  return p;
}

// The value of a column of SHOW POOLS for the test database's pool.
std::optional<int> show_pools_cell(PGconn* console, const std::string& column) {
  auto& c = cluster();
  PGresult* r = PQexec(console, "SHOW POOLS");
  std::optional<int> out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    const int col = PQfnumber(r, column.c_str());
    for (int i = 0; col >= 0 && i < PQntuples(r); ++i) {
      if (c.database() == PQgetvalue(r, i, 0) && c.admin().name == PQgetvalue(r, i, 1))
        out = std::stoi(PQgetvalue(r, i, col));
    }
  }
  PQclear(r);
  return out;
}

// The body of GET /metrics (HTTP/1.0: the server closes after the reply).
std::string scrape(std::uint16_t port) {
  raw_client http(port);
  if (!http.ok()) return {};
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  http.send(std::vector<std::uint8_t>(req.begin(), req.end()));
  const auto bytes = http.read_some(1 << 22, 10s);
  return std::string(bytes.begin(), bytes.end());
}

TEST(pool_size_auto, serves_many_clients_right_while_the_limit_moves_within_its_bounds) {
  auto& c = cluster();
  auto p = start_auto_proxy();
  const std::string console_info = p.process->conninfo(c.admin().name, c.admin().password, "pgsluice");
  pg_raw console(console_info);
  ASSERT_TRUE(console.ok()) << console.error();
  const auto first = show_pools_cell(console.conn, "pool_limit");

  // Clients each run transactions that keep the server's CPU busy, and check every answer.
  constexpr int clients = 40;
  constexpr int transactions = 150;
  std::atomic<int> errors{0}, wrong{0}, done{0};
  std::atomic<bool> stop_watch{false};
  std::mutex first_error_mu;
  std::string first_error;
  std::set<int> limits_seen;
  int busy_most = 0;
  std::thread watcher([&] {
    pg_raw admin(console_info);
    while (admin.ok() && !stop_watch.load()) {
      if (auto l = show_pools_cell(admin.conn, "pool_limit")) limits_seen.insert(*l);
      if (auto a = show_pools_cell(admin.conn, "sv_active")) busy_most = std::max(busy_most, *a);
      std::this_thread::sleep_for(20ms);  // a sampling period, not a synchronisation
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      pg_raw conn(admin_conninfo(*p.process));
      if (!conn.ok()) {
        ++errors;
        std::lock_guard lk(first_error_mu);
        if (first_error.empty()) first_error = conn.error();
        return;
      }
      for (int i = 0; i < transactions; ++i) {
        const long n = 3000 + 37 * t + i;
        const std::string arg = std::to_string(n);
        const char* values[] = {arg.c_str()};
        PGresult* r = PQexecParams(conn.conn, "SELECT sum(g)::bigint FROM generate_series(1, $1::int) g", 1, nullptr,
                                   values, nullptr, nullptr, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
          ++errors;
          std::lock_guard lk(first_error_mu);
          if (first_error.empty()) first_error = PQresultErrorMessage(r);
        } else if (std::stoll(PQgetvalue(r, 0, 0)) != n * (n + 1) / 2) {
          ++wrong;
        }
        PQclear(r);
      }
      ++done;
    });
  }
  for (auto& th : threads) th.join();
  // The limit as it stands after the load, from /metrics.
  const std::string metrics = scrape(p.metrics_port);
  stop_watch = true;
  watcher.join();

  EXPECT_EQ(errors.load(), 0) << first_error;
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(done.load(), clients);
  ASSERT_TRUE(first.has_value()) << "SHOW POOLS has a pool_limit column";
  EXPECT_EQ(*first, auto_min) << "an auto pool starts at its minimum";
  ASSERT_FALSE(limits_seen.empty());
  EXPECT_GE(*limits_seen.begin(), auto_min);
  EXPECT_LE(*limits_seen.rbegin(), auto_max);
  EXPECT_GT(limits_seen.size(), 1u) << "the limit never moved";
  EXPECT_LE(busy_most, auto_max) << "more servers busy at once than pool_size_auto_max";

  // /metrics: the gauge, within the bounds.
  const std::string series = "pgsluice_pool_limit{database=\"" + c.database() + "\",user=\"" + c.admin().name + "\"";
  const auto at = metrics.find(series);
  ASSERT_NE(at, std::string::npos) << metrics.substr(0, 2000);
  const auto value_at = metrics.find("} ", at);
  ASSERT_NE(value_at, std::string::npos);
  const int scraped = std::stoi(metrics.substr(value_at + 2));
  EXPECT_GE(scraped, auto_min);
  EXPECT_LE(scraped, auto_max);
}

}  // namespace
}  // namespace pgsluice::test::proxy
