// Session parameters a client expects and a server has, and the SET/RESET that reconciles them.
//
// A pooled server connection carries the session settings of whoever used it last. Before a
// client's first message goes to a server, the proxy compares (1) the ParameterStatus values
// the client has been told (client_encoding, DateStyle, TimeZone, IntervalStyle,
// standard_conforming_strings, application_name) with the values the server last reported, and
// (2) the other startup settings the client asked for (e.g. `options=-c search_path=app`) with
// the ones the proxy applied on that server, and sends one Query with the difference.
// https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-ASYNC (ParameterStatus),
// https://www.postgresql.org/docs/15/protocol-message-formats.html (StartupMessage).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgsluice::proxy {

// Ordered (name, value) pairs; names compare case-insensitively, as GUC names do.
class parameter_set {
 public:
  using value_type = std::pair<std::string, std::string>;

  const std::string* find(std::string_view name) const noexcept;
  // Inserts or replaces; returns true when the stored value changed.
  bool set(std::string_view name, std::string_view value);
  bool erase(std::string_view name);
  void clear() noexcept { items_.clear(); }
  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  auto begin() const noexcept { return items_.begin(); }
  auto end() const noexcept { return items_.end(); }
  bool operator==(const parameter_set&) const = default;

 private:
  std::vector<value_type> items_;
};

// A parameter_set shared between the sessions that hold the same values, copied on the first
// change: most clients are told exactly what the pool's first server reported, and 10,000 idle
// clients then keep one copy of it instead of 10,000.
class shared_parameter_set {
 public:
  void assign(std::shared_ptr<const parameter_set> values) noexcept { values_ = std::move(values); }
  const parameter_set& get() const noexcept { return values_ ? *values_ : empty_set(); }
  operator const parameter_set&() const noexcept { return get(); }  // NOLINT: read-only view
  const std::string* find(std::string_view name) const noexcept { return get().find(name); }
  // Inserts or replaces (copying the shared values first); true when the stored value changed.
  bool set(std::string_view name, std::string_view value);
  auto begin() const noexcept { return get().begin(); }
  auto end() const noexcept { return get().end(); }

 private:
  static const parameter_set& empty_set() noexcept;
  std::shared_ptr<const parameter_set> values_;
};

// A GUC name that may be spliced into SQL: letters, digits, '_' and '.', not starting with a digit.
bool is_valid_setting_name(std::string_view name) noexcept;

// E'...' literal (quotes and backslashes escaped), valid whatever standard_conforming_strings is.
std::string quote_literal(std::string_view value);

// Splits a StartupMessage `options` value into settings as PostgreSQL's pg_split_opts() and
// process_postgres_switches() do: words separated by spaces (a backslash escapes the next
// character), `-c name=value` and `--name=value` give settings. Returns nullopt when a word is
// not one of those forms (pgsluice does not forward other backend switches).
std::optional<parameter_set> parse_startup_options(std::string_view options);

// The startup parameters of a client, sorted into what the proxy must do with them.
struct client_startup {
  std::string user;
  std::string database;
  std::string application_name;  // empty when not sent
  parameter_set reported;        // tracked ParameterStatus parameters the client asked for (e.g. client_encoding)
  parameter_set settings;        // any other setting (startup GUCs and `options`), re-applied on each server
};

// Sorts startup parameters (name/value pairs as received). Fails with a PostgreSQL-style message
// (and SQLSTATE) for names that cannot be settings, replication connections and bad `options`.
struct startup_error {
  std::string sqlstate;
  std::string message;
};
std::optional<startup_error> sort_startup_parameters(const std::vector<std::pair<std::string_view, std::string_view>>& params,
                                                     client_startup& out);

// The parameters a (possibly multi-statement) text puts back to their reset value one by one:
// `RESET name`, `SET [SESSION] name {TO|=} DEFAULT`, `SET TIME ZONE {DEFAULT|LOCAL}` and
// `RESET TIME ZONE` (as "timezone"). Lower-cased; RESET ALL is not listed (session_effects::resets_settings says so),
// SET LOCAL neither (it ends with the transaction).
std::vector<std::string> reset_parameter_names(std::string_view sql);

// The SQL (possibly empty) that brings a server in line with a client:
//  - `client_view`: ParameterStatus values the client believes are current; only tracked
//    parameters are compared with `server_reported`.
//  - `client_settings` vs `server_applied`: settings the proxy SET on this server for earlier
//    clients; ones the client does not want are RESET.
std::string plan_settings_sync(const parameter_set& client_view, const parameter_set& client_settings,
                               const parameter_set& server_reported, const parameter_set& server_applied);

}  // namespace pgsluice::proxy
