// JSON log lines from the text convention (connection, event, key=value fields), UTF-8 safety, and the process figures' /proc parsers.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

#include "proxy/logging.hpp"
#include "proxy/process_stats.hpp"

namespace pgsluice::test {
namespace {

using pgsluice::proxy::json_escape;
using pgsluice::proxy::json_log_line;
using pgsluice::proxy::log_quoted;
using json = nlohmann::json;

const auto noon = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'796'126'400'123));  // 2026-12-01T12:00:00.123Z

json parsed(std::string_view text, std::string_view level = "info") {
  const std::string line = json_log_line(noon, level, text);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  return json::parse(line);
}

TEST(json_logs, login_line_becomes_fields) {
  const auto j = parsed("c42 login user=\"app\" db=\"sales\" addr=127.0.0.1:50412 pool=\"sales/app\" mode=transaction "
                        "application_name=\"my app\"");
  EXPECT_EQ(j["time"], "2026-12-01T12:00:00.123Z");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["connection"], "c42");
  EXPECT_EQ(j["event"], "login");
  EXPECT_EQ(j["user"], "app");
  EXPECT_EQ(j["database"], "sales");
  EXPECT_EQ(j["client_addr"], "127.0.0.1:50412");
  EXPECT_EQ(j["mode"], "transaction");
  EXPECT_EQ(j["application_name"], "my app");
  EXPECT_EQ(j["message"].get<std::string>().substr(0, 9), "c42 login");
}

TEST(json_logs, duration_is_seconds_and_sqlstate_kept) {
  const auto j = parsed("c7 disconnect reason=auth_failed user=\"x\" db=\"y\" addr=[::1]:5 duration=0.250s sqlstate=28P01");
  EXPECT_EQ(j["event"], "disconnect");
  EXPECT_DOUBLE_EQ(j["duration"].get<double>(), 0.25);
  EXPECT_EQ(j["sqlstate"], "28P01");
  EXPECT_EQ(j["reason"], "auth_failed");
  EXPECT_DOUBLE_EQ(parsed("c1 x duration=15ms")["duration"].get<double>(), 0.015);
  EXPECT_EQ(parsed("c1 x duration=soon")["duration"], "soon");
}

TEST(json_logs, quoted_values_with_quotes_backslashes_and_spaces_round_trip) {
  const std::string user = "we \"ird\" \\ user";
  const auto j = parsed("c3 auth_failed user=" + log_quoted(user) + " db=\"d\" why=\"wrong password\"");
  EXPECT_EQ(j["user"], user);
  EXPECT_EQ(j["why"], "wrong password");
  EXPECT_EQ(j["database"], "d");
}

TEST(json_logs, process_lines_have_a_null_connection) {
  const auto j = parsed("listening on 127.0.0.1:6432 workers=2");
  EXPECT_TRUE(j["connection"].is_null());
  EXPECT_EQ(j["event"], "listening");
  EXPECT_EQ(j["workers"], "2");
  const auto s = parsed("s9 opened pool=app/app server=127.0.0.1:5432 purpose=client backend_pid=77", "debug");
  EXPECT_EQ(s["connection"], "s9");
  EXPECT_EQ(s["level"], "debug");
  EXPECT_EQ(s["backend_pid"], "77");
}

TEST(json_logs, reserved_keys_are_not_overwritten) {
  const auto j = parsed("c1 thing level=evil message=\"m\" time=0");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["field_level"], "evil");
  EXPECT_EQ(j["field_message"], "m");
  EXPECT_EQ(j["message"], "c1 thing level=evil message=\"m\" time=0");
}

TEST(json_logs, any_bytes_give_valid_json) {
  // A user name from a startup packet may hold anything: control characters, invalid UTF-8.
  const std::string nasty = std::string("a\x01\x1f\"\\\n\t\x7f") + "\xff\xc3(" + "\xed\xa0\x80" + "é€😀";
  const auto j = parsed("c5 auth_failed user=" + log_quoted(nasty) + " why=\"" + nasty + "\"");
  EXPECT_EQ(j["connection"], "c5");
  EXPECT_NE(j["message"].get<std::string>().find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  EXPECT_NE(j["message"].get<std::string>().find("é€😀"), std::string::npos);
  EXPECT_EQ(json_escape("\x01"), "\\u0001");
  EXPECT_EQ(json_escape("\xc0\xaf"), "\\ufffd\\ufffd");  // overlong '/'
  // Unterminated quotes and stray '=' do not lose the line.
  EXPECT_EQ(parsed("c2 odd value=\"never closed")["value"], "never closed");
  EXPECT_EQ(parsed("=== c2")["message"], "=== c2");
}

// --- /proc parsers of the process metrics ---

TEST(process_stats, parses_proc_self_stat_with_spaces_in_the_name) {
  // proc(5) fields; comm "(my (odd) proc)" holds spaces and parentheses.
  const std::string stat =
      "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 1234 0 0 0 "
      "350 150 0 0 20 0 9 0 987654 123456789 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
  const auto s = pgsluice::proxy::parse_proc_stat(stat);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->utime_ticks, 350u);
  EXPECT_EQ(s->stime_ticks, 150u);
  EXPECT_EQ(s->start_ticks, 987654u);
  EXPECT_EQ(s->vsize_bytes, 123456789u);
  EXPECT_EQ(s->rss_pages, 2560);
  EXPECT_FALSE(pgsluice::proxy::parse_proc_stat("4242 (x) S 1 2"));
  EXPECT_FALSE(pgsluice::proxy::parse_proc_stat("garbage"));
}

TEST(process_stats, boot_time_and_live_figures) {
  EXPECT_EQ(pgsluice::proxy::parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1764590000\nprocesses 9\n"), 1764590000);
  EXPECT_FALSE(pgsluice::proxy::parse_boot_time("cpu 1\n"));
  const auto p = pgsluice::proxy::read_process_stats();
  ASSERT_TRUE(p.ok);
  EXPECT_GT(p.resident_bytes, 0);
  EXPECT_GT(p.open_fds, 2);  // at least stdin, stdout, stderr
  EXPECT_GE(p.max_fds, p.open_fds);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(p.start_time_seconds, now - 3600);
  EXPECT_LE(p.start_time_seconds, now + 1);
}

}  // namespace
}  // namespace pgsluice::test
