// Read/write classification of a Query or Parse text, for routing reads to replicas.
//
// `classify` reads a (possibly multi-statement) text with the SQL lexer (lexer.hpp), so that
// words in strings, comments, dollar-quoted bodies and quoted identifiers never count, and
// tells the proxy whether the text may run on a replica, which transaction-control effects it
// has, and whether it is one of pgsluice's own statements the proxy answers itself. Pure: no
// I/O, no logging, no allocation, never throws; linear in the text's length.
//
// A text is a read only when every statement in it is. A statement is a read when it is:
//  - SELECT, VALUES, TABLE, WITH ... SELECT (also parenthesised), unless it holds a locking
//    clause (FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE, at any depth: PostgreSQL locks
//    rows in subqueries and CTEs too), SELECT ... INTO (creates a table), a data-modifying CTE
//    (INSERT/UPDATE/DELETE/MERGE right after a `(` or a `)`: `AS (DELETE ...)`, or the main
//    statement after the CTE list), or a call of a function that writes, takes locks or is
//    bound to the session (see below);
//  - SHOW anything;
//  - EXPLAIN without ANALYZE (the statement is only planned); EXPLAIN ANALYZE, or
//    EXPLAIN (ANALYZE [true|on|1], ...), is classified as the statement it runs. EXPLAIN of
//    EXECUTE is a write: the prepared statement lives on the client's own server.
// Everything else is a write: INSERT/UPDATE/DELETE/MERGE/COPY, DDL, CALL, DO, LOCK, VACUUM,
// SET/RESET (session state), cursors, PREPARE/EXECUTE, unknown words, garbage, an empty text,
// and any text with an unterminated quote or comment.
//
// Transaction control (BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT, SAVEPOINT,
// RELEASE, ROLLBACK TO, SET TRANSACTION) is neutral: it is reported through the flags and does
// not decide the access, except that BEGIN/SET TRANSACTION READ WRITE makes the text a write and
// READ ONLY a read when nothing else decides. A text of neutral statements alone is a write (the
// proxy learns where the transaction goes from what follows). Two-phase commit (PREPARE
// TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED) ends a transaction and is a write: prepared
// transactions exist on the primary only.
//
// Function calls (a name, optionally schema-qualified, then `(`) that make a statement a write:
// nextval, setval, currval (read-only, but its value is bound to the session that called
// nextval: a replica's session would not have it), lastval, pg_advisory_* and pg_try_advisory_*
// (locks must be taken where the writers are), lo_* and lowrite (large objects),
// txid_current, pg_current_xact_id (they assign a transaction id), pg_notify, set_config,
// pg_switch_wal, pg_create_restore_point, pg_terminate_backend, pg_cancel_backend,
// pg_reload_conf, pg_promote, pg_logical_emit_message, pg_stat_reset*, replication-slot creation
// and removal, plus classify_options::write_functions. Names compare case-insensitively, quoted
// ones too (erring towards the primary); a U&"..." name, which only the server can decode, is
// taken for a writing function. Functions reached through views, operators, triggers or defaults
// are invisible here; a replica refuses their writes ("cannot execute ... in a read-only
// transaction"), so that mistake is loud, and write_functions or a routing hint fixes it.
//
// pgsluice's own statements, which the proxy answers instead of the server (a text holding one
// besides other statements is reported as pgsluice_in_batch, for the proxy to refuse):
//  - SET [LOCAL|SESSION] pgsluice.route {=|TO} primary|replica|auto|DEFAULT, RESET pgsluice.route;
//  - SHOW pgsluice.last_write_lsn;
//  - SET [LOCAL|SESSION] pgsluice.min_lsn {=|TO} '0/1234ABCD', RESET pgsluice.min_lsn;
//  - SET/SHOW/RESET of any other pgsluice.* name (the server would accept it as a placeholder
//    and ignore it: the proxy should refuse it instead).
// A leading comment `/* pgsluice: primary */`, `/* pgsluice: replica */` or the same after `--`
// (before the first statement; case and spaces do not matter) is reported as a routing hint;
// the access is still the text's own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgsluice::router {

enum class statement_access : std::uint8_t { read, write };

// What the text is for the proxy.
enum class statement_kind : std::uint8_t {
  ordinary,                // route it by `access`
  route_set,               // SET/RESET pgsluice.route: `route`, `local`
  show_last_write_lsn,     // SHOW pgsluice.last_write_lsn
  set_min_lsn,             // SET/RESET pgsluice.min_lsn: `value` (empty for RESET), `local`
  unknown_pgsluice_name,   // SET/SHOW/RESET pgsluice.<setting> with any other name
  pgsluice_in_batch,       // one of the above together with other statements in one text
};

// READ ONLY / READ WRITE as given by a statement, or nothing said.
enum class access_mode : std::uint8_t { unspecified, read_only, read_write };

// From a leading `/* pgsluice: ... */` or `-- pgsluice: ...` comment. It and route_value map
// onto select.hpp's route_hint (what the router takes), which has no "invalid" and no "none".
enum class comment_hint : std::uint8_t { none, primary, replica };

// The value of SET pgsluice.route.
enum class route_value : std::uint8_t { automatic, primary, replica, invalid };

std::string_view to_string(statement_access a) noexcept;
std::string_view to_string(statement_kind k) noexcept;
std::string_view to_string(access_mode m) noexcept;
std::string_view to_string(comment_hint h) noexcept;
std::string_view to_string(route_value v) noexcept;

struct statement_class {
  statement_access access = statement_access::write;
  statement_kind kind = statement_kind::ordinary;
  comment_hint hint = comment_hint::none;

  // BEGIN or START TRANSACTION (or COMMIT/ROLLBACK AND CHAIN, which opens the next one), and
  // the READ ONLY / READ WRITE it gave (the last one in the text).
  bool begins_transaction = false;
  access_mode begin_mode = access_mode::unspecified;
  // SET TRANSACTION, SET SESSION CHARACTERISTICS AS TRANSACTION or
  // SET default_transaction_read_only: the mode it sets (the last one in the text).
  access_mode set_mode = access_mode::unspecified;
  // COMMIT, END, ROLLBACK (not ROLLBACK TO), ABORT, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED.
  bool ends_transaction = false;

  // For route_set: the value, and whether LOCAL was given (the setting lasts until the end of
  // the transaction). For set_min_lsn: `local` likewise.
  route_value route = route_value::automatic;
  bool local = false;
  // For set_min_lsn: the value as written, without its quotes ('0/1234ABCD' gives 0/1234ABCD).
  // For unknown_pgsluice_name: the name after `pgsluice.`.
  std::string_view value;

  // Statements in the text, empty ones (`;;`) not counted.
  std::size_t statements = 0;

  bool is_read() const noexcept { return access == statement_access::read; }
  bool sets_read_only() const noexcept { return set_mode == access_mode::read_only; }
};

struct classify_options {
  // More functions that make a statement a write: names compare case-insensitively; "name"
  // matches a call of name() in any schema, "schema.name" matches schema.name() and an
  // unqualified name() (the search path may lead there).
  std::vector<std::string> write_functions;
  // As the session's standard_conforming_strings (off: '...' takes backslash escapes).
  bool standard_conforming_strings = true;
};

statement_class classify(std::string_view sql, const classify_options& opts) noexcept;

// With the default options.
statement_class classify(std::string_view sql) noexcept;

}  // namespace pgsluice::router
