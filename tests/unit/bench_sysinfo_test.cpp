// Unit tests for the bench's machine facts and process-tree memory readings from /proc (no network).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/sysinfo.hpp"

namespace pgsluice::bench {
namespace {

TEST(bench_sysinfo, machine_facts_are_filled) {
  const machine_info m = collect_machine_info();
  EXPECT_GT(m.cores, 0u);
  EXPECT_GT(m.ram_bytes, 0u);
  EXPECT_FALSE(m.kernel.empty());
  EXPECT_EQ(m.versions.count("libpq"), 1u);
}

TEST(bench_sysinfo, a_process_tree_counts_its_children) {
  // A child that waits on a pipe until we close it: the tree is this process plus it.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[1]);
    char c;
    (void)!::read(fds[0], &c, 1);
    ::_exit(0);
  }
  ::close(fds[0]);
  const auto with_child = process_tree_memory(::getpid(), true);
  const auto child_only = process_tree_memory(child, false);
  ::close(fds[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(with_child.has_value());
  ASSERT_TRUE(child_only.has_value());
  EXPECT_GE(with_child->processes, 2u);
  EXPECT_EQ(child_only->processes, 1u);
  EXPECT_GT(with_child->rss_kb, child_only->rss_kb);
  EXPECT_GT(with_child->pss_kb, 0u);
  EXPECT_EQ(child_only->pss_kb, 0u);  // not asked for
}

TEST(bench_sysinfo, a_gone_process_has_no_memory) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_FALSE(process_tree_memory(child, true).has_value());
}

}  // namespace
}  // namespace pgsluice::bench
