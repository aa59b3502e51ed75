// Prepared-statement registries for transaction pooling (see prepared.hpp).
#include "proxy/prepared.hpp"

#include <openssl/evp.h>

#include <stdexcept>

#include "protocol/fields.hpp"

namespace pgsluice::proxy {

statement_ptr make_statement(std::string_view query, std::span<const std::uint8_t> param_types,
                             std::uint8_t route_flags) {
  auto stmt = std::make_shared<prepared_statement>();
  stmt->route_flags = route_flags;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const unsigned char zero = 0;
  const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, query.data(), query.size()) == 1 && EVP_DigestUpdate(ctx, &zero, 1) == 1 &&
                  EVP_DigestUpdate(ctx, param_types.data(), param_types.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, md, &md_len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("SHA-256 failed");  // a bug or an OpenSSL failure, never input-dependent
  std::copy(md, md + stmt->digest.size(), stmt->digest.begin());

  static constexpr char hex[] = "0123456789abcdef";
  stmt->server_name = "pgsluice_";
  for (auto b : stmt->digest) {
    stmt->server_name += hex[b >> 4];
    stmt->server_name += hex[b & 15];
  }
  stmt->query.assign(query);
  stmt->param_types.assign(param_types.begin(), param_types.end());
  protocol::append_parse(stmt->parse_message, stmt->server_name, stmt->query, stmt->param_types);
  return stmt;
}

const statement_ptr* client_statements::find(std::string_view name) const noexcept {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

std::string_view client_statements::name_of(std::string_view server_name) const noexcept {
  for (const auto& [name, stmt] : by_name_) {
    if (stmt && stmt->server_name == server_name) return name;
  }
  return {};
}

bool client_statements::add(std::string_view name, statement_ptr stmt) {
  return by_name_.emplace(std::string(name), std::move(stmt)).second;
}

statement_ptr client_statements::remove(std::string_view name) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return nullptr;
  statement_ptr out = std::move(it->second);
  by_name_.erase(it);
  return out;
}

bool server_statements::touch(const statement_digest& d) {
  auto it = index_.find(d);
  if (it == index_.end()) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  return true;
}

void server_statements::insert(const statement_ptr& stmt, std::vector<statement_ptr>& evicted) {
  if (touch(stmt->digest)) return;
  lru_.push_front(stmt);
  index_.emplace(stmt->digest, lru_.begin());
  while (capacity_ > 0 && lru_.size() > capacity_) {
    evicted.push_back(std::move(lru_.back()));
    index_.erase(evicted.back()->digest);
    lru_.pop_back();
  }
}

void server_statements::restore(const statement_ptr& stmt) {
  if (index_.count(stmt->digest) != 0) return;
  lru_.push_back(stmt);
  index_.emplace(stmt->digest, std::prev(lru_.end()));
}

bool server_statements::erase(const statement_digest& d) {
  auto it = index_.find(d);
  if (it == index_.end()) return false;
  lru_.erase(it->second);
  index_.erase(it);
  return true;
}

void server_statements::clear() noexcept {
  lru_.clear();
  index_.clear();
}

}  // namespace pgsluice::proxy
