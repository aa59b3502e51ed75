// Internal to proxy/: secrets auth_query returned, reused for auth_query_cache_ttl so that a user's logins do not each cost a query.
//
// A client that connects per transaction would otherwise make pgsluice borrow a server
// connection of the auth_user's pool and run auth_query at every login, which is a round trip to
// the server and a server connection taken from the pool for it. Only secrets found (a row with
// a password) are kept: an unknown user is looked up every time, so a user created on the server
// can log in at once. A login that fails with a reused secret forgets it, so the next attempt
// asks the server again (a password changed on the server is then picked up without waiting for
// the lifetime to end). Keys hold everything the answer depends on: the database auth_query runs
// in, the user running it, the query text and the user looked up.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pgsluice::proxy {

class auth_query_cache {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t default_capacity = 100'000;

  explicit auth_query_cache(std::size_t capacity = default_capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  static std::string key(std::string_view auth_dbname, std::string_view auth_user, std::string_view auth_query,
                         std::string_view user);

  // The secret stored under `key` less than `ttl` ago; nullopt otherwise (and always for ttl 0).
  std::optional<std::string> find(const std::string& key, std::chrono::milliseconds ttl, clock::time_point now);
  void store(const std::string& key, std::string secret, clock::time_point now);
  void forget(const std::string& key);
  std::size_t size() const;

 private:
  struct entry {
    std::string secret;
    clock::time_point fetched;
  };
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, entry> entries_;
};

}  // namespace pgsluice::proxy
