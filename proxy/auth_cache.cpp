// The auth_query result cache of proxy/auth_cache.hpp.
#include "proxy/auth_cache.hpp"

#include <algorithm>
#include <iterator>
#include <vector>

namespace pgsluice::proxy {

std::string auth_query_cache::key(std::string_view auth_dbname, std::string_view auth_user, std::string_view auth_query,
                                  std::string_view user) {
  // Lengths first: no two different tuples join into the same text.
  std::string k;
  for (const auto part : {auth_dbname, auth_user, auth_query, user}) {
    k += std::to_string(part.size());
    k += ':';
    k += part;
  }
  return k;
}

std::optional<std::string> auth_query_cache::find(const std::string& key, std::chrono::milliseconds ttl,
                                                  clock::time_point now) {
  if (ttl.count() <= 0) return std::nullopt;
  std::lock_guard lk(mu_);
  const auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (now - it->second.fetched >= ttl || now < it->second.fetched) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.secret;
}

void auth_query_cache::store(const std::string& key, std::string secret, clock::time_point now) {
  std::lock_guard lk(mu_);
  if (entries_.size() >= capacity_ && entries_.count(key) == 0) {
    // Full: the oldest half goes (entries past any lifetime are among them). Rare: it takes
    // that many distinct users logging in within one lifetime.
    std::vector<clock::time_point> times;
    times.reserve(entries_.size());
    for (const auto& [k, e] : entries_) times.push_back(e.fetched);
    auto mid = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2);
    std::nth_element(times.begin(), mid, times.end());
    const auto cut = *mid;
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = it->second.fetched <= cut ? entries_.erase(it) : std::next(it);
    }
  }
  entries_[key] = entry{std::move(secret), now};
}

void auth_query_cache::forget(const std::string& key) {
  std::lock_guard lk(mu_);
  entries_.erase(key);
}

std::size_t auth_query_cache::size() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

}  // namespace pgsluice::proxy
