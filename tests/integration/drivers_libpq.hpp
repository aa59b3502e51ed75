// The libpq driver scenario of the client-compatibility test: named prepared statements, binary parameters and pipeline mode.
#pragma once

#include <string>

namespace pgsluice::test::drivers {

struct libpq_scenario {
    std::string conninfo;     // where to connect (the proxy, PgBouncer or PostgreSQL itself)
    std::string table;        // recreated by the scenario
    int clients = 20;         // concurrent connections, each on its own thread
    int transactions = 20;    // per client, one-at-a-time and again pipelined
};

// Runs the same scenario as tests/drivers/common.py with libpq, then the pipeline part:
// every client sends `transactions` implicit transactions (insert + read-back + Sync) in one
// pipeline, and one pipeline where an error mid-way makes the server skip the rest until
// Sync (PGRES_PIPELINE_ABORTED) and the next Sync starts clean.
// https://www.postgresql.org/docs/15/libpq-pipeline-mode.html
// Returns an empty string on success, else what went wrong (first failure).
std::string run_libpq_scenario(const libpq_scenario& scenario);

} // namespace pgsluice::test::drivers
