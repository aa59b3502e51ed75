// The relay's state machine without sockets: each event sequence a session goes through, and the state and decision after it.
#include <gtest/gtest.h>

#include <vector>

#include "proxy/relay_machine.hpp"

namespace px = pgsluice::proxy;
using px::relay_state;
using release = px::relay_machine::release_action;

namespace {

// Records every state change, as the metrics gauges see them.
struct recorder : px::relay_machine::observer {
  std::vector<std::pair<relay_state, relay_state>> moves;
  void state_changed(relay_state from, relay_state to) noexcept override { moves.emplace_back(from, to); }
};

px::relay_machine logged_in_machine(recorder& rec) {
  px::relay_machine m(&rec);
  m.logged_in();
  return m;
}

// Logged in, with a server attached for a transaction.
px::relay_machine active_machine(recorder& rec) {
  auto m = logged_in_machine(rec);
  EXPECT_TRUE(m.needs_server());
  m.attached(false);
  return m;
}

TEST(relay_machine, transaction_cycle_returns_the_server_at_the_boundary) {
  recorder rec;
  auto m = logged_in_machine(rec);
  EXPECT_EQ(m.state(), relay_state::idle);
  EXPECT_TRUE(m.needs_server());
  EXPECT_EQ(m.state(), relay_state::waiting);
  m.attached(false);
  EXPECT_EQ(m.state(), relay_state::active);
  EXPECT_FALSE(m.needs_server()) << "a second batch of the same transaction needs no second server";
  EXPECT_EQ(m.between_requests(false), release::keep) << "inside a transaction the server stays";
  EXPECT_EQ(m.between_requests(true), release::release_now);
  m.detached();
  EXPECT_EQ(m.state(), relay_state::idle);
  EXPECT_FALSE(m.has_server());
  const std::vector<std::pair<relay_state, relay_state>> want{{relay_state::login, relay_state::idle},
                                                              {relay_state::idle, relay_state::waiting},
                                                              {relay_state::waiting, relay_state::active},
                                                              {relay_state::active, relay_state::idle}};
  EXPECT_EQ(rec.moves, want);
}

TEST(relay_machine, release_waits_for_a_write_in_flight) {
  recorder rec;
  auto m = active_machine(rec);
  m.server_write_started();
  EXPECT_EQ(m.between_requests(true), release::release_after_write);
  EXPECT_EQ(m.state(), relay_state::releasing);
  EXPECT_TRUE(m.server_write_finished()) << "the write is done: release now";
  m.detached();
  EXPECT_EQ(m.state(), relay_state::idle);
}

TEST(relay_machine, client_going_on_calls_off_a_release_due) {
  recorder rec;
  auto m = active_machine(rec);
  m.server_write_started();
  ASSERT_EQ(m.between_requests(true), release::release_after_write);
  EXPECT_FALSE(m.needs_server());
  EXPECT_EQ(m.state(), relay_state::active);
  EXPECT_FALSE(m.server_write_finished()) << "no release is due any more";
}

TEST(relay_machine, write_finishing_without_a_release_due_does_nothing) {
  recorder rec;
  auto m = active_machine(rec);
  m.server_write_started();
  EXPECT_FALSE(m.server_write_finished());
  EXPECT_EQ(m.state(), relay_state::active);
}

TEST(relay_machine, no_release_while_a_message_is_half_streamed) {
  recorder rec;
  auto m = active_machine(rec);
  m.server_stream(1000, true);
  EXPECT_EQ(m.between_requests(true), release::keep);
  EXPECT_EQ(m.server_streamed(600), 600u);
  EXPECT_EQ(m.server_streamed(600), 400u) << "only what belongs to the message is counted";
  EXPECT_EQ(m.between_requests(true), release::release_now);
  m.client_stream(10);
  EXPECT_EQ(m.client_side(), px::relay_machine::client_input::copy_stream);
  EXPECT_EQ(m.between_requests(true), release::keep);
  EXPECT_EQ(m.client_streamed(10), 10u);
  EXPECT_EQ(m.client_side(), px::relay_machine::client_input::messages);
}

TEST(relay_machine, login_server_kept_in_session_mode) {
  recorder rec;
  px::relay_machine m(&rec);
  ASSERT_TRUE(m.needs_server());
  m.attached(true);
  EXPECT_EQ(m.state(), relay_state::login) << "a server attached to learn its parameters is still login";
  m.logged_in();
  EXPECT_EQ(m.state(), relay_state::active) << "session pooling keeps it";
}

TEST(relay_machine, login_server_dropped_in_transaction_mode) {
  recorder rec;
  px::relay_machine m(&rec);
  ASSERT_TRUE(m.needs_server());
  m.attached(true);
  m.detached();
  EXPECT_EQ(m.state(), relay_state::login);
  m.logged_in();
  EXPECT_EQ(m.state(), relay_state::idle);
}

TEST(relay_machine, first_end_reason_counts_and_nothing_moves_after) {
  recorder rec;
  auto m = active_machine(rec);
  EXPECT_TRUE(m.end(px::end_reason::server_closed));
  EXPECT_FALSE(m.end(px::end_reason::client_closed));
  EXPECT_EQ(m.reason(), px::end_reason::server_closed);
  EXPECT_TRUE(m.ending());
  EXPECT_FALSE(m.has_server());
  EXPECT_FALSE(m.needs_server());
  EXPECT_EQ(m.between_requests(true), release::keep) << "an ending session returns its server in finish(), not here";
  m.finishing();
  m.closed();
  EXPECT_EQ(m.state(), relay_state::closed);
  EXPECT_EQ(px::gauge_of(relay_state::ending), px::client_state::active);
}

TEST(relay_machine, queued_client_that_gives_up_goes_back_to_idle) {
  recorder rec;
  auto m = logged_in_machine(rec);
  ASSERT_TRUE(m.needs_server());
  m.attach_failed();
  EXPECT_EQ(m.state(), relay_state::idle);
}

TEST(relay_machine, skip_to_sync_after_an_answered_error) {
  px::relay_machine m;
  m.logged_in();
  m.skip_to_sync();
  EXPECT_TRUE(m.skipping());
  EXPECT_EQ(m.client_side(), px::relay_machine::client_input::skip_to_sync);
  m.sync_seen();
  EXPECT_FALSE(m.skipping());
}

TEST(relay_machine, pin_once) {
  px::relay_machine m;
  EXPECT_TRUE(m.pin());
  EXPECT_FALSE(m.pin());
  EXPECT_TRUE(m.pinned());
}

TEST(relay_machine, server_fatal_forgotten_with_the_server) {
  recorder rec;
  auto m = active_machine(rec);
  m.server_fatal_seen();
  EXPECT_TRUE(m.server_fatal());
  m.detached();
  EXPECT_FALSE(m.server_fatal());
}

TEST(relay_machine, every_state_has_a_name) {
  for (auto s : {relay_state::login, relay_state::idle, relay_state::waiting, relay_state::active,
                 relay_state::releasing, relay_state::ending, relay_state::closing, relay_state::closed})
    EXPECT_STRNE(px::to_string(s), "?");
}

}  // namespace
