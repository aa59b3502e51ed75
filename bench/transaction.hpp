// The contract between workloads and the load generator: a statement catalog and the commands of one transaction.
//
// A workload is a const object shared by every worker thread; all per-client
// state lives in the rng it is handed, so one workload serves 10,000 clients.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/random.hpp"

namespace pgsluice::bench {

// One SQL statement with $1..$n placeholders. In simple mode the parameters are
// substituted as literals (as pgbench -M simple does); in extended mode they are
// bound (PQsendQueryParams); in prepared mode the statement is prepared once per
// connection (PQsendPrepare) and executed by name.
struct statement_def {
  std::string sql;
  std::uint32_t param_count = 0;
  // A read of a row the same transaction has just written (read-after-write): when it
  // returns no row, the load generator counts a stale read. The transaction still
  // completes; a stale read is a wrong answer, not an error.
  bool reads_own_write = false;
};

// What one request is, for the per-request rows of the reports (Locust's Type and Name):
// type "read" or "write" (or "sql" when the workload does not say), name e.g. "latest-purchases".
struct request_kind {
  std::string type;
  std::string name;
};

struct command {
  std::uint32_t statement = 0;     // index into the workload's statements()
  std::vector<std::string> params; // text values, one per placeholder
};

// The commands of one transaction (one "request" in the reports). Slots are
// reused between transactions so steady-state generation does not allocate.
class transaction {
 public:
  void clear() noexcept {
    size_ = 0;
    kind_ = 0;
  }
  // Index into the workload's request_kinds() (0 when it has none).
  void set_kind(std::uint32_t kind) noexcept { kind_ = kind; }
  std::uint32_t kind() const noexcept { return kind_; }
  command& add(std::uint32_t statement, std::size_t param_count) {
    if (size_ == commands_.size()) commands_.emplace_back();
    command& c = commands_[size_++];
    c.statement = statement;
    c.params.resize(param_count);
    return c;
  }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const command& operator[](std::size_t i) const noexcept { return commands_[i]; }

 private:
  std::vector<command> commands_;
  std::size_t size_ = 0;
  std::uint32_t kind_ = 0;
};

class transaction_source {
 public:
  virtual ~transaction_source() = default;
  virtual const std::vector<statement_def>& statements() const = 0;
  // Fills `out` with the next transaction. Must be safe to call from several
  // threads at once: all mutable state is in `r`.
  virtual void next(rng& r, transaction& out) const = 0;
  // The kinds of request next() produces (it sets transaction::set_kind to an index here).
  // Empty: one kind, named after the workload by whoever reports it.
  virtual const std::vector<request_kind>& request_kinds() const {
    static const std::vector<request_kind> none;
    return none;
  }
};

// Renders a statement for simple-query mode: each $n becomes the n-th value as a
// literal (numbers verbatim, everything else single-quoted with quotes doubled,
// which is exact under standard_conforming_strings = on, the default since 9.1).
void render_simple_query(const std::string& sql, const std::vector<std::string>& params, std::string& out);

// True if `value` is a plain decimal number (sign, digits, optional fraction/exponent).
bool looks_numeric(const std::string& value) noexcept;

}  // namespace pgsluice::bench
