// Parsing and validation of `pgsluice bench` arguments, separate from the command so it is unit-tested without servers.
//
// Each parser returns the value or an error message naming the option and what
// it accepts; the command prints it and exits with status 2 before touching any
// server.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "bench/load_generator.hpp"

namespace pgsluice::bench {

template <class T>
using parsed = std::variant<T, std::string>;   // value, or the error message

template <class T>
const std::string* parse_error(const parsed<T>& p) { return std::get_if<std::string>(&p); }

inline constexpr std::uint32_t max_clients = 10000;

// "10,100,1000": each a whole number from 1 to 10,000, no duplicates.
parsed<std::vector<std::uint32_t>> parse_client_counts(const std::string& text);

// "20s", "500ms", "2m", "1h", or a bare number of seconds (pgbench -T style).
parsed<millis> parse_bench_duration(const std::string& option, const std::string& text, bool allow_zero);

// "simple,extended,prepared"
parsed<std::vector<protocol_mode>> parse_protocols(const std::string& text);

// Comma-separated list with empty items and duplicates rejected.
parsed<std::vector<std::string>> parse_list(const std::string& option, const std::string& text);

// A --targets item: a stack target name, NAME=postgresql://..., or a bare postgresql:// URL.
struct target_spec {
  std::string name;
  std::string url;                   // empty for stack targets
};
parsed<std::vector<target_spec>> parse_targets(const std::string& text);

// --users: a whole number from 1 to 10,000.
parsed<std::uint32_t> parse_user_count(const std::string& text);

// --spawn-rate: users started per second, greater than 0 and at most 10,000 (fractions allowed).
parsed<double> parse_spawn_rate(const std::string& text);

// --wait: "MIN..MAX" (each a duration as --duration takes it: 1s, 500ms, 2), or one
// duration for a constant wait; "0" for none. MIN must not exceed MAX, MAX at most 1 h.
parsed<std::pair<millis, millis>> parse_wait(const std::string& text);

// --read-ratio: a share 0..1 (0.8) or a percentage above 1 up to 100 (80, 80%).
parsed<double> parse_read_ratio(const std::string& text);

// -D name=value for scripts (pgbench -D): an integer value.
parsed<std::pair<std::string, std::int64_t>> parse_define(const std::string& text);

}  // namespace pgsluice::bench
