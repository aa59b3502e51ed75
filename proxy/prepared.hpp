// Named prepared statements in transaction pooling: per-client names, shared server-side names, per-server LRU.
//
// In transaction mode consecutive transactions of one client may run on different server
// connections, but a named prepared statement lives in one server session
// (https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY). The proxy
// therefore keeps, per client, the statements it prepared (client name -> statement), and gives
// each distinct (query text, parameter types) a server-side name derived from a SHA-256 digest,
// "pgsluice_<32 hex digits>", so clients preparing the same statement share it on a server.
// Before a Bind/Describe reaches a server that lacks the statement, the proxy sends the Parse
// itself; each server connection remembers (bounded, least recently used evicted with a Close)
// which statements it holds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pgsluice::proxy {

// First 16 bytes of SHA-256(query || 0x00 || raw parameter-type section).
using statement_digest = std::array<std::uint8_t, 16>;

struct statement_digest_hash {
  std::size_t operator()(const statement_digest& d) const noexcept {
    std::size_t h = 0;
    for (std::size_t i = 0; i < sizeof(std::size_t); ++i) h = (h << 8) | d[i];
    return h;
  }
};

struct prepared_statement {
  statement_digest digest{};
  std::string server_name;                   // "pgsluice_<hex>"
  std::string query;
  std::vector<std::uint8_t> param_types;     // Int16 count + Int32 OIDs, as sent by the client
  std::vector<std::uint8_t> parse_message;   // complete Parse under server_name, ready to inject
  std::uint8_t route_flags = 0;              // statement_flags of router::classify, when routing
  mutable std::int8_t pipelinable = -1;      // pipelinable(query) once asked (pipeline_depth), -1 before
};
using statement_ptr = std::shared_ptr<const prepared_statement>;

// What routing needs to remember of a statement's class (router::classify).
namespace statement_flags {
inline constexpr std::uint8_t read = 1;    // may run on a replica
inline constexpr std::uint8_t begins = 2;  // opens a transaction
inline constexpr std::uint8_t ends = 4;    // ends one
}  // namespace statement_flags
statement_ptr make_statement(std::string_view query, std::span<const std::uint8_t> param_types,
                             std::uint8_t route_flags = 0);

// The statements one client prepared, by the client's own names.
class client_statements {
 public:
  const statement_ptr* find(std::string_view name) const noexcept;
  // False (and no change) when the name is taken, as PostgreSQL refuses a duplicate name.
  bool add(std::string_view name, statement_ptr stmt);
  // Removes and returns the statement (null when unknown).
  statement_ptr remove(std::string_view name);
  // The client's name for a server-side statement name ("pgsluice_<hex>"); empty when none.
  // Linear: used only to reword the server's error messages.
  std::string_view name_of(std::string_view server_name) const noexcept;
  std::size_t size() const noexcept { return by_name_.size(); }
  void clear() noexcept { by_name_.clear(); }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, statement_ptr, string_hash, std::equal_to<>> by_name_;
};

// The statements prepared on one server connection, least recently used first out.
class server_statements {
 public:
  explicit server_statements(std::size_t capacity) : capacity_(capacity) {}

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t size() const noexcept { return lru_.size(); }
  // True when present; marks it most recently used.
  bool touch(const statement_digest& d);
  bool contains(const statement_digest& d) const { return index_.count(d) != 0; }
  // Records `stmt` as prepared (most recently used). Statements pushed out to stay within the
  // capacity are appended to `evicted`; the caller closes them on the server.
  void insert(const statement_ptr& stmt, std::vector<statement_ptr>& evicted);
  bool erase(const statement_digest& d);
  // Puts back a statement that is still on the server after all (its Close was skipped), as the
  // least recently used one, without evicting anything.
  void restore(const statement_ptr& stmt);
  void clear() noexcept;

 private:
  std::size_t capacity_;
  std::list<statement_ptr> lru_;  // front = most recently used
  std::unordered_map<statement_digest, std::list<statement_ptr>::iterator, statement_digest_hash> index_;
};

}  // namespace pgsluice::proxy
