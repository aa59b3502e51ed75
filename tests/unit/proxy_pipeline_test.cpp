// Unit tests for the reply tracker (proxy/pipeline.hpp): order of forwarded, swallowed and synthesized replies.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/pipeline.hpp"

namespace pgsluice::proxy {
namespace {

// Records what reaches the client, as a string of message type bytes, and what was rolled back.
struct recorder : response_tracker::hooks {
  std::string client;
  std::vector<expect> rolled_back;
  void emit(std::span<const std::uint8_t> m) override { client += static_cast<char>(m[0]); }
  void rollback(const expectation& e) override { rolled_back.push_back(e.kind); }
};

// Feeds server message types; forwarded ones are appended to the client stream.
void feed(response_tracker& t, recorder& r, const std::string& tags) {
  for (char c : tags) {
    if (t.on_server_message(c, r) == response_tracker::verdict::forward) r.client += c;
    t.emit_ready(r);
  }
}

TEST(response_tracker, simple_query_through_ready_for_query) {
  response_tracker t;
  recorder r;
  t.push(expect::query);
  EXPECT_FALSE(t.idle());
  feed(t, r, "TDDC");
  EXPECT_FALSE(t.idle());
  feed(t, r, "Z");
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(r.client, "TDDCZ");
}

TEST(response_tracker, extended_batch_with_injected_parse_is_swallowed) {
  response_tracker t;
  recorder r;
  t.push(expect::parse_injected);
  t.push(expect::bind);
  t.push(expect::execute);
  t.push(expect::sync);
  t.emit_ready(r);
  feed(t, r, "12DCZ");
  EXPECT_EQ(r.client, "2DCZ");
  EXPECT_TRUE(t.idle());
}

TEST(response_tracker, synthesized_parse_complete_keeps_its_place) {
  response_tracker t;
  recorder r;
  t.push(expect::parse);            // unnamed, forwarded
  t.push(expect::parse_synthetic);  // named, already on the server
  t.push(expect::bind);
  t.push(expect::sync);
  t.emit_ready(r);
  EXPECT_EQ(r.client, "");  // the first Parse is still outstanding
  feed(t, r, "1");
  EXPECT_EQ(r.client, "11");  // server's ParseComplete, then ours
  feed(t, r, "2Z");
  EXPECT_EQ(r.client, "112Z");
}

TEST(response_tracker, synthesized_reply_at_the_head_goes_out_at_once) {
  response_tracker t;
  recorder r;
  t.push(expect::close_synthetic);
  t.push(expect::parse_synthetic);
  EXPECT_TRUE(t.in_extended_batch());
  t.emit_ready(r);
  EXPECT_EQ(r.client, "31");
  EXPECT_TRUE(t.empty());
  EXPECT_FALSE(t.idle());  // no Sync yet: the server is still inside an extended batch
  t.push(expect::sync);
  feed(t, r, "Z");
  EXPECT_TRUE(t.idle());
}

TEST(response_tracker, error_skips_to_sync_and_rolls_back) {
  response_tracker t;
  recorder r;
  t.push(expect::parse);
  t.push(expect::bind);
  t.push(expect::parse_injected);
  t.push(expect::parse_synthetic);
  t.push(expect::close_injected);
  t.push(expect::execute);
  t.push(expect::sync);
  t.push(expect::query);
  t.emit_ready(r);
  feed(t, r, "1E");
  EXPECT_EQ(r.client, "1E");  // no synthesized ParseComplete after the error
  EXPECT_EQ(r.rolled_back, (std::vector<expect>{expect::bind, expect::parse_injected, expect::parse_synthetic,
                                                expect::close_injected, expect::execute}));
  feed(t, r, "Z");
  EXPECT_EQ(t.size(), 1u);  // the Query after the Sync is still to be answered
  feed(t, r, "CZ");
  EXPECT_EQ(r.client, "1EZCZ");
  EXPECT_TRUE(t.idle());
}

TEST(response_tracker, error_at_sync_is_forwarded_before_ready_for_query) {
  response_tracker t;
  recorder r;
  t.push(expect::bind);
  t.push(expect::execute);
  t.push(expect::sync);
  feed(t, r, "2CEZ");
  EXPECT_EQ(r.client, "2CEZ");
  EXPECT_TRUE(r.rolled_back.empty());
  EXPECT_TRUE(t.idle());
}

TEST(response_tracker, internal_query_is_swallowed_except_parameter_status) {
  response_tracker t;
  recorder r;
  t.push(expect::internal_query);
  t.push(expect::query);
  feed(t, r, "SCNZ");  // SET's ParameterStatus is forwarded by the caller's choice; here: forward verdict
  EXPECT_EQ(r.client, "S");
  feed(t, r, "TDCZ");
  EXPECT_EQ(r.client, "STDCZ");
}

TEST(response_tracker, synthesized_error_skips_the_rest_of_the_batch) {
  response_tracker t;
  recorder r;
  t.push(expect::bind);
  expectation err;
  err.kind = expect::error_synthetic;
  err.payload = {'E', 0, 0, 0, 4};
  t.push(std::move(err));
  t.push(expect::sync);
  t.emit_ready(r);
  feed(t, r, "2");
  EXPECT_EQ(r.client, "2E");
  feed(t, r, "Z");
  EXPECT_EQ(r.client, "2EZ");
}

TEST(response_tracker, describe_statement_and_portal) {
  response_tracker t;
  recorder r;
  t.push(expect::describe_statement);
  t.push(expect::describe_portal);
  t.push(expect::sync);
  feed(t, r, "tTnZ");
  EXPECT_EQ(r.client, "tTnZ");
  EXPECT_TRUE(t.idle());
}

TEST(response_tracker, copy_in_extended_and_portal_suspended) {
  response_tracker t;
  recorder r;
  t.push(expect::execute);
  t.push(expect::execute);
  t.push(expect::sync);
  feed(t, r, "GC");     // COPY FROM STDIN: CopyInResponse, CommandComplete
  feed(t, r, "DDs");    // Execute with a row limit: PortalSuspended
  EXPECT_EQ(t.size(), 1u);
  feed(t, r, "Z");
  EXPECT_TRUE(t.idle());
}

TEST(response_tracker, grows_past_its_initial_capacity) {
  response_tracker t;
  recorder r;
  for (int i = 0; i < 100; ++i) {
    t.push(expect::bind);
    t.push(expect::execute);
  }
  t.push(expect::sync);
  for (int i = 0; i < 100; ++i) feed(t, r, "2C");
  feed(t, r, "Z");
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(r.client.size(), 201u);
}

}  // namespace
}  // namespace pgsluice::proxy
