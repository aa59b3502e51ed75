// libpq helpers for the local stacks and tests: RAII connections, queries, logins that report the server's SQLSTATE, and quoting.
#pragma once

#include "bench/process.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

struct pg_conn; // libpq's PGconn, kept out of this header

namespace pgsluice::bench {

// A statement or login refused by the server, with its SQLSTATE.
class sql_error : public stack_error {
public:
    sql_error(const std::string& what, std::string sqlstate) : stack_error(what), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }

private:
    std::string sqlstate_;
};

// One row of text values; nullopt is SQL NULL.
using sql_row = std::vector<std::optional<std::string>>;
using sql_rows = std::vector<sql_row>;

// A libpq connection (RAII). Throws stack_error from the helpers on failure.
class pq_connection {
public:
    pq_connection() = default;
    explicit pq_connection(::pg_conn* conn) : conn_(conn) {}
    ~pq_connection();
    pq_connection(pq_connection&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
    pq_connection& operator=(pq_connection&& other) noexcept;
    pq_connection(const pq_connection&) = delete;
    pq_connection& operator=(const pq_connection&) = delete;

    ::pg_conn* get() const { return conn_; }
    explicit operator bool() const { return conn_ != nullptr; }

    // Runs `sql` (simple protocol, may hold several statements); rows of the last result.
    // Throws sql_error carrying the SQLSTATE and message on error.
    sql_rows query(const std::string& sql);
    // Extended protocol with text parameters.
    sql_rows query(const std::string& sql, const std::vector<std::optional<std::string>>& params);
    // First column of the first row (throws when there is no row).
    std::optional<std::string> scalar(const std::string& sql);

private:
    ::pg_conn* conn_ = nullptr;
};

// Outcome of a login attempt, with the server's error split into its fields.
struct connect_result {
    pq_connection conn;    // set on success
    std::string severity;  // e.g. "FATAL"
    std::string sqlstate;  // e.g. "28P01"
    std::string message;   // primary message, e.g. password authentication failed for user "x"
    std::string raw_error; // libpq's full error text
    bool ok() const { return static_cast<bool>(conn); }
};

// Tries to log in with `conninfo` within `timeout`; never throws for a refused login.
connect_result try_connect(const std::string& conninfo, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Logs in or throws sql_error with the server's SQLSTATE and message.
pq_connection connect(const std::string& conninfo, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// conninfo value quoting ('...' with \ and ' escaped).
std::string conninfo_quote(const std::string& value);

// Percent-encodes a user name, password or database for a postgresql:// URL (RFC 3986 unreserved kept).
std::string url_encode(const std::string& s);

// `q` + v + `q` with every `q` inside doubled: SQL literals ('...') and identifiers
// ("..."), configuration values, PgBouncer's userlist entries.
std::string quote_doubling(const std::string& v, char q);
std::string sql_literal(const std::string& v);    // '...'
std::string sql_identifier(const std::string& v); // "..."

} // namespace pgsluice::bench
