// The libpq driver scenario: the rows of tests/drivers/common.py through PQprepare/PQexecPrepared, binary parameters and pipeline mode.
#include "tests/integration/drivers_libpq.hpp"

#include <libpq-fe.h>

#include <arpa/inet.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pgsluice::test::drivers {
namespace {

// Type OIDs of the parameters (pg_type.dat), so the server does not have to infer them.
constexpr Oid int8_oid = 20, int4_oid = 23, text_oid = 25, numeric_oid = 1700, bool_oid = 16, timestamptz_oid = 1184,
              bytea_oid = 17, int4_array_oid = 1007;
constexpr std::int64_t error_id_offset = 999'999;

// Thrown inside a client; the message becomes the scenario's verdict.
struct scenario_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct result_deleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;
struct conn_deleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
using conn_ptr = std::unique_ptr<PGconn, conn_deleter>;

std::string sqlstate_of(const PGresult* r) {
    const char* s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    return s ? s : "";
}

std::string describe(const PGresult* r, PGconn* conn) {
    if (r == nullptr)
        return std::string("no result: ") + PQerrorMessage(conn);
    return std::string(PQresStatus(PQresultStatus(r))) + " " + sqlstate_of(r) + " " + PQresultErrorMessage(r);
}

conn_ptr connect(const std::string& conninfo) {
    conn_ptr conn{PQconnectdb(conninfo.c_str())};
    if (PQstatus(conn.get()) != CONNECTION_OK)
        throw scenario_error("connect: " + std::string(PQerrorMessage(conn.get())));
    PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr); // DROP ... IF EXISTS chatter
    return conn;
}

result_ptr exec(PGconn* conn, const std::string& sql, ExecStatusType want, const std::string& what) {
    result_ptr r{PQexec(conn, sql.c_str())};
    if (PQresultStatus(r.get()) != want)
        throw scenario_error(what + ": " + describe(r.get(), conn));
    return r;
}

std::int64_t row_id(int client, std::int64_t k) { return (client + 1) * 10'000'000'000LL + k; }

// One row as libpq sends it: text for everything but int4 and bytea, which go binary.
struct row_values {
    std::string id, label, amount, flag, at, tags;
    std::uint32_t client_be = 0;              // int4, network byte order
    std::string payload;                      // raw bytes
    std::optional<std::string> note;
    // What SELECT_SQL reads back in text: timestamp in UTC without the zone, bytea in hex.
    std::string at_utc, payload_hex;
};

row_values row(int client, int k) {
    using namespace std::chrono;
    row_values v;
    v.id = std::to_string(row_id(client, k));
    v.client_be = htonl(static_cast<std::uint32_t>(client));
    v.label = "client " + std::to_string(client) + " row " + std::to_string(k) +
              ": 'quoted' \"double\" back\\slash \xc3\xa9 \xe2\x9c\x93";
    char frac[8];
    std::snprintf(frac, sizeof frac, "%04d", (k * 37) % 10000);
    v.amount = std::string(k % 4 == 3 ? "-" : "") + std::to_string(client * 1000 + k) + "." + frac;
    v.flag = k % 2 == 0 ? "t" : "f";
    const auto tp = sys_days{year{2024} / February / 29} + hours{23} + minutes{59} + seconds{58} + microseconds{123456} +
                    days{client} + seconds{k} + microseconds{k};
    const auto day = floor<days>(tp);
    const year_month_day ymd{day};
    const hh_mm_ss hms{floor<microseconds>(tp - day)};
    char at[64];
    std::snprintf(at, sizeof at, "%04d-%02u-%02u %02lld:%02lld:%02lld.%06lld", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<long long>(hms.hours().count()), static_cast<long long>(hms.minutes().count()),
                  static_cast<long long>(hms.seconds().count()), static_cast<long long>(hms.subseconds().count()));
    v.at_utc = at;
    v.at = v.at_utc + "+00";
    const unsigned char bytes[] = {0, 255, static_cast<unsigned char>(client), static_cast<unsigned char>(k % 256),
                                   0x27, 0x5c, 0};
    v.payload.assign(reinterpret_cast<const char*>(bytes), sizeof bytes);
    v.payload_hex = "\\x";
    for (unsigned char b : bytes) {
        char hex[3];
        std::snprintf(hex, sizeof hex, "%02x", b);
        v.payload_hex += hex;
    }
    v.tags = "{" + std::to_string(client) + "," + std::to_string(k) + ",-1}";
    if (k % 3 != 0)
        v.note = "note " + std::to_string(k);
    return v;
}

// The nine parameters of the insert statement, pointing into `v`.
struct bound_row {
    const char* values[9];
    int lengths[9];
    int formats[9];
    explicit bound_row(const row_values& v) {
        const std::string* text[] = {&v.id, nullptr, &v.label, &v.amount, &v.flag, &v.at, nullptr, &v.tags, nullptr};
        for (int i = 0; i < 9; ++i) {
            values[i] = text[i] ? text[i]->c_str() : nullptr;
            lengths[i] = 0;
            formats[i] = 0;
        }
        values[1] = reinterpret_cast<const char*>(&v.client_be);
        lengths[1] = 4;
        formats[1] = 1;
        values[6] = v.payload.data();
        lengths[6] = static_cast<int>(v.payload.size());
        formats[6] = 1;
        values[8] = v.note ? v.note->c_str() : nullptr; // SQL NULL
    }
};

class statements {
public:
    explicit statements(const std::string& table)
        : insert_("INSERT INTO " + table +
                  " (id, client, label, amount, flag, at, payload, tags, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
          select_("SELECT id, client, label, amount, flag, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "
                  "payload, tags, note FROM " + table + " WHERE id = $1"),
          count_("SELECT count(*) FROM " + table + " WHERE client = $1") {}

    // Named statements, prepared once per connection and reused by every transaction.
    void prepare(PGconn* conn) const {
        const Oid insert_types[] = {int8_oid, int4_oid, text_oid, numeric_oid, bool_oid,
                                    timestamptz_oid, bytea_oid, int4_array_oid, text_oid};
        const Oid select_types[] = {int8_oid};
        const Oid divide_types[] = {int4_oid, int4_oid};
        prepare_one(conn, "drv_insert", insert_, 9, insert_types);
        prepare_one(conn, "drv_select", select_, 1, select_types);
        prepare_one(conn, "drv_divide", "SELECT $1 / $2", 2, divide_types);
    }
    const std::string& count_sql() const { return count_; }

private:
    static void prepare_one(PGconn* conn, const char* name, const std::string& sql, int n, const Oid* types) {
        result_ptr r{PQprepare(conn, name, sql.c_str(), n, types)};
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
            throw scenario_error(std::string("PQprepare ") + name + ": " + describe(r.get(), conn));
    }

    std::string insert_, select_, count_;
};

result_ptr exec_prepared(PGconn* conn, const char* name, std::vector<std::string> params) {
    std::vector<const char*> values;
    for (const auto& p : params)
        values.push_back(p.c_str());
    return result_ptr{PQexecPrepared(conn, name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0)};
}

void check_row(int client, int k, const PGresult* r) {
    const std::string where = "client " + std::to_string(client) + " transaction " + std::to_string(k);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        throw scenario_error(where + ": read-back failed: " + describe(r, nullptr));
    if (PQntuples(r) != 1)
        throw scenario_error(where + ": " + std::to_string(PQntuples(r)) + " rows read back, expected 1");
    const auto want = row(client, k);
    const std::optional<std::string> expected[] = {want.id, std::to_string(client), want.label, want.amount, want.flag,
                                                   want.at_utc, want.payload_hex, want.tags, want.note};
    for (int col = 0; col < 9; ++col) {
        const std::optional<std::string> got =
            PQgetisnull(r, 0, col) ? std::nullopt : std::optional<std::string>(PQgetvalue(r, 0, col));
        if (got != expected[col])
            throw scenario_error(where + ": column " + PQfname(r, col) + " read back " + got.value_or("NULL") +
                                 ", wrote " + expected[col].value_or("NULL"));
    }
}

void expect_sqlstate(const std::string& what, const PGresult* r, const std::string& want) {
    if (PQresultStatus(r) != PGRES_FATAL_ERROR || sqlstate_of(r) != want)
        throw scenario_error(what + ": expected SQLSTATE " + want + ", got " + describe(r, nullptr));
}

result_ptr insert(PGconn* conn, const row_values& v) {
    const bound_row b{v};
    return result_ptr{PQexecPrepared(conn, "drv_insert", 9, b.values, b.lengths, b.formats, 0)};
}

// --- pipeline mode ---------------------------------------------------------------------

void send_insert(PGconn* conn, const row_values& v) {
    const bound_row b{v};
    if (!PQsendQueryPrepared(conn, "drv_insert", 9, b.values, b.lengths, b.formats, 0))
        throw scenario_error(std::string("PQsendQueryPrepared drv_insert: ") + PQerrorMessage(conn));
}

void send_prepared(PGconn* conn, const char* name, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const auto& p : params)
        values.push_back(p.c_str());
    if (!PQsendQueryPrepared(conn, name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0))
        throw scenario_error(std::string("PQsendQueryPrepared ") + name + ": " + PQerrorMessage(conn));
}

void sync(PGconn* conn) {
    if (!PQpipelineSync(conn))
        throw scenario_error(std::string("PQpipelineSync: ") + PQerrorMessage(conn));
}

// The next result of the pipeline, which must have status `want`; for a query (not a
// sync point) the NULL that ends its results is consumed too.
result_ptr next(PGconn* conn, ExecStatusType want, const std::string& what) {
    result_ptr r{PQgetResult(conn)};
    if (PQresultStatus(r.get()) != want || r == nullptr)
        throw scenario_error(what + ": expected " + PQresStatus(want) + ", got " + describe(r.get(), conn));
    if (want != PGRES_PIPELINE_SYNC) {
        result_ptr end{PQgetResult(conn)};
        if (end != nullptr)
            throw scenario_error(what + ": a second result " + describe(end.get(), conn));
    }
    return r;
}

void pipelined_transactions(PGconn* conn, const statements& st, int c, int from, int to) {
    if (PQenterPipelineMode(conn) != 1)
        throw scenario_error(std::string("PQenterPipelineMode: ") + PQerrorMessage(conn));
    // A named statement prepared inside the pipeline itself, used before the first Sync.
    const Oid count_types[] = {int4_oid};
    if (!PQsendPrepare(conn, "drv_count", st.count_sql().c_str(), 1, count_types))
        throw scenario_error(std::string("PQsendPrepare: ") + PQerrorMessage(conn));
    send_prepared(conn, "drv_count", {std::to_string(c)});
    sync(conn);
    // Each insert + read-back + Sync is one implicit transaction; all are sent before any
    // result is read, so a transaction pooler sees the next one queued behind each Sync.
    for (int k = from; k < to; ++k) {
        send_insert(conn, row(c, k));
        send_prepared(conn, "drv_select", {std::to_string(row_id(c, k))});
        sync(conn);
    }
    const std::string who = "client " + std::to_string(c) + " pipeline";
    next(conn, PGRES_COMMAND_OK, who + ": prepare drv_count");
    const auto before = next(conn, PGRES_TUPLES_OK, who + ": drv_count");
    if (std::string(PQgetvalue(before.get(), 0, 0)) != std::to_string(from))
        throw scenario_error(who + ": " + PQgetvalue(before.get(), 0, 0) + " rows before, expected " + std::to_string(from));
    next(conn, PGRES_PIPELINE_SYNC, who + ": first sync");
    for (int k = from; k < to; ++k) {
        next(conn, PGRES_COMMAND_OK, who + ": insert " + std::to_string(k));
        check_row(c, k, next(conn, PGRES_TUPLES_OK, who + ": select " + std::to_string(k)).get());
        next(conn, PGRES_PIPELINE_SYNC, who + ": sync " + std::to_string(k));
    }

    // An error mid-pipeline: the insert before it is rolled back with the implicit
    // transaction, the insert after it is skipped (PGRES_PIPELINE_ABORTED) until Sync, and
    // the next segment runs normally.
    // https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-PIPELINING
    const auto error_id = row_id(c, error_id_offset);
    auto error_row = row(c, 0);
    error_row.id = std::to_string(error_id);
    send_insert(conn, error_row);
    send_prepared(conn, "drv_divide", {"1", "0"});
    send_insert(conn, row(c, to));
    sync(conn);
    send_prepared(conn, "drv_select", {std::to_string(error_id)});
    send_prepared(conn, "drv_count", {std::to_string(c)});
    send_prepared(conn, "drv_divide", {"10", "2"});
    sync(conn);
    next(conn, PGRES_COMMAND_OK, who + ": insert before the error");
    {
        result_ptr r{PQgetResult(conn)};
        expect_sqlstate(who + ": 1/0", r.get(), "22012");
        result_ptr end{PQgetResult(conn)};
        if (end != nullptr)
            throw scenario_error(who + ": a second result after 1/0: " + describe(end.get(), conn));
    }
    next(conn, PGRES_PIPELINE_ABORTED, who + ": insert after the error");
    next(conn, PGRES_PIPELINE_SYNC, who + ": sync after the error");
    const auto gone = next(conn, PGRES_TUPLES_OK, who + ": select of the rolled-back row");
    if (PQntuples(gone.get()) != 0)
        throw scenario_error(who + ": the row inserted before the error survived its implicit transaction");
    const auto count = next(conn, PGRES_TUPLES_OK, who + ": count after the error");
    if (std::string(PQgetvalue(count.get(), 0, 0)) != std::to_string(to))
        throw scenario_error(who + ": " + PQgetvalue(count.get(), 0, 0) + " rows, expected " + std::to_string(to));
    const auto q = next(conn, PGRES_TUPLES_OK, who + ": 10/2 after the error");
    if (std::string(PQgetvalue(q.get(), 0, 0)) != "5")
        throw scenario_error(who + ": 10/2 gave " + PQgetvalue(q.get(), 0, 0));
    next(conn, PGRES_PIPELINE_SYNC, who + ": last sync");
    if (PQexitPipelineMode(conn) != 1)
        throw scenario_error(who + ": PQexitPipelineMode: " + PQerrorMessage(conn));
}

void run_client(const libpq_scenario& s, const statements& st, int c) {
    auto owner = connect(s.conninfo);
    PGconn* conn = owner.get();
    st.prepare(conn);
    for (int k = 0; k < s.transactions; ++k) {
        exec(conn, "BEGIN", PGRES_COMMAND_OK, "BEGIN");
        result_ptr ins = insert(conn, row(c, k));
        if (PQresultStatus(ins.get()) != PGRES_COMMAND_OK)
            throw scenario_error("client " + std::to_string(c) + " insert " + std::to_string(k) + ": " +
                                 describe(ins.get(), conn));
        check_row(c, k, exec_prepared(conn, "drv_select", {std::to_string(row_id(c, k))}).get());
        exec(conn, "COMMIT", PGRES_COMMAND_OK, "COMMIT");
    }

    const std::string who = "client " + std::to_string(c);
    const auto error_id = row_id(c, error_id_offset);
    auto error_row = row(c, 0);
    error_row.id = std::to_string(error_id);
    exec(conn, "BEGIN", PGRES_COMMAND_OK, "BEGIN");
    if (auto r = insert(conn, error_row); PQresultStatus(r.get()) != PGRES_COMMAND_OK)
        throw scenario_error(who + ": insert before 1/0: " + describe(r.get(), conn));
    expect_sqlstate(who + ": 1/0", exec_prepared(conn, "drv_divide", {"1", "0"}).get(), "22012");
    if (PQtransactionStatus(conn) != PQTRANS_INERROR)
        throw scenario_error(who + ": transaction status after 1/0 is not 'in error'");
    exec(conn, "ROLLBACK", PGRES_COMMAND_OK, "ROLLBACK");
    if (PQntuples(exec_prepared(conn, "drv_select", {std::to_string(error_id)}).get()) != 0)
        throw scenario_error(who + ": the row of the rolled-back transaction is visible");
    if (auto r = exec_prepared(conn, "drv_divide", {"10", "2"});
        PQresultStatus(r.get()) != PGRES_TUPLES_OK || std::string(PQgetvalue(r.get(), 0, 0)) != "5")
        throw scenario_error(who + ": 10/2 after the error: " + describe(r.get(), conn));

    exec(conn, "BEGIN", PGRES_COMMAND_OK, "BEGIN");
    expect_sqlstate(who + ": duplicate id", insert(conn, row(c, 0)).get(), "23505");
    exec(conn, "ROLLBACK", PGRES_COMMAND_OK, "ROLLBACK");
    check_row(c, 0, exec_prepared(conn, "drv_select", {std::to_string(row_id(c, 0))}).get());

    pipelined_transactions(conn, st, c, s.transactions, 2 * s.transactions);
}

} // namespace

std::string run_libpq_scenario(const libpq_scenario& s) {
    try {
        {
            auto conn = connect(s.conninfo);
            exec(conn.get(),
                 "DROP TABLE IF EXISTS " + s.table + "; CREATE TABLE " + s.table +
                     " (id int8 PRIMARY KEY, client int4 NOT NULL, label text NOT NULL, amount numeric(18,4) NOT NULL, "
                     "flag bool NOT NULL, at timestamptz NOT NULL, payload bytea NOT NULL, tags int4[] NOT NULL, note text)",
                 PGRES_COMMAND_OK, "create table");
        }
        const statements st{s.table};
        std::vector<std::string> failures(static_cast<std::size_t>(s.clients));
        {
            std::vector<std::jthread> threads;
            for (int c = 0; c < s.clients; ++c)
                threads.emplace_back([&, c] {
                    try {
                        run_client(s, st, c);
                    } catch (const std::exception& e) {
                        failures[static_cast<std::size_t>(c)] = e.what();
                    }
                });
        }
        for (const auto& f : failures)
            if (!f.empty())
                return "FAIL libpq: " + f;

        auto conn = connect(s.conninfo);
        const auto totals = exec(conn.get(),
                                 "SELECT count(*), count(DISTINCT client), count(*) - count(note), count(*) FILTER "
                                 "(WHERE id % 10000000000 = " + std::to_string(error_id_offset) + ") FROM " + s.table,
                                 PGRES_TUPLES_OK, "totals");
        int nulls = 0;
        for (int k = 0; k < 2 * s.transactions; ++k)
            nulls += k % 3 == 0 ? s.clients : 0;
        const std::string got = std::string(PQgetvalue(totals.get(), 0, 0)) + " " + PQgetvalue(totals.get(), 0, 1) + " " +
                                PQgetvalue(totals.get(), 0, 2) + " " + PQgetvalue(totals.get(), 0, 3);
        const std::string want = std::to_string(2 * s.clients * s.transactions) + " " + std::to_string(s.clients) + " " +
                                 std::to_string(nulls) + " 0";
        if (got != want)
            return "FAIL libpq: final table (count, clients, null notes, rolled-back rows) is " + got + ", expected " + want;
    } catch (const std::exception& e) {
        return std::string("FAIL libpq: ") + e.what();
    }
    return "";
}

} // namespace pgsluice::test::drivers
