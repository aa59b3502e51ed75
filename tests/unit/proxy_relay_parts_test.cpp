// Unit tests for the relay's small pure parts: session-ending rules, buffers and gather lists (the field readers are protocol's, tested in protocol_fields_test).
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "proxy/buffer.hpp"
#include "proxy/session_rules.hpp"

namespace pgsluice::proxy {
namespace {

// --- session_rules ---------------------------------------------------------------------------

TEST(server_disposition, server_side_reasons_always_close) {
  server_condition clean;
  for (auto r : {end_reason::server_closed, end_reason::server_fatal, end_reason::server_protocol_error,
                 end_reason::server_unavailable}) {
    EXPECT_TRUE(is_server_side(r));
    EXPECT_EQ(decide_server_disposition(r, clean), server_disposition::close) << to_string(r);
  }
}

TEST(server_disposition, clean_server_after_a_client_side_end_is_reused) {
  server_condition c;
  EXPECT_FALSE(is_server_side(end_reason::client_terminate));
  EXPECT_EQ(decide_server_disposition(end_reason::client_terminate, c), server_disposition::reuse);
  EXPECT_EQ(decide_server_disposition(end_reason::client_closed, c), server_disposition::reuse);
}

TEST(server_disposition, open_transaction_or_session_state_means_reset) {
  server_condition in_tx;
  in_tx.transaction_status = 'T';
  EXPECT_EQ(decide_server_disposition(end_reason::client_closed, in_tx), server_disposition::reset);
  server_condition failed_tx;
  failed_tx.transaction_status = 'E';
  EXPECT_EQ(decide_server_disposition(end_reason::idle_transaction_timeout, failed_tx), server_disposition::reset);
  server_condition session;
  session.needs_reset = true;
  EXPECT_EQ(decide_server_disposition(end_reason::client_terminate, session), server_disposition::reset);
}

TEST(server_disposition, replies_in_flight_or_copy_mean_close) {
  server_condition busy;
  busy.replies_outstanding = true;
  EXPECT_EQ(decide_server_disposition(end_reason::client_closed, busy), server_disposition::close);
  server_condition copying;
  copying.in_copy = true;
  EXPECT_EQ(decide_server_disposition(end_reason::client_closed, copying), server_disposition::close);
}

TEST(release_at_ready, only_idle_unpinned_transaction_mode) {
  EXPECT_TRUE(may_release_at_ready(true, false, false, 'I'));
  EXPECT_FALSE(may_release_at_ready(false, false, false, 'I'));  // session mode
  EXPECT_FALSE(may_release_at_ready(true, true, false, 'I'));    // pinned
  EXPECT_FALSE(may_release_at_ready(true, false, true, 'I'));    // replies outstanding
  EXPECT_FALSE(may_release_at_ready(true, false, false, 'T'));
  EXPECT_FALSE(may_release_at_ready(true, false, false, 'E'));
}

// --- buffers -----------------------------------------------------------------------------------

TEST(byte_buffer, prepare_commit_consume_and_compaction) {
  byte_buffer b(8);
  auto w = b.prepare(4);
  ASSERT_GE(w.size(), 4u);
  std::copy_n("abcd", 4, w.begin());
  b.commit(4);
  EXPECT_EQ(b.size(), 4u);
  b.consume(3);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.data()[0], 'd');
  // Needs more room than is left at the end: the remaining byte moves to the front.
  w = b.prepare(7);
  ASSERT_GE(w.size(), 7u);
  std::copy_n("efghijk", 7, w.begin());
  b.commit(7);
  EXPECT_EQ(std::string(b.data().begin(), b.data().end()), "defghijk");
  // Growing beyond the capacity keeps the data.
  w = b.prepare(100);
  ASSERT_GE(w.size(), 100u);
  EXPECT_EQ(std::string(b.data().begin(), b.data().end()), "defghijk");
  b.consume(b.size());
  EXPECT_TRUE(b.empty());
  b.shrink_if_empty(16);
  EXPECT_GE(b.prepare(1).size(), 1u);
}

TEST(gather_list, merges_contiguous_input_and_keeps_order_with_owned_bytes) {
  const std::string input = "0123456789";
  const auto* p = reinterpret_cast<const std::uint8_t*>(input.data());
  gather_list g;
  g.add_input(p, 3);
  g.add_input(p + 3, 2);  // contiguous: one piece
  const std::uint8_t own[] = {'x', 'y'};
  g.add_owned(own);
  g.add_input(p + 7, 3);
  auto& o = g.begin_owned();
  o.push_back('z');
  g.end_owned();
  std::string out;
  int pieces = 0;
  g.for_each([&](std::span<const std::uint8_t> s) {
    out.append(s.begin(), s.end());
    ++pieces;
  });
  EXPECT_EQ(out, "01234xy789z");
  EXPECT_EQ(pieces, 4);
  EXPECT_EQ(g.bytes(), out.size());
  g.clear();
  EXPECT_TRUE(g.empty());
}

TEST(byte_buffer, allocates_on_first_use_and_gives_memory_back_when_empty) {
  byte_buffer b(64);
  EXPECT_EQ(b.capacity(), 0u);
  auto w = b.prepare(1);
  EXPECT_EQ(b.capacity(), 64u);
  w[0] = 'a';
  b.commit(1);
  b.release_if_empty();  // not empty: kept
  EXPECT_EQ(b.capacity(), 64u);
  EXPECT_EQ(b.data()[0], 'a');
  b.consume(1);
  b.release_if_empty();
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_GE(b.prepare(200).size(), 200u);
}

TEST(byte_buffer, relay_sized_storage_is_borrowed_from_the_thread_pool_and_given_back) {
  const std::size_t before = byte_buffer::pooled_blocks();
  {
    byte_buffer a;  // the relay's size
    a.prepare(1);
    EXPECT_EQ(a.capacity(), byte_buffer::pool_block_size);
    a.release_if_empty();  // an idle client: its block goes back
    EXPECT_EQ(a.capacity(), 0u);
    EXPECT_EQ(byte_buffer::pooled_blocks(), before + 1);
    std::copy_n("xyz", 3, a.prepare(10).begin());  // the next read borrows it again
    EXPECT_EQ(byte_buffer::pooled_blocks(), before);
    a.commit(3);
    // Growing past the block size gives the block back; the data is kept.
    a.prepare(byte_buffer::pool_block_size);
    EXPECT_GT(a.capacity(), byte_buffer::pool_block_size);
    EXPECT_EQ(byte_buffer::pooled_blocks(), before + 1);
    EXPECT_EQ(std::string(a.data().begin(), a.data().end()), "xyz");
    a.consume(3);
    byte_buffer b;
    b.prepare(1);
    EXPECT_EQ(byte_buffer::pooled_blocks(), before);
  }  // b's block goes back when it is destroyed; a's large storage is freed
  EXPECT_EQ(byte_buffer::pooled_blocks(), before + 1);
  byte_buffer other(64);  // other sizes are plain allocations
  other.prepare(1);
  other.release_if_empty();
  EXPECT_EQ(byte_buffer::pooled_blocks(), before + 1);
}

TEST(gather_list, send_now_writes_everything_a_socket_takes_and_copy_tail_keeps_the_rest) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  const std::string input = "0123456789";
  const auto* p = reinterpret_cast<const std::uint8_t*>(input.data());
  gather_list g;
  g.add_input(p, 4);
  const std::uint8_t own[] = {'x', 'y'};
  g.add_owned(own);
  g.add_input(p + 6, 4);
  int err = -1;
  EXPECT_EQ(g.send_now(fds[0], err), g.bytes());
  EXPECT_EQ(err, 0);
  char got[32] = {};
  EXPECT_EQ(::recv(fds[1], got, sizeof got, 0), 10);
  EXPECT_EQ(std::string(got, 10), "0123xy6789");
  std::vector<std::uint8_t> tail;
  g.copy_tail(3, tail);
  EXPECT_EQ(std::string(tail.begin(), tail.end()), "3xy6789");

  // A full socket buffer: part is taken, no error; the peer closed: an error.
  int small = 4096;
  ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  std::vector<std::uint8_t> big(4 << 20, 'b');
  gather_list large;
  large.add_input(big.data(), big.size());
  const std::size_t sent = large.send_now(fds[0], err);
  EXPECT_EQ(err, 0);
  EXPECT_LT(sent, big.size());
  ::close(fds[1]);
  while (err == 0) {
    gather_list more;
    more.add_input(big.data(), 1024);
    more.send_now(fds[0], err);
  }
  EXPECT_EQ(err, EPIPE);
  ::close(fds[0]);
}

}  // namespace
}  // namespace pgsluice::proxy
