// Backend sets and their registry: the shared health state of a database's backends, operator actions, waiting writes (see ha.hpp).
#include "proxy/ha.hpp"

#include <thread>

#include <spdlog/spdlog.h>

#include "proxy/asio.hpp"
#include "proxy/cluster.hpp"
#include "proxy/monitor.hpp"

namespace pgsluice::proxy {

namespace {

std::atomic<std::uint64_t> failovers_total{0};

std::vector<router::role> configured_roles(const std::vector<conf::backend_config>& backends) {
  std::vector<router::role> out;
  for (const auto& b : backends) {
    out.push_back(b.role == conf::backend_role::primary   ? router::role::primary
                  : b.role == conf::backend_role::replica ? router::role::replica
                                                          : router::role::unknown);
  }
  return out;
}

router::failover_mode mode_of(conf::failover_mode m) noexcept {
  switch (m) {
    case conf::failover_mode::off: return router::failover_mode::off;
    case conf::failover_mode::follow: return router::failover_mode::follow;
    case conf::failover_mode::promote: return router::failover_mode::promote;
  }
  return router::failover_mode::follow;
}

}  // namespace

void count_failover() noexcept { failovers_total.fetch_add(1, std::memory_order_relaxed); }
std::uint64_t ha_registry::failovers() noexcept { return failovers_total.load(std::memory_order_relaxed); }

// --- backend_set ------------------------------------------------------------------------------

backend_set::backend_set(std::string database, const std::vector<conf::backend_config>& backends,
                         router::health_settings s, std::string fingerprint)
    : database_(std::move(database)),
      fingerprint_(std::move(fingerprint)),
      settings_(s),
      machine_(configured_roles(backends), s, std::chrono::steady_clock::now()),
      changed_at_(backends.size(), std::chrono::system_clock::now()) {
  for (const auto& b : backends) {
    auto r = std::make_unique<record>();
    r->cfg = b;
    records_.push_back(std::move(r));
  }
  std::lock_guard lk(mu_);
  publish();
}

backend_set::~backend_set() = default;

void backend_set::publish() {
  for (std::size_t i = 0; i < records_.size(); ++i) {
    const auto& b = machine_.at(i);
    auto& r = *records_[i];
    r.role.store(b.role, std::memory_order_relaxed);
    r.health.store(b.status, std::memory_order_relaxed);
    if (b.position) r.position.store(*b.position, std::memory_order_relaxed);
    r.lag_bytes.store(b.lag_bytes.value_or(unknown), std::memory_order_relaxed);
    r.lag_ms.store(b.lag_time ? b.lag_time->count() : -1, std::memory_order_relaxed);
  }
  has_primary_.store(machine_.primary().has_value(), std::memory_order_release);
}

void backend_set::apply(const router::health_decision& d) {
  for (const auto& c : d.changes) {
    const auto& cfg = records_[c.backend]->cfg;
    changed_at_[c.backend] = std::chrono::system_clock::now();
    const bool bad = c.to == router::health::down || c.to == router::health::fenced;
    spdlog::log(bad ? spdlog::level::warn : spdlog::level::info,
                "health database={} backend={}:{} status={} role={} was={}/{} reason=\"{}\"", database_, cfg.host,
                cfg.port, router::to_string(c.to), router::to_string(c.role_to), router::to_string(c.from),
                router::to_string(c.role_from), c.reason);
  }
  for (const auto& n : d.notes) spdlog::warn("health database={} {}", database_, n);
  if (d.primary_changed) {
    if (const auto p = machine_.primary()) {
      spdlog::info("health database={} primary={}:{}", database_, records_[*p]->cfg.host, records_[*p]->cfg.port);
    } else {
      spdlog::warn("health database={} no primary: new write transactions wait up to failover_hold_timeout",
                   database_);
    }
  }
  if (d.promote) {
    const auto& cfg = records_[d.promote->backend]->cfg;
    std::string lost = "unknown";
    if (d.promote->lost_at) {
      const auto behind = *d.promote->lost_at > d.promote->position ? *d.promote->lost_at - d.promote->position : 0;
      lost = std::to_string(behind) + " bytes";
    }
    spdlog::warn("failover database={} promoting={}:{} reason=\"{}\" behind_last_seen_primary={}", database_,
                 cfg.host, cfg.port, d.promote->reason, lost);
    if (prober_) prober_->promote(*d.promote);
  }
  if (d.repoint && prober_) prober_->repoint(*d.repoint);
  publish();
  if (!d.changes.empty() || d.primary_changed) {
    for (auto& [id, wake] : waiters_) wake();
    waiters_.clear();
  }
}

router::health_decision backend_set::run(std::size_t i, const std::function<router::health_decision()>& f) {
  std::lock_guard lk(mu_);
  if (i >= records_.size()) return {};
  const auto failovers_before = machine_.failovers();
  auto d = f();
  for (auto n = machine_.failovers(); n > failovers_before; --n) count_failover();
  apply(d);
  return d;
}

void backend_set::report_check(std::size_t i, const router::probe_result& r) {
  run(i, [&] { return machine_.on_check(i, r, std::chrono::steady_clock::now()); });
}

void backend_set::report_sample(std::size_t i, const router::probe_result& r) {
  run(i, [&] { return machine_.on_sample(i, r, std::chrono::steady_clock::now()); });
}

void backend_set::report_promotion(std::size_t i, bool ok, const std::string& error) {
  run(i, [&] { return machine_.on_promote_result(i, ok, error, std::chrono::steady_clock::now()); });
}

void backend_set::tick() {
  run(0, [&] { return machine_.on_tick(std::chrono::steady_clock::now()); });
}

bool backend_set::fence(std::size_t i, std::string_view why) {
  if (i >= records_.size()) return false;
  run(i, [&] { return machine_.fence(i, why, std::chrono::steady_clock::now()); });
  return true;
}

bool backend_set::unfence(std::size_t i) {
  if (i >= records_.size()) return false;
  run(i, [&] { return machine_.unfence(i, std::chrono::steady_clock::now()); });
  return true;
}

bool backend_set::drain(std::size_t i) {
  if (i >= records_.size()) return false;
  run(i, [&] { return machine_.drain(i, std::chrono::steady_clock::now()); });
  return true;
}

bool backend_set::undrain(std::size_t i) {
  if (i >= records_.size()) return false;
  run(i, [&] { return machine_.undrain(i, std::chrono::steady_clock::now()); });
  return true;
}

std::optional<std::size_t> backend_set::find(std::string_view host, std::uint16_t port) const {
  for (std::size_t i = 0; i < records_.size(); ++i) {
    if (records_[i]->cfg.host == host && records_[i]->cfg.port == port) return i;
  }
  return std::nullopt;
}

std::vector<backend_status> backend_set::status() const {
  std::lock_guard lk(mu_);
  std::vector<backend_status> out;
  for (std::size_t i = 0; i < records_.size(); ++i) {
    const auto& b = machine_.at(i);
    const auto& r = *records_[i];
    backend_status s;
    s.host = r.cfg.host;
    s.port = r.cfg.port;
    s.role = b.role;
    s.status = b.status;
    s.weight = r.cfg.weight;
    s.lag_bytes = b.lag_bytes;
    if (b.lag_time) s.lag_seconds = static_cast<double>(b.lag_time->count()) / 1000.0;
    s.reads_routed = r.reads.load(std::memory_order_relaxed);
    s.writes_routed = r.writes.load(std::memory_order_relaxed);
    s.changed_at = changed_at_[i];
    s.reason = b.reason;
    out.push_back(std::move(s));
  }
  return out;
}

std::uint64_t backend_set::on_primary(std::function<void()> wake) {
  std::lock_guard lk(mu_);
  const auto id = next_waiter_++;
  waiters_.emplace(id, std::move(wake));
  return id;
}

void backend_set::forget(std::uint64_t id) {
  std::lock_guard lk(mu_);
  waiters_.erase(id);
}

void backend_set::attach(std::weak_ptr<cluster> c) {
  std::lock_guard lk(mu_);
  std::erase_if(clusters_, [](const auto& w) { return w.expired(); });
  clusters_.push_back(std::move(c));
}

std::vector<std::shared_ptr<cluster>> backend_set::clusters() {
  std::lock_guard lk(mu_);
  std::vector<std::shared_ptr<cluster>> out;
  for (const auto& w : clusters_) {
    if (auto c = w.lock(); c && !c->retired()) out.push_back(std::move(c));
  }
  return out;
}

void backend_set::set_prober(std::shared_ptr<health_prober> p) {
  std::lock_guard lk(mu_);
  prober_ = std::move(p);
}

void backend_set::stop() {
  std::shared_ptr<health_prober> p;
  {
    std::lock_guard lk(mu_);
    p = std::move(prober_);
    // Writes still waiting give up now (their timers fire at once).
    for (auto& [id, wake] : waiters_) wake();
    waiters_.clear();
  }
  if (p) p->stop();
}

// --- registry ---------------------------------------------------------------------------------

struct ha_registry::thread_state {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{asio::make_work_guard(io)};
  std::thread thread;
};

ha_registry::ha_registry(runtime& rt) : rt_(rt) {}

ha_registry::~ha_registry() { stop(); }

std::vector<std::shared_ptr<backend_set>> ha_registry::sets() const {
  std::lock_guard lk(mu_);
  std::vector<std::shared_ptr<backend_set>> out;
  for (const auto& [k, s] : sets_) out.push_back(s);
  return out;
}

std::shared_ptr<backend_set> ha_registry::find(std::string_view database) const {
  std::lock_guard lk(mu_);
  auto it = sets_.find(database);
  return it == sets_.end() ? nullptr : it->second;
}

std::shared_ptr<backend_set> ha_registry::get(const conf::config& cfg, const conf::database_config& db,
                                              std::string_view database) {
  const auto rs = cfg.effective_routing(db, nullptr);
  router::health_settings hs;
  hs.fall = cfg.health_check_fall;
  hs.rise = cfg.health_check_rise;
  hs.failover = mode_of(cfg.failover);
  hs.failover_after = cfg.failover_after;
  hs.max_lag_bytes = rs.max_replica_lag.bytes;
  hs.max_lag_time = rs.max_replica_lag.time;
  std::string fp;
  for (const auto& b : db.backends) {
    fp += b.host + ':' + std::to_string(b.port) + ':' + std::string(conf::to_string(b.role)) + ':' +
          std::to_string(b.weight) + ';';
  }
  fp += std::to_string(hs.fall) + ',' + std::to_string(hs.rise) + ',' + std::string(router::to_string(hs.failover)) +
        ',' + std::to_string(hs.failover_after.count()) + ',' + std::to_string(hs.max_lag_bytes) + ',' +
        std::to_string(hs.max_lag_time.count()) + ',' + std::to_string(cfg.health_check_interval.count()) + ',' +
        std::to_string(cfg.health_check_timeout.count()) + ',' + std::to_string(rs.lag_check_interval.count()) + ',' +
        std::to_string(db.backends.size() > 1);
  std::shared_ptr<backend_set> old;
  std::shared_ptr<backend_set> s;
  {
    std::lock_guard lk(mu_);
    auto& slot = sets_[std::string(database)];
    if (slot && slot->fingerprint() == fp) return slot;
    old = std::move(slot);
    s = std::make_shared<backend_set>(std::string(database), db.backends, hs, fp);
    // One backend has nothing to fail over to: it is left unchecked, as a plain pool's
    // server is (and its server connections are exactly the pool's).
    s->monitored_ = db.backends.size() > 1;
    slot = s;
    if (s->monitored_ && !thread_) {
      thread_ = std::make_unique<thread_state>();
      thread_->thread = std::thread([t = thread_.get()] { t->io.run(); });
    }
    if (s->monitored_) {
    health_prober::timing t;
    t.check_interval = cfg.health_check_interval;
    t.timeout = cfg.health_check_timeout;
    // Read-your-writes and the lag limits want fresher positions than the health verdict.
    t.sample_interval = db.backends.size() > 1 ? rs.lag_check_interval : cfg.health_check_interval;
    auto p = std::make_shared<health_prober>(rt_, thread_->io, s, t);
    s->set_prober(p);
    p->start();
    }
  }
  if (old) old->stop();
  if (!s->monitored_) return s;
  spdlog::info("health database={} backends={} failover={} interval={}ms fall={} rise={}", database, db.backends.size(),
               router::to_string(hs.failover), cfg.health_check_interval.count(), hs.fall, hs.rise);
  return s;
}

void ha_registry::stop() {
  std::map<std::string, std::shared_ptr<backend_set>, std::less<>> sets;
  std::unique_ptr<thread_state> t;
  {
    std::lock_guard lk(mu_);
    sets.swap(sets_);
    t = std::move(thread_);
  }
  for (auto& [k, s] : sets) s->stop();
  if (!t) return;
  t->guard.reset();
  t->io.stop();
  if (t->thread.joinable()) t->thread.join();
}

}  // namespace pgsluice::proxy
