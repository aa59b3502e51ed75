// libpq helpers: RAII connections and queries, logins that split the server's error into severity, SQLSTATE and message, and quoting.
#include "bench/pq.hpp"
#include "bench/report.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>

namespace pgsluice::bench {

pq_connection::~pq_connection() {
    if (conn_)
        PQfinish(conn_);
}

pq_connection& pq_connection::operator=(pq_connection&& other) noexcept {
    if (this != &other) {
        if (conn_)
            PQfinish(conn_);
        conn_ = other.conn_;
        other.conn_ = nullptr;
    }
    return *this;
}

namespace {

struct result_deleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using unique_result = std::unique_ptr<PGresult, result_deleter>;

sql_rows take_rows(PGconn* conn, unique_result res, const std::string& sql) {
    if (!res)
        throw sql_error("query failed: " + std::string(PQerrorMessage(conn)), "");
    const auto status = PQresultStatus(res.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
        const char* msg = PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY);
        throw sql_error("query failed: " + std::string(msg ? msg : PQresultErrorMessage(res.get())) +
                            " [SQLSTATE " + (state ? state : "?") + "] in: " + sql.substr(0, 200),
                        state ? state : "");
    }
    sql_rows rows;
    const int n = PQntuples(res.get());
    const int cols = PQnfields(res.get());
    rows.reserve(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) {
        sql_row row;
        row.reserve(static_cast<std::size_t>(cols));
        for (int c = 0; c < cols; ++c) {
            if (PQgetisnull(res.get(), r, c))
                row.emplace_back(std::nullopt);
            else
                row.emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                             static_cast<std::size_t>(PQgetlength(res.get(), r, c))));
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

// Splits libpq's verbose error text, e.g.
//   connection to server at "127.0.0.1", port 5432 failed: FATAL:  28P01: password authentication failed for user "x"
//   LOCATION:  auth_failed, auth.c:326
// into severity, SQLSTATE and primary message.
void parse_error_text(connect_result& r) {
    for (const char* severity : {"FATAL:  ", "ERROR:  ", "PANIC:  "}) {
        const auto at = r.raw_error.find(severity);
        if (at == std::string::npos)
            continue;
        r.severity = std::string(severity, std::strlen(severity) - 3);
        std::string rest = r.raw_error.substr(at + std::strlen(severity));
        if (rest.size() > 7 && rest[5] == ':' && rest[6] == ' ') {
            r.sqlstate = rest.substr(0, 5);
            rest = rest.substr(7);
        }
        r.message = rest.substr(0, rest.find('\n'));
        return;
    }
    r.message = r.raw_error.substr(0, r.raw_error.find('\n'));
}

} // namespace

sql_rows pq_connection::query(const std::string& sql) {
    return take_rows(conn_, unique_result(PQexec(conn_, sql.c_str())), sql);
}

sql_rows pq_connection::query(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params)
        values.push_back(p ? p->c_str() : nullptr);
    return take_rows(conn_,
                     unique_result(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                                values.data(), nullptr, nullptr, 0)),
                     sql);
}

std::optional<std::string> pq_connection::scalar(const std::string& sql) {
    auto rows = query(sql);
    if (rows.empty() || rows.front().empty())
        throw stack_error("query returned no row: " + sql);
    return rows.front().front();
}

connect_result try_connect(const std::string& conninfo, std::chrono::milliseconds timeout) {
    connect_result r;
    PGconn* raw = PQconnectStart(conninfo.c_str());
    if (raw == nullptr) {
        r.raw_error = r.message = "libpq: out of memory";
        return r;
    }
    pq_connection conn{raw};
    // Verbose errors carry the SQLSTATE, which libpq exposes nowhere else for a failed login.
    PQsetErrorVerbosity(raw, PQERRORS_VERBOSE);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    PostgresPollingStatusType st = PQstatus(raw) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            r.raw_error = r.message = "timeout after " + std::to_string(timeout.count()) + " ms connecting";
            return r;
        }
        pollfd p{PQsocket(raw), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n < 0 && errno != EINTR) {
            r.raw_error = r.message = "poll failed while connecting";
            return r;
        }
        if (n > 0)
            st = PQconnectPoll(raw);
    }
    if (st == PGRES_POLLING_OK && PQstatus(raw) == CONNECTION_OK) {
        PQsetErrorVerbosity(raw, PQERRORS_DEFAULT);
        r.conn = std::move(conn);
        return r;
    }
    r.raw_error = PQerrorMessage(raw);
    parse_error_text(r);
    return r;
}

pq_connection connect(const std::string& conninfo, std::chrono::milliseconds timeout) {
    auto r = try_connect(conninfo, timeout);
    if (!r.ok())
        throw sql_error("cannot log in (" + redact_conninfo(conninfo) + "): " + r.raw_error,
                        r.sqlstate);
    return std::move(r.conn);
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string conninfo_quote(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\')
            out += '\\';
        out += c;
    }
    return out + "'";
}

std::string quote_doubling(const std::string& v, char q) {
    std::string out(1, q);
    for (char c : v) {
        if (c == q)
            out += q;
        out += c;
    }
    return out + q;
}

std::string sql_literal(const std::string& v) { return quote_doubling(v, '\''); }
std::string sql_identifier(const std::string& v) { return quote_doubling(v, '"'); }

} // namespace pgsluice::bench
