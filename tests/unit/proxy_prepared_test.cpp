// Unit tests for prepared-statement naming and registries (proxy/prepared.hpp).
#include <gtest/gtest.h>

#include <vector>

#include "proxy/prepared.hpp"
#include "protocol/fields.hpp"

namespace pgsluice::proxy {
namespace {

const std::vector<std::uint8_t> no_types = {0, 0};
const std::vector<std::uint8_t> one_int4 = {0, 1, 0, 0, 0, 23};

TEST(statement_names, same_text_and_types_share_a_server_name) {
  auto a = make_statement("SELECT $1", one_int4);
  auto b = make_statement("SELECT $1", one_int4);
  EXPECT_EQ(a->server_name, b->server_name);
  EXPECT_EQ(a->digest, b->digest);
  EXPECT_EQ(a->server_name.size(), 9u + 32u);
  EXPECT_EQ(a->server_name.rfind("pgsluice_", 0), 0u);
}

TEST(statement_names, types_and_text_change_the_name) {
  auto a = make_statement("SELECT $1", one_int4);
  auto b = make_statement("SELECT $1", no_types);
  auto c = make_statement("SELECT $1 ", one_int4);
  EXPECT_NE(a->server_name, b->server_name);
  EXPECT_NE(a->server_name, c->server_name);
}

TEST(statement_names, injected_parse_message_carries_server_name_text_and_types) {
  auto s = make_statement("SELECT $1", one_int4);
  ASSERT_GE(s->parse_message.size(), 5u);
  EXPECT_EQ(s->parse_message[0], 'P');
  EXPECT_EQ((std::size_t{s->parse_message[1]} << 24 | std::size_t{s->parse_message[2]} << 16 |
             std::size_t{s->parse_message[3]} << 8 | s->parse_message[4]),
            s->parse_message.size() - 1);
  auto f = protocol::read_parse(std::span(s->parse_message).subspan(5));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->name, s->server_name);
  EXPECT_EQ(f->query, "SELECT $1");
  EXPECT_EQ(std::vector<std::uint8_t>(f->param_types.begin(), f->param_types.end()), one_int4);
}

TEST(client_statements, duplicate_names_are_refused_and_remove_returns_the_statement) {
  client_statements c;
  auto s = make_statement("SELECT 1", no_types);
  EXPECT_TRUE(c.add("s1", s));
  EXPECT_FALSE(c.add("s1", make_statement("SELECT 2", no_types)));
  ASSERT_NE(c.find("s1"), nullptr);
  EXPECT_EQ(*c.find("s1"), s);
  EXPECT_EQ(c.remove("s1"), s);
  EXPECT_EQ(c.find("s1"), nullptr);
  EXPECT_EQ(c.remove("s1"), nullptr);
}

TEST(server_statements, least_recently_used_is_evicted) {
  server_statements srv(2);
  auto a = make_statement("SELECT 'a'", no_types);
  auto b = make_statement("SELECT 'b'", no_types);
  auto c = make_statement("SELECT 'c'", no_types);
  std::vector<statement_ptr> evicted;
  srv.insert(a, evicted);
  srv.insert(b, evicted);
  EXPECT_TRUE(evicted.empty());
  EXPECT_TRUE(srv.touch(a->digest));  // b is now the least recently used
  srv.insert(c, evicted);
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0], b);
  EXPECT_TRUE(srv.contains(a->digest));
  EXPECT_FALSE(srv.contains(b->digest));
  EXPECT_TRUE(srv.contains(c->digest));
  EXPECT_EQ(srv.size(), 2u);
}

TEST(server_statements, reinserting_does_not_duplicate) {
  server_statements srv(10);
  auto a = make_statement("SELECT 'a'", no_types);
  std::vector<statement_ptr> evicted;
  srv.insert(a, evicted);
  srv.insert(make_statement("SELECT 'a'", no_types), evicted);
  EXPECT_EQ(srv.size(), 1u);
  EXPECT_TRUE(srv.erase(a->digest));
  EXPECT_FALSE(srv.erase(a->digest));
  EXPECT_EQ(srv.size(), 0u);
}

}  // namespace
}  // namespace pgsluice::proxy
