// Malformed and hostile input through raw sockets: each bad client gets PostgreSQL's error or a clean close,
// everyone else keeps being served.
#include <thread>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using namespace std::chrono_literals;

pgsluice_process& proxy() {
  static std::unique_ptr<pgsluice_process> p;
  if (!p) {
    // trust: a raw client logs in with a bare StartupMessage.
    auto s = admin_setup("transaction", 2);
    s.auth_type = "trust";
    // query_wait_timeout: a test that finds the pool taken gets an error instead of hanging.
    s.globals = "client_login_timeout = \"1s\"\nmax_message_size = \"1MB\"\nquery_wait_timeout = \"5s\"\n";
    p = start_proxy(s);
  }
  return *p;
}

std::vector<std::pair<std::string, std::string>> login_params() {
  return {{"user", cluster().admin().name}, {"database", cluster().database()}};
}

// A well-behaved client still gets answers.
void expect_proxy_serves_others() {
  auto conn = connect(admin_conninfo(proxy()));
  EXPECT_EQ(conn.scalar("SELECT 'still serving'").value_or(""), "still serving");
  EXPECT_TRUE(proxy().running());
}

// A raw client logged in (AuthenticationOk ... ReadyForQuery).
std::unique_ptr<raw_client> logged_in() {
  auto c = std::make_unique<raw_client>(proxy().port());
  EXPECT_TRUE(c->ok());
  c->send(startup_packet(login_params()));
  const auto tags = c->read_until_ready(10s);
  EXPECT_FALSE(tags.empty());
  EXPECT_EQ(tags.back(), 'Z') << tags;
  return c;
}

// Readiness: pgsluice has read every byte `c` sent (nothing in flight, nothing unread).
void wait_until_read(raw_client& c) {
  ASSERT_TRUE(b::poll_until(10s, 10ms, [&] { return peer_has_read_all(c.fd()); }))
      << "pgsluice never read what the client sent";
}

// PostgreSQL closes a connection with a bad startup length at once, answering nothing.
void expect_closed_without_a_word(raw_client& c) {
  const auto rest = c.rest_until_closed(10s);
  ASSERT_TRUE(rest) << "not closed";
  EXPECT_TRUE(rest->empty()) << rest->size() << " bytes sent before closing";
}

// What PostgreSQL does on a protocol violation: FATAL 08P01 (with `wording`, when given), then
// it closes; and everyone else is still served.
void expect_fatal_protocol_violation(raw_client& c, const std::string& wording = {}) {
  auto m = c.read_message(10s);
  ASSERT_TRUE(m) << "no answer";
  EXPECT_EQ(m->first, 'E');
  EXPECT_EQ(error_field(m->second, 'C'), "08P01");
  EXPECT_EQ(error_field(m->second, 'S'), "FATAL");
  if (!wording.empty()) {
    EXPECT_EQ(error_field(m->second, 'M'), wording);
  }
  EXPECT_TRUE(c.closed_within(10s));
  expect_proxy_serves_others();
}

TEST(bad_startup, length_below_the_minimum_is_closed) {
  raw_client c(proxy().port());
  ASSERT_TRUE(c.ok());
  std::vector<std::uint8_t> bytes;
  put32(bytes, 3);
  c.send(bytes);
  expect_closed_without_a_word(c);
  expect_proxy_serves_others();
}

TEST(bad_startup, length_above_10000_is_closed_before_reading_it) {
  raw_client c(proxy().port());
  std::vector<std::uint8_t> bytes;
  put32(bytes, 20000);
  put32(bytes, 196608);
  c.send(bytes);
  expect_closed_without_a_word(c);
  expect_proxy_serves_others();
}

TEST(bad_startup, protocol_2_is_refused) {
  raw_client c(proxy().port());
  c.send(startup_packet(login_params(), 2u << 16));
  EXPECT_TRUE(c.closed_within(10s));
  expect_proxy_serves_others();
}

TEST(bad_startup, garbage_parameters_get_an_error) {
  raw_client c(proxy().port());
  // Parameters without the final terminator byte.
  std::vector<std::uint8_t> body;
  put32(body, 196608);
  for (char ch : std::string("user")) body.push_back(static_cast<std::uint8_t>(ch));
  body.push_back(0);
  body.push_back('x');
  std::vector<std::uint8_t> bytes;
  put32(bytes, static_cast<std::uint32_t>(body.size() + 4));
  bytes.insert(bytes.end(), body.begin(), body.end());
  c.send(bytes);
  expect_fatal_protocol_violation(c, "invalid startup packet layout: expected terminator as last byte");
}

TEST(bad_startup, half_a_startup_packet_then_silence_hits_the_login_timeout) {
  raw_client c(proxy().port());
  auto bytes = startup_packet(login_params());
  bytes.resize(bytes.size() / 2);
  c.send(bytes);
  wait_until_read(c);
  expect_proxy_serves_others();  // while it stalls
  // client_login_timeout is 1 s; without it the connection would stay open for good.
  EXPECT_TRUE(c.closed_within(20s));
}

TEST(negotiation, ssl_and_gssenc_requests_are_answered_no) {
  for (std::uint32_t code : {80877103u, 80877104u}) {
    raw_client c(proxy().port());
    std::vector<std::uint8_t> req;
    put32(req, 8);
    put32(req, code);
    c.send(req);
    const auto got = c.read_some(1, 10s);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], 'N');
    c.buffered().clear();
    c.send(startup_packet(login_params()));
    const auto tags = c.read_until_ready(10s);
    ASSERT_FALSE(tags.empty());
    EXPECT_EQ(tags.back(), 'Z');
  }
}

TEST(negotiation, newer_minor_version_gets_negotiate_protocol_version) {
  raw_client c(proxy().port());
  auto params = login_params();
  params.emplace_back("_pq_.something", "1");
  c.send(startup_packet(params, (3u << 16) | 2));
  auto m = c.read_message(10s);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->first, 'v');
  ASSERT_GE(m->second.size(), 8u);
  EXPECT_EQ(m->second[3], 0);  // newest minor supported: 0
  EXPECT_EQ(m->second[7], 1);  // one unrecognized option
  const auto tags = c.read_until_ready(10s);
  ASSERT_FALSE(tags.empty());
  EXPECT_EQ(tags.back(), 'Z');
}

TEST(negotiation, cancel_request_with_an_unknown_key_is_just_closed) {
  raw_client c(proxy().port());
  std::vector<std::uint8_t> req;
  put32(req, 16);
  put32(req, 80877102);
  put32(req, 12345);
  put32(req, 67890);
  c.send(req);
  expect_closed_without_a_word(c);
  expect_proxy_serves_others();
}

TEST(bad_messages, oversized_message_is_refused_from_its_header) {
  auto c = logged_in();
  std::vector<std::uint8_t> bytes{'Q'};
  put32(bytes, 512u << 20);  // 512 MiB announced, limit 1 MiB: judged before any body arrives
  c->send(bytes);
  expect_fatal_protocol_violation(*c);
}

TEST(bad_messages, unknown_message_type_is_a_protocol_violation) {
  auto c = logged_in();
  c->send(message('z', "abc"));
  expect_fatal_protocol_violation(*c, "invalid frontend message type 122");
}

TEST(bad_messages, random_bytes_after_login) {
  auto c = logged_in();
  std::vector<std::uint8_t> junk;
  std::uint32_t x = 2463534242u;
  for (int i = 0; i < 4096; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    junk.push_back(static_cast<std::uint8_t>(x));
  }
  junk[0] = 0xfe;  // not a message type
  c->send(junk);
  expect_fatal_protocol_violation(*c);
}

// PostgreSQL judges the type byte before the length (postgres.c SocketBackend): an unknown
// type with an absurd length is "invalid frontend message type", not a length error.
TEST(bad_messages, an_unknown_type_is_reported_before_its_length) {
  auto c = logged_in();
  std::vector<std::uint8_t> bytes{0xfe};
  put32(bytes, 0xffffffffu);
  c->send(bytes);
  expect_fatal_protocol_violation(*c, "invalid frontend message type 254");
}

TEST(bad_messages, half_a_message_then_silence_hurts_only_that_client) {
  auto c = logged_in();
  const auto q = message('Q', std::string("SELECT 1") + '\0');
  const std::vector<std::uint8_t> first(q.begin(), q.end() - 4), rest(q.end() - 4, q.end());
  c->send(first);
  wait_until_read(*c);
  // Everyone else is served, repeatedly, while this client sits on half a message; it holds
  // no server connection meanwhile (the pool has two and both stay usable).
  for (int i = 0; i < 3; ++i) expect_proxy_serves_others();
  auto a = connect(admin_conninfo(proxy()));
  auto b2 = connect(admin_conninfo(proxy()));
  a.query("BEGIN");
  b2.query("BEGIN");
  EXPECT_EQ(a.scalar("SELECT 1").value_or(""), "1");
  EXPECT_EQ(b2.scalar("SELECT 2").value_or(""), "2");
  a.query("COMMIT");
  b2.query("COMMIT");
  // Completing the message later is still answered.
  c->send(rest);
  const auto tags = c->read_until_ready(10s);
  EXPECT_EQ(tags, "TDCZ");
}

// Twenty bad clients at once, half with a bad startup length, half logged in and then
// sending a Query without its terminator and an unknown message type: every one of them is
// refused and closed, and a good client is served before they misbehave and after.
TEST(bad_messages, many_bad_clients_at_once) {
  constexpr int bad_clients = 20;
  std::vector<std::unique_ptr<raw_client>> clients;
  for (int t = 0; t < bad_clients; ++t) {
    clients.push_back(std::make_unique<raw_client>(proxy().port()));
    ASSERT_TRUE(clients.back()->ok());
  }
  // The logged-in half first, so their logins are not what the others' closing races with.
  for (int t = 1; t < bad_clients; t += 2) {
    auto& c = *clients[t];
    c.send(startup_packet(login_params()));
    const auto tags = c.read_until_ready(10s);
    ASSERT_FALSE(tags.empty());
    ASSERT_EQ(tags.back(), 'Z') << tags;
  }
  expect_proxy_serves_others();
  std::vector<std::thread> threads;
  std::vector<std::string> outcome(bad_clients);
  for (int t = 0; t < bad_clients; ++t) {
    threads.emplace_back([&, t] {
      auto& c = *clients[t];
      std::string codes;
      if (t % 2 == 0) {
        std::vector<std::uint8_t> bytes;
        put32(bytes, 7);
        c.send(bytes);
      } else {
        auto bad = message('Q', "no terminator");
        const auto unknown = message('?', "");
        bad.insert(bad.end(), unknown.begin(), unknown.end());
        c.send(bad);
        // PostgreSQL's answer: each error in turn, the last one FATAL, then the close.
        while (auto m = c.read_message(10s)) {
          if (m->first == 'E') codes += error_field(m->second, 'S') + " " + error_field(m->second, 'C') + ";";
        }
      }
      outcome[t] = codes + (c.closed_within(10s) ? "closed" : "open");
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < bad_clients; ++t) {
    if (t % 2 == 0) {
      EXPECT_EQ(outcome[t], "closed") << "client " << t << " (startup length 7)";
    } else {
      EXPECT_TRUE(outcome[t].ends_with("FATAL 08P01;closed")) << "client " << t << ": " << outcome[t];
    }
  }
  expect_proxy_serves_others();
}

}  // namespace
}  // namespace pgsluice::test::proxy
