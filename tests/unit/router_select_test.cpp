// Backend selection: table-driven snapshots of backend states and the backend chosen for each.
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "router/select.hpp"

namespace r = pgsluice::router;

namespace {

struct select_case {
  const char* name;
  std::vector<r::backend_view> backends;
  r::need need;
  r::route_status status;
  std::size_t backend;  // when chosen
};

const r::backend_view primary_up{r::role::primary, r::health::up, 1, 0};
const r::backend_view primary_down{r::role::primary, r::health::down, 1, 0};
const r::backend_view primary_fenced{r::role::primary, r::health::fenced, 1, 0};
const r::backend_view primary_draining{r::role::primary, r::health::draining, 1, 0};
const r::backend_view replica_up{r::role::replica, r::health::up, 1, 0};
const r::backend_view unknown_up{r::role::unknown, r::health::up, 1, 0};

const select_case cases[] = {
    {"one primary, write", {primary_up}, r::need::write, r::route_status::chosen, 0},
    {"one primary, read falls back to it", {primary_up}, r::need::read, r::route_status::chosen, 0},
    {"primary after a replica", {replica_up, primary_up}, r::need::write, r::route_status::chosen, 1},
    {"write never goes to a replica", {replica_up, primary_down}, r::need::write, r::route_status::no_primary, 0},
    {"primary down", {primary_down}, r::need::write, r::route_status::no_primary, 0},
    {"fenced primary serves nobody", {primary_fenced}, r::need::write, r::route_status::no_primary, 0},
    {"draining primary takes no new work", {primary_draining}, r::need::write, r::route_status::no_primary, 0},
    {"fenced former primary beside the new one", {primary_fenced, primary_up}, r::need::write,
     r::route_status::chosen, 1},
    {"two up primaries: writes wait", {primary_up, replica_up, primary_up}, r::need::write,
     r::route_status::ambiguous, 0},
    {"role not known yet is no primary", {unknown_up}, r::need::write, r::route_status::no_primary, 0},
    {"no backends", {}, r::need::write, r::route_status::no_primary, 0},
};

class select_test : public ::testing::TestWithParam<select_case> {};

TEST_P(select_test, chooses) {
  const auto& c = GetParam();
  const auto got = r::choose_backend(c.backends, r::route_request{c.need});
  EXPECT_EQ(r::to_string(got.status), r::to_string(c.status));
  if (c.status == r::route_status::chosen) {
    EXPECT_EQ(got.backend, c.backend);
  }
}

INSTANTIATE_TEST_SUITE_P(cases, select_test, ::testing::ValuesIn(cases), [](const auto& info) {
  std::string n;
  for (const char* p = info.param.name; *p != 0; ++p) n += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  return n;
});

TEST(router_names, every_value_has_a_name) {
  EXPECT_EQ(r::to_string(r::health::lagging), "lagging");
  EXPECT_EQ(r::to_string(r::role::replica), "replica");
  EXPECT_EQ(r::to_string(r::route_status::ambiguous), "ambiguous");
}

}  // namespace
