// Data set creation for `pgsluice bench init`: DDL, row generators, parallel COPY with progress, indexes, metadata.
#include "bench/dataset.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <exception>
#include <mutex>
#include <ostream>
#include <thread>

#include "bench/cluster.hpp"
#include "bench/random.hpp"

namespace pgsluice::bench {

namespace {

using steady = std::chrono::steady_clock;

// Seeds of the row generators, one per table, so columns are independent.
constexpr std::uint64_t seed_customers = 0x6375737431ull;
constexpr std::uint64_t seed_products = 0x70726f6431ull;
constexpr std::uint64_t seed_purchases = 0x7075726331ull;
constexpr std::uint64_t seed_weather = 0x7765617431ull;
constexpr std::uint64_t seed_vehicles = 0x7665686931ull;

constexpr std::int64_t purchase_span_seconds = 365LL * 86400;
constexpr std::int64_t weather_span_seconds = 30LL * 86400;
constexpr std::int64_t vehicle_interval_seconds = 30;
constexpr std::int64_t chunk_rows = 50000;

std::int64_t at_least(double v, std::int64_t floor) { return std::max<std::int64_t>(floor, std::llround(v)); }

// "2026-11-21 14:03:00+00"
void append_timestamp(std::string& out, std::int64_t epoch) {
  const auto t = static_cast<std::time_t>(epoch);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d+00", tm.tm_year + 1900, tm.tm_mon + 1,
                              tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  out.append(buf, static_cast<std::size_t>(n));
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  out.append(buf, static_cast<std::size_t>(n));
}

void append_cents(std::string& out, std::int64_t cents) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%lld.%02lld", static_cast<long long>(cents / 100),
                              static_cast<long long>(cents % 100));
  out.append(buf, static_cast<std::size_t>(n));
}

void append_fixed(std::string& out, double v, int decimals) {
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  out.append(buf, static_cast<std::size_t>(n));
}

double unit_of(std::uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// Progress on a terminal (one bar redrawn in place) or as plain lines (logs, CI).
class progress_meter {
 public:
  progress_meter(std::ostream* out, bool tty, std::uint64_t total)
      : out_(out), tty_(tty), total_(total), start_(steady::now()) {
    if (out_) printer_ = std::thread([this] { print_loop(); });
  }
  ~progress_meter() { finish(); }

  void add(std::uint64_t n) noexcept { done_.fetch_add(n, std::memory_order_relaxed); }

  void finish() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    wake_.notify_all();
    if (printer_.joinable()) printer_.join();
    if (out_) {
      print(true);
      if (tty_) *out_ << '\n';
      out_->flush();
    }
  }

 private:
  void print_loop() {
    std::unique_lock lock(mutex_);
    const auto interval = tty_ ? std::chrono::milliseconds(200) : std::chrono::seconds(5);
    while (!wake_.wait_for(lock, interval, [this] { return stopped_; })) print(false);
  }

  void print(bool final) {
    const std::uint64_t done = std::min(done_.load(), total_);
    const double elapsed = std::chrono::duration<double>(steady::now() - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    const double fraction = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
    char line[256];
    if (tty_) {
      constexpr int width = 30;
      const int filled = static_cast<int>(fraction * width);
      std::string bar(static_cast<std::size_t>(filled), '#');
      bar.append(static_cast<std::size_t>(width - filled), '-');
      std::snprintf(line, sizeof line, "\r  copy [%s] %3.0f%%  %s/%s rows  %s rows/s  %s   ", bar.c_str(),
                    fraction * 100, human_count(static_cast<double>(done)).c_str(),
                    human_count(static_cast<double>(total_)).c_str(), human_count(rate).c_str(),
                    final ? ("in " + std::to_string(static_cast<int>(elapsed + 0.5)) + "s").c_str()
                          : ("ETA " + std::to_string(static_cast<int>(eta + 0.5)) + "s").c_str());
      *out_ << line << std::flush;
    } else {
      std::snprintf(line, sizeof line, "  copy: %3.0f%% (%llu/%llu rows, %s rows/s, %s %ds)\n", fraction * 100,
                    static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_),
                    human_count(rate).c_str(), final ? "took" : "ETA",
                    static_cast<int>((final ? elapsed : eta) + 0.5));
      *out_ << line << std::flush;
    }
  }

  std::ostream* out_;
  bool tty_;
  std::uint64_t total_;
  steady::time_point start_;
  std::atomic<std::uint64_t> done_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopped_ = false;
  std::thread printer_;
};

// Runs independent statements (index builds, VACUUM) over several connections.
void run_parallel(const std::string& conninfo, const std::vector<std::string>& statements, unsigned connections) {
  std::atomic<std::size_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;
  std::vector<std::thread> threads;
  const unsigned n = std::max(1u, std::min<unsigned>(connections, static_cast<unsigned>(statements.size())));
  for (unsigned t = 0; t < n; ++t) {
    threads.emplace_back([&] {
      try {
        pq_connection conn = connect(conninfo);
        for (std::size_t i; (i = next.fetch_add(1)) < statements.size();) conn.query(statements[i]);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(statements.size());
      }
    });
  }
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

bool table_exists(pq_connection& conn, const std::string& name) {
  return conn.scalar("SELECT to_regclass('" + name + "') IS NOT NULL").value_or("f") == "t";
}

std::string month_name(int year, int month) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d_%02d", year, month);
  return buf;
}

std::string month_start(int year, int month) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "'%04d-%02d-01 00:00:00+00'", year, month);
  return buf;
}

// Monthly partitions from the month of `from` to three months after `to`, and a default one.
std::string purchases_partitions_sql(std::int64_t from, std::int64_t to) {
  std::tm a{}, b{};
  const auto ta = static_cast<std::time_t>(from), tb = static_cast<std::time_t>(to);
  gmtime_r(&ta, &a);
  gmtime_r(&tb, &b);
  int year = a.tm_year + 1900, month = a.tm_mon + 1;
  const int last = (b.tm_year + 1900) * 12 + b.tm_mon + 3;
  std::string sql;
  while (year * 12 + month - 1 <= last) {
    const int next_year = month == 12 ? year + 1 : year, next_month = month == 12 ? 1 : month + 1;
    sql += "CREATE TABLE purchases_" + month_name(year, month) + " PARTITION OF purchases FOR VALUES FROM (" +
           month_start(year, month) + ") TO (" + month_start(next_year, next_month) + ");\n";
    year = next_year;
    month = next_month;
  }
  sql += "CREATE TABLE purchases_default PARTITION OF purchases DEFAULT;\n";
  return sql;
}

}  // namespace

dataset_sizes dataset_sizes::for_scale(double scale) {
  dataset_sizes s;
  s.scale = scale;
  s.pgbench_scale = at_least(10 * scale, 1);
  s.customers = at_least(20000 * scale, 100);
  s.products = at_least(2000 * scale, 10);
  s.purchases = at_least(400000 * scale, 1000);
  s.locations = std::min<std::int64_t>(1000, at_least(1000 * scale, 10));
  s.weather_rows = at_least(500000 * scale, 1000);
  s.vehicles = at_least(2000 * scale, 10);
  s.vehicle_rows = at_least(200000 * scale, 1000);
  return s;
}

std::string_view region_of_customer(std::int64_t customer_id) noexcept {
  return regions[mix64(seed_customers + 1, static_cast<std::uint64_t>(customer_id)) % regions.size()];
}

std::int64_t price_cents_of_product(std::int64_t product_id) noexcept {
  return 99 + static_cast<std::int64_t>(mix64(seed_products + 1, static_cast<std::uint64_t>(product_id)) % 50000);
}

std::string location_name(std::int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "station-%04lld", static_cast<long long>(index));
  return buf;
}

std::string human_count(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1e4) std::snprintf(buf, sizeof buf, "%.1fk", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

void parallel_copy(const std::string& conninfo, const std::vector<copy_job>& jobs, unsigned connections,
                   const std::function<void(std::uint64_t)>& on_rows) {
  struct chunk {
    const copy_job* job;
    std::int64_t first, last;
  };
  std::vector<chunk> chunks;
  for (const copy_job& job : jobs)
    for (std::int64_t first = 0; first < job.rows; first += chunk_rows)
      chunks.push_back({&job, first, std::min(job.rows, first + chunk_rows)});

  std::atomic<std::size_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;
  auto work = [&] {
    try {
      pq_connection conn = connect(conninfo);
      PGconn* pg = conn.get();
      conn.query("SET synchronous_commit = off");
      std::string buffer;
      buffer.reserve(300 * 1024);
      for (std::size_t i; (i = next.fetch_add(1)) < chunks.size();) {
        const chunk& c = chunks[i];
        const std::string copy = "COPY " + c.job->table + " " + c.job->columns + " FROM STDIN";
        PGresult* res = PQexec(pg, copy.c_str());
        const bool started = PQresultStatus(res) == PGRES_COPY_IN;
        const std::string start_error = PQresultErrorMessage(res);
        PQclear(res);
        if (!started) throw stack_error("COPY " + c.job->table + " failed: " + start_error);
        std::int64_t pending = 0;
        for (std::int64_t row = c.first; row < c.last; ++row) {
          c.job->row(row, buffer);
          ++pending;
          if (buffer.size() >= 256 * 1024 || row + 1 == c.last) {
            if (PQputCopyData(pg, buffer.data(), static_cast<int>(buffer.size())) != 1)
              throw stack_error("COPY " + c.job->table + " failed: " + PQerrorMessage(pg));
            buffer.clear();
            if (on_rows) on_rows(static_cast<std::uint64_t>(pending));
            pending = 0;
          }
        }
        if (PQputCopyEnd(pg, nullptr) != 1) throw stack_error("COPY " + c.job->table + " failed: " + PQerrorMessage(pg));
        std::string failure;
        while (PGresult* r = PQgetResult(pg)) {
          if (PQresultStatus(r) != PGRES_COMMAND_OK && failure.empty()) failure = PQresultErrorMessage(r);
          PQclear(r);
        }
        if (!failure.empty()) throw stack_error("COPY " + c.job->table + " failed: " + failure);
      }
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      next.store(chunks.size());
    }
  };
  std::vector<std::thread> threads;
  const unsigned n = std::max(1u, std::min<unsigned>(connections, static_cast<unsigned>(std::max<std::size_t>(1, chunks.size()))));
  for (unsigned t = 0; t < n; ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

namespace {

// Waits until every streaming replica of the server behind `conn` has replayed its WAL as
// of now; false after `timeout`. A server without replicas (or a pooler answering from
// one) has nothing to wait for.
bool wait_for_replay(pq_connection& conn, std::chrono::milliseconds timeout) {
  const std::string lsn = conn.scalar("SELECT pg_current_wal_lsn()::text").value_or("0/0");
  return poll_until(timeout, std::chrono::milliseconds(20), [&] {
    return conn.scalar("SELECT count(*) FROM pg_stat_replication WHERE replay_lsn IS NOT NULL AND replay_lsn < '" +
                       lsn + "'::pg_lsn").value_or("1") == "0";
  });
}

void create_read_after_write_table(pq_connection& conn) {
  const std::string table(read_after_write_table);
  conn.query("CREATE TABLE IF NOT EXISTS " + table +
             " (run_id bigint NOT NULL, seq bigint NOT NULL, client_tag text NOT NULL,"
             " written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, seq))");
  conn.query("TRUNCATE " + table);
}

}  // namespace

void ensure_read_after_write_table(const std::string& conninfo) {
  pq_connection conn = connect(conninfo);
  conn.query("SET client_min_messages = warning");  // no "relation already exists, skipping"
  create_read_after_write_table(conn);
  if (!wait_for_replay(conn, std::chrono::minutes(1)))
    throw stack_error("the replicas did not replay the creation of " + std::string(read_after_write_table) +
                      " within a minute");
}

dataset_info probe_dataset(const std::string& conninfo) {
  pq_connection conn = connect(conninfo);
  dataset_info info;
  dataset_sizes& s = info.sizes;
  s = dataset_sizes{};
  std::map<std::string, std::string> meta;
  if (table_exists(conn, "pgsluice_bench_meta"))
    for (const auto& row : conn.query("SELECT key, value FROM pgsluice_bench_meta"))
      if (row.size() == 2 && row[0] && row[1]) meta[*row[0]] = *row[1];
  auto meta_int = [&](const char* key, std::int64_t& into) {
    auto it = meta.find(key);
    if (it == meta.end()) return false;
    into = std::stoll(it->second);
    return true;
  };
  if (auto it = meta.find("scale"); it != meta.end()) s.scale = std::stod(it->second);

  if (table_exists(conn, "pgbench_branches")) {
    // As pgbench does: the scale is the number of branches.
    s.pgbench_scale = std::stoll(conn.scalar("SELECT count(*) FROM pgbench_branches").value_or("0"));
    info.has_pgbench = s.pgbench_scale > 0 && table_exists(conn, "pgbench_accounts");
  }
  info.has_purchases = table_exists(conn, "purchases") && table_exists(conn, "customers") &&
                       table_exists(conn, "products") && meta_int("customers", s.customers) &&
                       meta_int("products", s.products) && meta_int("purchases", s.purchases);
  info.has_weather = table_exists(conn, "weather") && meta_int("locations", s.locations) &&
                     meta_int("weather_rows", s.weather_rows);
  info.has_vehicles = table_exists(conn, "vehicle_locations") && meta_int("vehicles", s.vehicles) &&
                      meta_int("vehicle_rows", s.vehicle_rows);
  return info;
}

init_report init_datasets(const init_options& options) {
  const auto started = steady::now();
  init_report report;
  std::ostream* out = options.out;
  const bool tty = options.progress_tty < 0 ? ::isatty(STDOUT_FILENO) == 1 : options.progress_tty == 1;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const unsigned jobs = options.jobs ? options.jobs : std::max(2u, cores + 1);
  const dataset_sizes sizes = dataset_sizes::for_scale(options.scale);
  auto say = [&](const std::string& line) {
    if (out) *out << line << '\n' << std::flush;
  };
  auto want = [&](const char* name) { return options.datasets.count(name) != 0; };
  for (const auto& d : options.datasets)
    if (std::find(dataset_names.begin(), dataset_names.end(), d) == dataset_names.end())
      throw std::invalid_argument("unknown data set '" + d + "' (known: pgbench, purchases, weather, vehicles)");

  pq_connection conn = connect(options.conninfo);
  conn.query("SET client_min_messages = warning");  // no "table does not exist, skipping" notices
  const std::int64_t data_end = static_cast<std::int64_t>(std::time(nullptr));

  // PostGIS first: without it the vehicles data set is skipped, with a note.
  bool vehicles = want("vehicles");
  if (vehicles) {
    try {
      conn.query("CREATE EXTENSION IF NOT EXISTS postgis");
    } catch (const sql_error& e) {
      vehicles = false;
      report.notes.push_back("PostGIS is not available (" + std::string(e.what()) +
                             "); the vehicles data set and the spatial workload are skipped. Install "
                             "postgresql-15-postgis-3 and run init as a superuser to include them.");
      say("note: " + report.notes.back());
    }
  }

  char scale_text[32];
  std::snprintf(scale_text, sizeof scale_text, "%g", options.scale);
  say(std::string("creating tables (scale ") + scale_text + ")");
  conn.query("CREATE TABLE IF NOT EXISTS pgsluice_bench_meta (key text PRIMARY KEY, value text NOT NULL)");
  create_read_after_write_table(conn);  // the read-after-write workload's, whatever --datasets says
  std::vector<copy_job> copies;
  std::vector<std::string> indexes;
  std::vector<std::string> analyze;

  if (want("pgbench")) {
    // The same tables as `pgbench -i` (PostgreSQL 15, client-side generation):
    // branches and tellers with NULL filler, accounts with an empty one.
    conn.query(
        "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers;\n"
        "CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));\n"
        "CREATE TABLE pgbench_tellers (tid int not null, bid int, tbalance int, filler char(84)) WITH (fillfactor=100);\n"
        "CREATE TABLE pgbench_accounts (aid int not null, bid int, abalance int, filler char(84)) WITH (fillfactor=100);\n"
        "CREATE TABLE pgbench_branches (bid int not null, bbalance int, filler char(88)) WITH (fillfactor=100);");
    const std::int64_t scale = sizes.pgbench_scale;
    copies.push_back({"pgbench_branches", "(bid, bbalance, filler)", scale, [](std::int64_t i, std::string& o) {
                        append_int(o, i + 1);
                        o += "\t0\t\\N\n";
                      }});
    copies.push_back({"pgbench_tellers", "(tid, bid, tbalance, filler)", scale * 10, [](std::int64_t i, std::string& o) {
                        append_int(o, i + 1);
                        o += '\t';
                        append_int(o, i / 10 + 1);
                        o += "\t0\t\\N\n";
                      }});
    copies.push_back({"pgbench_accounts", "(aid, bid, abalance, filler)", scale * 100000,
                      [](std::int64_t i, std::string& o) {
                        append_int(o, i + 1);
                        o += '\t';
                        append_int(o, i / 100000 + 1);
                        o += "\t0\t\n";
                      }});
    indexes.insert(indexes.end(), {"ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid)",
                                   "ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid)",
                                   "ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)"});
    analyze.insert(analyze.end(), {"VACUUM ANALYZE pgbench_branches", "VACUUM ANALYZE pgbench_tellers",
                                   "VACUUM ANALYZE pgbench_accounts", "VACUUM ANALYZE pgbench_history"});
  }

  if (want("purchases")) {
    const std::int64_t data_start = data_end - purchase_span_seconds;
    conn.query(
        "DROP TABLE IF EXISTS purchases, customers, products CASCADE;\n"
        "DROP SEQUENCE IF EXISTS purchases_purchase_id_seq;\n"
        "CREATE TABLE customers (customer_id bigint NOT NULL, name text NOT NULL, email text NOT NULL,\n"
        "  region text NOT NULL, created_at timestamptz NOT NULL);\n"
        "CREATE TABLE products (product_id bigint NOT NULL, name text NOT NULL, category text NOT NULL,\n"
        "  price numeric(10,2) NOT NULL);\n"
        "CREATE SEQUENCE purchases_purchase_id_seq;\n"
        "CREATE TABLE purchases (purchase_id bigint NOT NULL DEFAULT nextval('purchases_purchase_id_seq'),\n"
        "  customer_id bigint NOT NULL, product_id bigint NOT NULL, quantity int NOT NULL,\n"
        "  amount numeric(12,2) NOT NULL, region text NOT NULL, payment_mode text NOT NULL,\n"
        "  status text NOT NULL, purchase_time timestamptz NOT NULL) PARTITION BY RANGE (purchase_time);\n"
        "ALTER SEQUENCE purchases_purchase_id_seq OWNED BY purchases.purchase_id;\n" +
        purchases_partitions_sql(data_start, data_end));
    const std::int64_t customers = sizes.customers, products = sizes.products, purchases = sizes.purchases;
    copies.push_back({"customers", "(customer_id, name, email, region, created_at)", customers,
                      [data_end](std::int64_t i, std::string& o) {
                        const std::int64_t id = i + 1;
                        char num[24];
                        std::snprintf(num, sizeof num, "%lld", static_cast<long long>(id));
                        o += num;
                        o += "\tCustomer ";
                        o += num;
                        o += "\tcustomer";
                        o += num;
                        o += "@example.com\t";
                        o += region_of_customer(id);
                        o += '\t';
                        append_timestamp(o, data_end - static_cast<std::int64_t>(
                                                          mix64(seed_customers, static_cast<std::uint64_t>(id)) %
                                                          (3 * 365 * 86400ull)));
                        o += '\n';
                      }});
    static constexpr std::array<std::string_view, 10> categories{
        "books", "electronics", "garden", "grocery", "health", "home", "music", "sports", "toys", "fashion"};
    copies.push_back({"products", "(product_id, name, category, price)", products, [](std::int64_t i, std::string& o) {
                        const std::int64_t id = i + 1;
                        append_int(o, id);
                        o += "\tProduct ";
                        append_int(o, id);
                        o += '\t';
                        o += categories[mix64(seed_products, static_cast<std::uint64_t>(id)) % categories.size()];
                        o += '\t';
                        append_cents(o, price_cents_of_product(id));
                        o += '\n';
                      }});
    copies.push_back(
        {"purchases", "(purchase_id, customer_id, product_id, quantity, amount, region, payment_mode, status, purchase_time)",
         purchases, [=](std::int64_t i, std::string& o) {
           const std::uint64_t h1 = mix64(seed_purchases, static_cast<std::uint64_t>(i));
           const std::uint64_t h2 = mix64(seed_purchases + 7, static_cast<std::uint64_t>(i));
           const std::int64_t customer = 1 + static_cast<std::int64_t>(h1 % static_cast<std::uint64_t>(customers));
           const std::int64_t product = 1 + static_cast<std::int64_t>(h2 % static_cast<std::uint64_t>(products));
           const std::int64_t quantity = 1 + static_cast<std::int64_t>((h1 >> 40) % 5);
           // Ids grow with time, as in a real shop; rows arrive in partition order.
           const std::int64_t when = data_start + i * purchase_span_seconds / purchases;
           // Mostly delivered; recent purchases are still pending or shipped.
           const std::size_t status_pick = (h2 >> 40) % 100;
           std::string_view status = status_pick < 70 ? "delivered" : status_pick < 80 ? "shipped" : status_pick < 88 ? "paid"
                                   : status_pick < 94 ? "pending" : status_pick < 98 ? "cancelled" : "refunded";
           append_int(o, i + 1);
           o += '\t';
           append_int(o, customer);
           o += '\t';
           append_int(o, product);
           o += '\t';
           append_int(o, quantity);
           o += '\t';
           append_cents(o, price_cents_of_product(product) * quantity);
           o += '\t';
           o += region_of_customer(customer);
           o += '\t';
           o += payment_modes[(h1 >> 20) % payment_modes.size()];
           o += '\t';
           o += status;
           o += '\t';
           append_timestamp(o, when);
           o += '\n';
         }});
    indexes.insert(indexes.end(),
                   {"ALTER TABLE customers ADD PRIMARY KEY (customer_id)",
                    "ALTER TABLE products ADD PRIMARY KEY (product_id)",
                    "ALTER TABLE purchases ADD PRIMARY KEY (purchase_id, purchase_time)",
                    // latest-purchases: newest first, overall and per region.
                    "CREATE INDEX purchases_time_idx ON purchases (purchase_time DESC)",
                    "CREATE INDEX purchases_region_time_idx ON purchases (region, purchase_time DESC)",
                    "CREATE INDEX purchases_customer_idx ON purchases (customer_id)"});
    analyze.insert(analyze.end(), {"VACUUM ANALYZE customers", "VACUUM ANALYZE products", "VACUUM ANALYZE purchases"});
  }

  if (want("weather")) {
    conn.query(
        "DROP TABLE IF EXISTS weather;\n"
        "CREATE TABLE weather (location text NOT NULL, temperature real NOT NULL, humidity real NOT NULL,\n"
        "  wind_speed real NOT NULL, \"timestamp\" timestamptz NOT NULL);");
    const std::int64_t locations = sizes.locations, rows = sizes.weather_rows;
    const std::int64_t steps = (rows + locations - 1) / locations;
    const std::int64_t interval = std::max<std::int64_t>(1, weather_span_seconds / steps);
    copies.push_back({"weather", "(location, temperature, humidity, wind_speed, \"timestamp\")", rows,
                      [=](std::int64_t i, std::string& o) {
                        const std::int64_t loc = i % locations + 1;
                        const std::int64_t step = i / locations;
                        const std::int64_t when = data_end - (steps - step) * interval;
                        const std::uint64_t h = mix64(seed_weather, static_cast<std::uint64_t>(i));
                        const double base = -5.0 + static_cast<double>(mix64(seed_weather + 1, static_cast<std::uint64_t>(loc)) % 300) / 10.0;
                        const double daily = 8.0 * std::sin(2 * M_PI * static_cast<double>(when % 86400) / 86400.0);
                        o += location_name(loc);
                        o += '\t';
                        append_fixed(o, base + daily + (unit_of(h) - 0.5) * 4, 1);
                        o += '\t';
                        append_fixed(o, 20 + 80 * unit_of(h * 31 + 7), 1);
                        o += '\t';
                        append_fixed(o, 25 * unit_of(h * 17 + 3) * unit_of(h * 13 + 5), 1);
                        o += '\t';
                        append_timestamp(o, when);
                        o += '\n';
                      }});
    // Covering: after VACUUM the per-station average is an index-only scan
    // instead of one heap page per reading (readings of a station are spread out).
    indexes.push_back(
        "CREATE INDEX weather_location_time_idx ON weather (location, \"timestamp\") "
        "INCLUDE (temperature, humidity, wind_speed)");
    analyze.push_back("VACUUM ANALYZE weather");
  }

  if (vehicles) {
    conn.query(
        "DROP TABLE IF EXISTS vehicle_locations;\n"
        "CREATE TABLE vehicle_locations (vehicle_id int NOT NULL, recorded_at timestamptz NOT NULL,\n"
        "  position geography(Point, 4326) NOT NULL);");
    const std::int64_t vehicle_count = sizes.vehicles, rows = sizes.vehicle_rows;
    const std::int64_t steps = (rows + vehicle_count - 1) / vehicle_count;
    copies.push_back({"vehicle_locations", "(vehicle_id, recorded_at, position)", rows, [=](std::int64_t i, std::string& o) {
                        const std::int64_t vehicle = i % vehicle_count + 1;
                        const std::int64_t step = i / vehicle_count;
                        const std::uint64_t home = mix64(seed_vehicles, static_cast<std::uint64_t>(vehicle));
                        const std::uint64_t h = mix64(seed_vehicles + 1, static_cast<std::uint64_t>(i));
                        const geo_box& a = vehicle_area;
                        // Each vehicle roams around its home point.
                        const double lon = std::clamp(a.lon_min + (a.lon_max - a.lon_min) * unit_of(home) +
                                                          (unit_of(h) - 0.5) * 0.02, a.lon_min, a.lon_max);
                        const double lat = std::clamp(a.lat_min + (a.lat_max - a.lat_min) * unit_of(home * 31 + 1) +
                                                          (unit_of(h * 17 + 1) - 0.5) * 0.015, a.lat_min, a.lat_max);
                        append_int(o, vehicle);
                        o += '\t';
                        append_timestamp(o, data_end - (steps - step) * vehicle_interval_seconds);
                        o += "\tSRID=4326;POINT(";
                        append_fixed(o, lon, 6);
                        o += ' ';
                        append_fixed(o, lat, 6);
                        o += ")\n";
                      }});
    indexes.insert(indexes.end(),
                   {"CREATE INDEX vehicle_locations_position_idx ON vehicle_locations USING gist (position)",
                    "CREATE INDEX vehicle_locations_vehicle_time_idx ON vehicle_locations (vehicle_id, recorded_at DESC)"});
    analyze.push_back("VACUUM ANALYZE vehicle_locations");
  }

  std::uint64_t total = 0;
  for (const auto& c : copies) {
    total += static_cast<std::uint64_t>(c.rows);
    report.rows[c.table] = c.rows;
  }
  if (!copies.empty()) {
    say("loading " + human_count(static_cast<double>(total)) + " rows over " + std::to_string(jobs) +
        " COPY connections");
    const auto copy_start = steady::now();
    progress_meter meter(out, tty, total);
    parallel_copy(options.conninfo, copies, jobs, [&](std::uint64_t n) { meter.add(n); });
    meter.finish();
    report.copy_seconds = std::chrono::duration<double>(steady::now() - copy_start).count();
  }
  if (!indexes.empty()) {
    say("building " + std::to_string(indexes.size()) + " indexes and keys");
    run_parallel(options.conninfo, indexes, std::min(jobs, cores));
  }
  if (want("purchases"))
    conn.query("SELECT setval('purchases_purchase_id_seq', " + std::to_string(sizes.purchases) + ")");
  if (!analyze.empty()) {
    say("vacuum analyze");
    run_parallel(options.conninfo, analyze, std::min(jobs, cores));
  }

  // Record what is loaded: the workloads draw keys from these ranges.
  std::vector<std::pair<std::string, std::string>> meta{{"format", "1"}, {"scale", scale_text},
                                                        {"data_end", std::to_string(data_end)}};
  if (want("pgbench")) meta.emplace_back("pgbench_scale", std::to_string(sizes.pgbench_scale));
  if (want("purchases")) {
    meta.emplace_back("customers", std::to_string(sizes.customers));
    meta.emplace_back("products", std::to_string(sizes.products));
    meta.emplace_back("purchases", std::to_string(sizes.purchases));
  }
  if (want("weather")) {
    meta.emplace_back("locations", std::to_string(sizes.locations));
    meta.emplace_back("weather_rows", std::to_string(sizes.weather_rows));
  }
  if (vehicles) {
    meta.emplace_back("vehicles", std::to_string(sizes.vehicles));
    meta.emplace_back("vehicle_rows", std::to_string(sizes.vehicle_rows));
  }
  for (const auto& [k, v] : meta)
    conn.query("INSERT INTO pgsluice_bench_meta (key, value) VALUES ($1, $2) "
               "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
               {k, v});

  // Streaming replicas must have replayed the load before reads are balanced to them.
  say("waiting for replicas to replay the load");
  const bool caught_up = wait_for_replay(conn, std::chrono::minutes(5));
  if (!caught_up) report.notes.push_back("replicas had not replayed the load after 5 minutes");

  report.seconds = std::chrono::duration<double>(steady::now() - started).count();
  return report;
}

}  // namespace pgsluice::bench
