// Recognises SQL that changes session state, so a transaction-mode client can be pinned to its server.
//
// In transaction pooling a server connection goes back to the pool between transactions, so any
// state that outlives a transaction (session SET, SQL-level PREPARE, LISTEN, temporary tables,
// session advisory locks, WITH HOLD cursors, LOAD) would leak to the next client or be lost for
// this one. pgsluice's answer is the simplest correct one: such a client keeps its server until
// it disconnects, and the server is reset (server_reset_query) before anyone else gets it.
//
// Parameters PostgreSQL reports with ParameterStatus (client_encoding, DateStyle, TimeZone,
// IntervalStyle, standard_conforming_strings, application_name) do not pin: the proxy sees their
// new value in the ParameterStatus message and re-applies it on whatever server the client gets
// next (https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-ASYNC).
//
// The classifier reads only keywords at the start of each statement of a (possibly multi-statement)
// query, skipping comments, string literals, quoted identifiers and dollar-quoted bodies; it errs
// on the side of pinning, which costs pool efficiency but never correctness.
#pragma once

#include <cstdint>
#include <string_view>

namespace pgsluice::proxy {

struct session_effects {
  // The statement leaves state on the server connection that must stay with this client.
  bool pins = false;
  // The statement removes every prepared statement of the connection (DEALLOCATE ALL, DISCARD ALL):
  // the proxy's record of which statements exist on that server must be cleared.
  bool drops_prepared = false;
  // The statement resets every session setting to its default (DISCARD ALL, RESET ALL).
  bool resets_settings = false;
  // Short reason for logs, e.g. "SET", "LISTEN", "temporary table"; empty when nothing applies.
  std::string_view reason;
};

// Effects of one Query or Parse text. Never throws; unterminated literals or comments are
// tolerated (the server will reject the text; the classification is then irrelevant).
session_effects classify_session_effects(std::string_view sql) noexcept;

// Whether a Query or Parse text may be queued behind other clients' statements on one server
// connection (pipeline_depth): one statement (SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES,
// TABLE, WITH, SHOW or EXPLAIN) that neither opens nor ends a transaction, leaves no session
// state (classify_session_effects) and is no COPY: run in autocommit it leaves the connection
// idle, with nothing of it for the next statement to inherit. Unterminated quotes and comments
// make it false.
bool pipelinable(std::string_view sql) noexcept;

// True for the parameters the proxy tracks through ParameterStatus and re-applies per server
// (case-insensitive): client_encoding, datestyle, timezone, intervalstyle,
// standard_conforming_strings, application_name.
bool is_tracked_parameter(std::string_view name) noexcept;

}  // namespace pgsluice::proxy
