// Runs `pgsluice bench ARGS` in-process for the unit tests, capturing what it prints.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "bench/cli.hpp"

namespace pgsluice::bench::testing_support {

// Returns (exit status, stderr); stdout is swallowed.
inline std::pair<int, std::string> bench(std::vector<std::string> args) {
  args.insert(args.begin(), "bench");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStderr();
  testing::internal::CaptureStdout();
  const int status = run_bench_command(static_cast<int>(argv.size()), argv.data());
  testing::internal::GetCapturedStdout();
  return {status, testing::internal::GetCapturedStderr()};
}

}  // namespace pgsluice::bench::testing_support
