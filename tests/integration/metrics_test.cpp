// /metrics and JSON logs against real PostgreSQL: a live scrape checked by promtool, a real Prometheus scraping pgsluice, bad endpoint configs, every JSON log line parsed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// --- a tiny HTTP/1.1 client for the loopback endpoints -----------------------------------

struct http_reply {
  int status = 0;
  std::string headers;  // lower-cased
  std::string body;
};

http_reply http_request(std::uint16_t port, const std::string& method, const std::string& target) {
  http_reply r;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return r;
  }
  const std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string all;
  char buf[65536];
  for (;;) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    all.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto end = all.find("\r\n\r\n");
  if (all.size() < 12 || end == std::string::npos) return r;
  r.status = std::stoi(all.substr(9, 3));
  r.headers = all.substr(0, end);
  for (auto& c : r.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  r.body = all.substr(end + 4);
  return r;
}

http_reply http_get(std::uint16_t port, const std::string& target) { return http_request(port, "GET", target); }

// The value of one sample line `name{labels} value` (exact series text), or nullopt.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

// --- pgsluice with [metrics] -----------------------------------------------------------

struct proxy_with_metrics {
  std::uint16_t metrics_port = 0;
  std::unique_ptr<pgsluice_process> process;
};

std::string metrics_toml(std::uint16_t listen_port, std::uint16_t metrics_port, const std::string& log_section) {
  auto& c = cluster();
  return "workers = 2\npool_mode = \"transaction\"\ndefault_pool_size = 2\nauth_type = \"scram-sha-256\"\n"
         "\n[listen]\nhost = \"127.0.0.1\"\nport = " + std::to_string(listen_port) +
         "\n\n[metrics]\nhost = \"127.0.0.1\"\nport = " + std::to_string(metrics_port) + "\npath = \"/metrics\"\n" +
         "\n[log]\n" + log_section + "\n[users]\n" + toml_string(c.admin().name) + " = " + toml_string(c.admin().password) +
         "\n\n[databases." + c.database() + "]\nhost = \"127.0.0.1\"\nport = " + std::to_string(c.port(c.primary_index())) +
         "\n";
}

proxy_with_metrics start_with_metrics(const std::string& log_section = "level = \"info\"\n") {
  auto& c = cluster();
  proxy_with_metrics p;
  p.metrics_port = b::pick_free_port();
  pgsluice_process::options o;
  o.probe = {c.admin().name, c.admin().password, c.database()};
  o.config = [port = p.metrics_port, log_section](std::uint16_t listen) { return metrics_toml(listen, port, log_section); };
  p.process = std::make_unique<pgsluice_process>(std::move(o));
  return p;
}

// A little load: transactions on a few connections, a failed statement, a failed login.
void some_load(const pgsluice_process& p, int transactions) {
  auto& c = cluster();
  std::vector<pq_connection> conns;
  for (int i = 0; i < 3; ++i) conns.push_back(connect(admin_conninfo(p)));
  for (int i = 0; i < transactions; ++i) conns[i % 3].query("SELECT " + std::to_string(i));
  EXPECT_THROW(conns[0].query("SELECT 1/0"), sql_error);
  EXPECT_FALSE(try_connect(p.conninfo(c.admin().name, "wrong", c.database())).ok());
}

TEST(metrics, live_scrape_passes_promtool_and_counts_the_load) {
  auto p = start_with_metrics();
  some_load(*p.process, 30);
  const auto r = http_get(p.metrics_port, "/metrics");
  ASSERT_EQ(r.status, 200) << r.headers;
  EXPECT_NE(r.headers.find("content-type: text/plain; version=0.0.4"), std::string::npos) << r.headers;
  const std::string& t = r.body;
  EXPECT_GE(sample(t, "pgsluice_transactions_total").value_or(0), 30);
  EXPECT_GE(sample(t, "pgsluice_queries_total").value_or(0), 31);
  EXPECT_GE(sample(t, "pgsluice_client_received_bytes_total").value_or(0), 100);
  EXPECT_GE(sample(t, "pgsluice_client_sent_bytes_total").value_or(0), 100);
  EXPECT_EQ(sample(t, "pgsluice_client_login_failures_total").value_or(0), 1);
  EXPECT_GE(sample(t, "pgsluice_client_errors_total{sqlstate_class=\"22\"}").value_or(0), 1);  // division by zero
  EXPECT_GE(sample(t, "pgsluice_client_errors_total{sqlstate_class=\"28\"}").value_or(0), 1);  // the failed login
  EXPECT_GE(sample(t, "pgsluice_clients_accepted_total").value_or(0), 4);
  auto& c = cluster();
  const std::string pool_labels = "database=\"" + c.database() + "\",user=\"" + c.admin().name + "\",backend=\"127.0.0.1:" +
                                  std::to_string(c.port(c.primary_index())) + "\",role=\"primary\"";
  EXPECT_EQ(sample(t, "pgsluice_pool_size{" + pool_labels + "}").value_or(-1), 2);
  EXPECT_TRUE(sample(t, "pgsluice_pool_servers{" + pool_labels + ",state=\"idle\"}")) << t;
  EXPECT_EQ(sample(t, "pgsluice_backend_up{" + pool_labels + "}").value_or(-1), 1);
  EXPECT_TRUE(sample(t, "pgsluice_pool_wait_seconds_bucket{le=\"+Inf\"}"));
  // Per-database counters (those of SHOW STATS).
  const std::string db = "{database=\"" + c.database() + "\"}";
  EXPECT_GE(sample(t, "pgsluice_database_transactions_total" + db).value_or(0), 30) << t;
  EXPECT_GE(sample(t, "pgsluice_database_queries_total" + db).value_or(0), 31);
  EXPECT_GT(sample(t, "pgsluice_database_sent_bytes_total" + db).value_or(0), 0);
  EXPECT_GT(sample(t, "pgsluice_database_query_seconds_total" + db).value_or(0), 0);
  EXPECT_GT(sample(t, "process_resident_memory_bytes").value_or(0), 0);
  EXPECT_GT(sample(t, "process_open_fds").value_or(0), 0);
  EXPECT_GT(sample(t, "process_max_fds").value_or(0), 0);
  EXPECT_GT(sample(t, "process_start_time_seconds").value_or(0), 1.7e9);
  EXPECT_TRUE(sample(t, "process_cpu_seconds_total"));

  // promtool (Prometheus' own parser and linter) on that very scrape.
  const auto file = p.process->dir() / "scrape.txt";
  std::ofstream(file) << t;
  const auto promtool = b::find_program("promtool", "prometheus");
  const auto check = run_program({"/bin/sh", "-c", promtool.string() + " check metrics < " + file.string()}, {}, 30s);
  EXPECT_EQ(check.status, 0) << check.output;
  EXPECT_EQ(check.output, "") << check.output;

  // Other paths, methods and HEAD.
  EXPECT_EQ(http_get(p.metrics_port, "/").status, 404);
  EXPECT_EQ(http_request(p.metrics_port, "POST", "/metrics").status, 405);
  const auto head = http_request(p.metrics_port, "HEAD", "/metrics");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(http_get(p.metrics_port, "/metrics?x=1").status, 200);
  // Garbage gets a 400, and the endpoint goes on serving.
  {
    raw_client raw(p.metrics_port);
    ASSERT_TRUE(raw.ok());
    raw.send(std::vector<std::uint8_t>{'\x01', '\x02', ' ', '\r', '\n', '\r', '\n'});
    const auto got = raw.rest_until_closed(10s);
    ASSERT_TRUE(got);
    EXPECT_EQ(std::string(got->begin(), got->begin() + std::min<std::size_t>(got->size(), 12)), "HTTP/1.1 400");
  }
  EXPECT_EQ(http_get(p.metrics_port, "/metrics").status, 200);

  // A reload is counted by result.
  ASSERT_EQ(::kill(p.process->pid(), SIGHUP), 0);
  EXPECT_TRUE(b::poll_until(10s, 50ms, [&] {
    return sample(http_get(p.metrics_port, "/metrics").body, "pgsluice_config_reloads_total{result=\"success\"}").value_or(0) == 1;
  }));
  std::ofstream(p.process->config_file(), std::ios::app) << "\nnot toml at all [\n";
  ASSERT_EQ(::kill(p.process->pid(), SIGHUP), 0);
  EXPECT_TRUE(b::poll_until(10s, 50ms, [&] {
    const auto body = http_get(p.metrics_port, "/metrics").body;
    return sample(body, "pgsluice_config_reloads_total{result=\"failure\"}").value_or(0) == 1 &&
           sample(body, "pgsluice_config_last_reload_successful").value_or(1) == 0;
  }));
  EXPECT_TRUE(p.process->running());
}

// A real Prometheus server scrapes pgsluice: the target is up and a counter moves.
TEST(metrics, prometheus_scrapes_pgsluice) {
  auto p = start_with_metrics();
  const auto prometheus = b::find_program("prometheus", "prometheus");
  const auto dir = p.process->dir() / "prometheus";
  std::filesystem::create_directories(dir / "data");
  std::ofstream(dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                           "scrape_configs:\n  - job_name: pgsluice\n    scrape_interval: 1s\n"
                                           "    scrape_timeout: 1s\n    metrics_path: /metrics\n    static_configs:\n"
                                           "      - targets: ['127.0.0.1:" + std::to_string(p.metrics_port) + "']\n";
  std::optional<b::child_process> server;
  std::uint16_t port = 0;
  // Another process may take the port between picking and binding it: then try another.
  for (int attempt = 0; attempt < 3 && !server; ++attempt) {
    port = b::pick_free_port();
    b::spawn_options o;
    o.argv = {prometheus.string(), "--config.file=" + (dir / "prometheus.yml").string(),
              "--web.listen-address=127.0.0.1:" + std::to_string(port), "--storage.tsdb.path=" + (dir / "data").string(),
              "--log.level=warn"};
    o.log_file = dir / "prometheus.log";
    o.parent_death_signal = SIGKILL;
    auto child = b::child_process::spawn(o, SIGTERM);
    const bool ready = b::poll_until(30s, 100ms, [&] { return child.running() && http_get(port, "/-/ready").status == 200; });
    if (ready) {
      server = std::move(child);
    } else {
      child.stop(5s);
      ASSERT_TRUE(b::is_address_in_use(b::read_file_text(o.log_file))) << b::read_file_tail(o.log_file);
    }
  }
  ASSERT_TRUE(server) << "prometheus did not start";

  // The value of an instant query's first result, when there is one.
  auto query = [&](const std::string& q) -> std::optional<double> {
    const auto r = http_get(port, "/api/v1/query?query=" + url_encode(q));
    if (r.status != 200) return std::nullopt;
    const auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return std::nullopt;
    const auto& result = j["data"]["result"];
    if (!result.is_array() || result.empty()) return std::nullopt;
    return std::stod(result[0]["value"][1].get<std::string>());
  };
  ASSERT_TRUE(b::poll_until(45s, 200ms, [&] { return query("up{job=\"pgsluice\"}").value_or(0) == 1; }))
      << b::read_file_tail(dir / "prometheus.log");
  std::optional<double> before;
  ASSERT_TRUE(b::poll_until(30s, 200ms, [&] { return (before = query("pgsluice_transactions_total{job=\"pgsluice\"}")).has_value(); }));
  some_load(*p.process, 20);
  EXPECT_TRUE(b::poll_until(30s, 200ms, [&] {
    return query("pgsluice_transactions_total{job=\"pgsluice\"}").value_or(0) >= *before + 20;
  })) << "before: " << *before;
  EXPECT_TRUE(b::poll_until(30s, 200ms, [&] {
    return query("pgsluice_client_errors_total{job=\"pgsluice\",sqlstate_class=\"22\"}").value_or(0) >= 1;
  }));
  server->stop(10s);
}

// --- bad endpoint configs ---------------------------------------------------------------

TEST(metrics, port_in_use_stops_serve_naming_the_address) {
  // Hold a port, then ask pgsluice to serve metrics there.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::uint16_t taken = ntohs(a.sin_port);
  const auto dir = b::make_temp_dir("pgsluice-metrics-", b::service_user{});
  std::ofstream(dir / "p.toml") << metrics_toml(b::pick_free_port(), taken, "level = \"info\"\n");
  const auto r = run_program({pgsluice_binary().string(), "serve", "-c", (dir / "p.toml").string()}, {}, 30s);
  ::close(fd);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("cannot listen for metrics on 127.0.0.1:" + std::to_string(taken) + ": Address already in use"),
            std::string::npos)
      << r.output;

  // A path that is not one: `check` and `serve` name the key and line.
  std::string text = metrics_toml(6432, 9127, "level = \"info\"\n");
  text.replace(text.find("path = \"/metrics\""), 17, "path = \"metrics\"");
  std::ofstream(dir / "bad.toml") << text;
  for (const char* cmd : {"check", "serve"}) {
    const auto bad = run_program({pgsluice_binary().string(), cmd, "-c", (dir / "bad.toml").string()}, {}, 30s);
    EXPECT_NE(bad.status, 0) << bad.output;
    EXPECT_NE(bad.output.find("bad.toml:13: key 'metrics.path': must be an HTTP path starting with \"/\""), std::string::npos)
        << cmd << ": " << bad.output;
  }
  std::filesystem::remove_all(dir);
}

// --- JSON logs ---------------------------------------------------------------------------

TEST(json_logs, every_line_is_an_object_naming_its_connection) {
  auto& c = cluster();
  auto p = start_with_metrics("level = \"debug\"\nformat = \"json\"\nlog_connections = true\nlog_disconnections = true\n");
  {
    auto ok = connect(admin_conninfo(*p.process));
    ok.query("SELECT 1");
    EXPECT_THROW(ok.query("SELECT 1/0"), sql_error);
  }
  EXPECT_EQ(try_connect(p.process->conninfo(c.admin().name, "wrong", c.database())).sqlstate, "28P01");
  EXPECT_EQ(try_connect(p.process->conninfo(c.admin().name, c.admin().password, "no_such_db")).sqlstate, "3D000");
  // log_connections off after a reload: the next login is not logged, its logout still is.
  std::string text = b::read_file_text(p.process->config_file());
  text.replace(text.find("log_connections = true"), 22, "log_connections = false");
  b::write_service_file(p.process->config_file(), text, b::service_user{});
  ASSERT_EQ(::kill(p.process->pid(), SIGHUP), 0);
  ASSERT_TRUE(b::poll_until(10s, 50ms, [&] {
    return b::read_file_text(p.process->log_file()).find("config reloaded") != std::string::npos;
  }));
  { auto quiet = connect(admin_conninfo(*p.process)); }
  ASSERT_TRUE(b::poll_until(10s, 50ms, [&] {
    const auto log = b::read_file_text(p.process->log_file());
    std::size_t n = 0;
    for (auto at = log.find("\"event\":\"disconnect\""); at != std::string::npos; at = log.find("\"event\":\"disconnect\"", at + 1)) ++n;
    return n >= 5;  // probe, ok, wrong password, unknown database, quiet
  }));
  p.process->stop();

  std::vector<json> lines;
  std::istringstream in(b::read_file_text(p.process->log_file()));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    ASSERT_TRUE(j.is_object()) << line;
    for (const char* key : {"time", "level", "connection", "message"}) ASSERT_TRUE(j.contains(key)) << key << ": " << line;
    EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z")) << line;
    // Whatever names a client or server connection in its text names it in "connection".
    const std::string msg = j["message"];
    if (msg.size() > 1 && (msg[0] == 'c' || msg[0] == 's') && std::isdigit(static_cast<unsigned char>(msg[1]))) {
      EXPECT_TRUE(j["connection"].is_string()) << line;
    }
    lines.push_back(std::move(j));
  }
  ASSERT_FALSE(lines.empty());
  auto find = [&](auto pred) -> const json* {
    for (const auto& j : lines) {
      if (pred(j)) return &j;
    }
    return nullptr;
  };
  auto event_is = [](const json& j, const char* e) { return j.value("event", "") == e; };

  const json* login = find([&](const json& j) { return event_is(j, "login"); });
  ASSERT_TRUE(login);
  EXPECT_EQ((*login)["user"], c.admin().name);
  EXPECT_EQ((*login)["database"], c.database());
  EXPECT_TRUE((*login)["client_addr"].get<std::string>().starts_with("127.0.0.1:"));
  EXPECT_EQ((*login)["level"], "info");
  const std::string client = (*login)["connection"];

  const json* failed = find([&](const json& j) { return event_is(j, "auth_failed"); });
  ASSERT_TRUE(failed);
  EXPECT_EQ((*failed)["sqlstate"], "28P01");
  EXPECT_EQ((*failed)["user"], c.admin().name);
  EXPECT_TRUE((*failed)["connection"].is_string());

  const json* division = find([&](const json& j) { return event_is(j, "server_error") && j.value("sqlstate", "") == "22012"; });
  ASSERT_TRUE(division);
  EXPECT_EQ((*division)["level"], "debug");

  const json* unknown_db = find([&](const json& j) { return event_is(j, "disconnect") && j.value("sqlstate", "") == "3D000"; });
  ASSERT_TRUE(unknown_db);
  EXPECT_EQ((*unknown_db)["database"], "no_such_db");
  EXPECT_EQ((*unknown_db)["reason"], "login_refused");

  const json* bye = find([&](const json& j) { return event_is(j, "disconnect") && j["connection"] == client; });
  ASSERT_TRUE(bye);
  EXPECT_TRUE((*bye)["duration"].is_number());
  EXPECT_GE((*bye)["duration"].get<double>(), 0);
  EXPECT_EQ((*bye)["user"], c.admin().name);
  EXPECT_TRUE((*bye)["client_addr"].is_string());

  // After the reload: the last client's logout is logged, its login is not.
  const json* last_bye = nullptr;
  for (const auto& j : lines) {
    if (event_is(j, "disconnect")) last_bye = &j;
  }
  ASSERT_TRUE(last_bye);
  const std::string quiet = (*last_bye)["connection"];
  EXPECT_FALSE(find([&](const json& j) { return event_is(j, "login") && j["connection"] == quiet; })) << quiet;
  // Process-wide lines have a null connection.
  const json* listening = find([&](const json& j) { return event_is(j, "listening"); });
  ASSERT_TRUE(listening);
  EXPECT_TRUE((*listening)["connection"].is_null());
}

}  // namespace
}  // namespace pgsluice::test::proxy
