// Built-in workloads: pgbench scripts compiled by the script engine and the seed workloads as parameter generators.
#include "bench/workloads.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>

#include "bench/script.hpp"
#include "bench/sql_file.hpp"

namespace pgsluice::bench {

const std::string_view pgbench_select_only_script =
    "\\set aid random(1, 100000 * :scale)\n"
    "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n";

const std::string_view pgbench_tpcb_script =
    "\\set aid random(1, 100000 * :scale)\n"
    "\\set bid random(1, 1 * :scale)\n"
    "\\set tid random(1, 10 * :scale)\n"
    "\\set delta random(-5000, 5000)\n"
    "BEGIN;\n"
    "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
    "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
    "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;\n"
    "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n"
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\n"
    "END;\n";

std::string_view to_string(key_distribution d) noexcept {
  switch (d) {
    case key_distribution::random: return "random";
    case key_distribution::fixed: return "fixed";
    case key_distribution::weighted: return "weighted";
  }
  return "?";
}

std::optional<key_distribution> parse_key_distribution(std::string_view s) noexcept {
  if (s == "random" || s == "uniform") return key_distribution::random;
  if (s == "fixed") return key_distribution::fixed;
  if (s == "weighted" || s == "zipf" || s == "zipfian") return key_distribution::weighted;
  return std::nullopt;
}

const std::vector<workload_info>& builtin_workloads() {
  static const std::vector<workload_info> list{
      {"select-only", "pgbench", "pgbench -S: one primary-key SELECT on pgbench_accounts"},
      {"tpcb", "pgbench", "pgbench's TPC-B-like script: 3 UPDATEs, a SELECT and an INSERT in a transaction"},
      {"point-select", "purchases", "one customer by primary key (--distribution)"},
      {"latest-purchases", "purchases",
       "newest purchases joined with customers and products, by region (--region) with LIMIT (--limit)"},
      {"insert-purchase", "purchases", "one INSERT into the month-partitioned purchases table"},
      {"purchases-mixed", "purchases", "latest-purchases or insert-purchase, --read-ratio of them reads"},
      {"read", "purchases, weather, vehicles",
       "reads over every data set loaded: latest purchases (--region, --limit), a customer by key, a weather "
       "station's averages (--distribution), vehicles within a radius (ST_DWithin) and in a bounding box"},
      {"write", "purchases, weather, vehicles",
       "writes over every data set loaded: a purchase, a weather reading (--distribution), a vehicle position"},
      {"mixed", "purchases, weather, vehicles", "read or write, --read-ratio of them reads (e.g. 80 or 0.8)"},
      {"weather-avg", "weather", "average temperature, humidity and top wind of one station (--distribution)"},
      {"spatial", "vehicles", "vehicles within a radius (ST_DWithin) or inside a bounding box (&&), half each"},
      {"read-after-write", "",
       "INSERT a row with a new key, then SELECT it back by key (two autocommit statements); a read that misses "
       "its row is a stale read"},
  };
  return list;
}

bool is_script_path(std::string_view name) noexcept {
  return name.ends_with(".sql") || name.find('/') != std::string_view::npos;
}

std::string validate_workload_options(const workload_options& o) {
  if (!o.sql_file && !is_script_path(o.name)) {
    const auto& list = builtin_workloads();
    if (std::none_of(list.begin(), list.end(), [&](const workload_info& w) { return w.name == o.name; })) {
      std::string known;
      for (const auto& w : list) known += (known.empty() ? "" : ", ") + std::string(w.name);
      return "unknown workload '" + o.name + "' (built in: " + known + "; or the path of a .sql script)";
    }
  }
  if (!(o.read_ratio >= 0 && o.read_ratio <= 1)) return "--read-ratio must be between 0 and 1";
  if (!(o.zipf_exponent > 0 && o.zipf_exponent <= 10)) return "the zipf exponent must be in (0, 10]";
  if (o.limit < 1 || o.limit > 100000) return "--limit must be between 1 and 100000";
  if (o.region != "random" && o.region != "none" &&
      std::find(regions.begin(), regions.end(), o.region) == regions.end()) {
    std::string known;
    for (auto r : regions) known += ", " + std::string(r);
    return "unknown region '" + o.region + "' (random, none" + known + ")";
  }
  return {};
}

namespace {

// The seed workloads: fixed statements, parameters drawn per transaction.
class seed_workload final : public transaction_source {
 public:
  enum class kind { point_select, latest_purchases, insert_purchase, purchases_mixed, weather_avg, spatial, read, write,
                    mixed };

  seed_workload(kind k, const workload_options& o, const dataset_info& data)
      : kind_(k), options_(o), sizes_(data.sizes),
        customer_zipf_(static_cast<std::uint64_t>(data.sizes.customers), o.zipf_exponent),
        location_zipf_(static_cast<std::uint64_t>(data.sizes.locations), o.zipf_exponent) {
    statements_ = {
        {"SELECT p.purchase_id, p.purchase_time, p.amount, p.status, p.payment_mode, c.name AS customer,\n"
         "       pr.name AS product, pr.price\n"
         "FROM purchases p\n"
         "JOIN customers c ON c.customer_id = p.customer_id\n"
         "JOIN products pr ON pr.product_id = p.product_id\n"
         "WHERE p.region = $1\n"
         "ORDER BY p.purchase_time DESC\n"
         "LIMIT $2",
         2},
        {"SELECT p.purchase_id, p.purchase_time, p.amount, p.status, p.payment_mode, c.name AS customer,\n"
         "       pr.name AS product, pr.price\n"
         "FROM purchases p\n"
         "JOIN customers c ON c.customer_id = p.customer_id\n"
         "JOIN products pr ON pr.product_id = p.product_id\n"
         "ORDER BY p.purchase_time DESC\n"
         "LIMIT $1",
         1},
        {"SELECT customer_id, name, email, region, created_at FROM customers WHERE customer_id = $1", 1},
        // Explicit casts: the same parameter feeds two contexts, and extended mode
        // must infer one type for each.
        {"INSERT INTO purchases (customer_id, product_id, quantity, amount, region, payment_mode, status, purchase_time)\n"
         "VALUES ($1::bigint, $2::bigint, $3::int,\n"
         "        (SELECT price FROM products WHERE product_id = $2::bigint) * $3::int,\n"
         "        $4::text, $5::text, 'pending', now())",
         5},
        {"SELECT location, count(*) AS readings, avg(temperature) AS avg_temperature, avg(humidity) AS avg_humidity,\n"
         "       max(wind_speed) AS max_wind_speed\n"
         "FROM weather WHERE location = $1 GROUP BY location",
         1},
        {"SELECT vehicle_id, recorded_at, ST_X(position::geometry) AS lon, ST_Y(position::geometry) AS lat\n"
         "FROM vehicle_locations\n"
         "WHERE ST_DWithin(position, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, $3)\n"
         "LIMIT 100",
         3},
        {"SELECT vehicle_id, recorded_at, ST_X(position::geometry) AS lon, ST_Y(position::geometry) AS lat\n"
         "FROM vehicle_locations\n"
         "WHERE position && ST_MakeEnvelope($1, $2, $3, $4, 4326)::geography\n"
         "LIMIT 100",
         4},
        {"INSERT INTO weather (location, temperature, humidity, wind_speed, \"timestamp\")\n"
         "VALUES ($1::text, $2::real, $3::real, $4::real, now())",
         4},
        {"INSERT INTO vehicle_locations (vehicle_id, recorded_at, position)\n"
         "VALUES ($1::int, now(), ST_SetSRID(ST_MakePoint($2::float8, $3::float8), 4326)::geography)",
         3},
    };
    // The requests read / write / mixed choose from: those of the data sets loaded.
    if (data.has_purchases) {
      reads_.insert(reads_.end(), {&seed_workload::latest, &seed_workload::point_select});
      writes_.push_back(&seed_workload::insert);
    }
    if (data.has_weather) {
      reads_.push_back(&seed_workload::weather);
      writes_.push_back(&seed_workload::insert_weather);
    }
    if (data.has_vehicles) {
      reads_.insert(reads_.end(), {&seed_workload::radius, &seed_workload::bbox});
      writes_.push_back(&seed_workload::insert_vehicle);
    }
  }

  bool has_requests() const noexcept { return !reads_.empty(); }

  const std::vector<request_kind>& request_kinds() const override {
    static const std::vector<request_kind> kinds{
        {"read", "latest-purchases"}, {"read", "point-select"},   {"write", "insert-purchase"},
        {"read", "weather-avg"},      {"read", "vehicles-within"}, {"read", "vehicles-in-box"},
        {"write", "insert-weather"},  {"write", "insert-vehicle-position"}};
    return kinds;
  }

  const std::vector<statement_def>& statements() const override { return statements_; }

  void next(rng& r, transaction& out) const override {
    switch (kind_) {
      case kind::point_select: return point_select(r, out);
      case kind::latest_purchases: return latest(r, out);
      case kind::insert_purchase: return insert(r, out);
      case kind::purchases_mixed: return r.unit() < options_.read_ratio ? latest(r, out) : insert(r, out);
      case kind::weather_avg: return weather(r, out);
      case kind::spatial: return r.below(2) == 0 ? radius(r, out) : bbox(r, out);
      case kind::read: return pick_from(reads_, r, out);
      case kind::write: return pick_from(writes_, r, out);
      case kind::mixed: return pick_from(r.unit() < options_.read_ratio ? reads_ : writes_, r, out);
    }
  }

 private:
  enum statement_index : std::uint32_t {
    latest_region, latest_all, point, insert_stmt, weather_stmt, radius_stmt, bbox_stmt, insert_weather_stmt,
    insert_vehicle_stmt
  };
  // Indexes into request_kinds().
  enum request_index : std::uint32_t {
    latest_request, point_request, insert_request, weather_request, radius_request, bbox_request,
    insert_weather_request, insert_vehicle_request
  };
  using generator = void (seed_workload::*)(rng&, transaction&) const;

  void pick_from(const std::vector<generator>& pool, rng& r, transaction& out) const {
    (this->*pool[r.below(pool.size())])(r, out);
  }

  std::int64_t pick(rng& r, std::int64_t n, const zipf_sampler& z) const {
    switch (options_.distribution) {
      case key_distribution::fixed: return 1;
      case key_distribution::weighted: return static_cast<std::int64_t>(z(r));
      case key_distribution::random: break;
    }
    return r.uniform(1, n);
  }

  static std::string fixed(double v, int decimals) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
  }

  void point_select(rng& r, transaction& out) const {
    out.set_kind(point_request);
    out.add(point, 1).params[0] = std::to_string(pick(r, sizes_.customers, customer_zipf_));
  }

  void latest(rng& r, transaction& out) const {
    out.set_kind(latest_request);
    if (options_.region == "none") {
      out.add(latest_all, 1).params[0] = std::to_string(options_.limit);
      return;
    }
    command& c = out.add(latest_region, 2);
    c.params[0] = options_.region == "random" ? std::string(regions[r.below(regions.size())]) : options_.region;
    c.params[1] = std::to_string(options_.limit);
  }

  void insert(rng& r, transaction& out) const {
    const std::int64_t customer = r.uniform(1, sizes_.customers);
    out.set_kind(insert_request);
    command& c = out.add(insert_stmt, 5);
    c.params[0] = std::to_string(customer);
    c.params[1] = std::to_string(r.uniform(1, sizes_.products));
    c.params[2] = std::to_string(r.uniform(1, 5));
    c.params[3] = std::string(region_of_customer(customer));
    c.params[4] = std::string(payment_modes[r.below(payment_modes.size())]);
  }

  void weather(rng& r, transaction& out) const {
    out.set_kind(weather_request);
    out.add(weather_stmt, 1).params[0] = location_name(pick(r, sizes_.locations, location_zipf_));
  }

  void radius(rng& r, transaction& out) const {
    const geo_box& a = vehicle_area;
    out.set_kind(radius_request);
    command& c = out.add(radius_stmt, 3);
    c.params[0] = fixed(r.uniform_real(a.lon_min, a.lon_max), 6);
    c.params[1] = fixed(r.uniform_real(a.lat_min, a.lat_max), 6);
    c.params[2] = std::to_string(r.uniform(200, 1000));  // metres
  }

  void bbox(rng& r, transaction& out) const {
    const geo_box& a = vehicle_area;
    const double w = r.uniform_real(0.002, 0.01), h = r.uniform_real(0.002, 0.008);
    const double lon = r.uniform_real(a.lon_min, a.lon_max - w), lat = r.uniform_real(a.lat_min, a.lat_max - h);
    out.set_kind(bbox_request);
    command& c = out.add(bbox_stmt, 4);
    c.params[0] = fixed(lon, 6);
    c.params[1] = fixed(lat, 6);
    c.params[2] = fixed(lon + w, 6);
    c.params[3] = fixed(lat + h, 6);
  }

  // A new reading of a station chosen as weather-avg chooses them (--distribution).
  void insert_weather(rng& r, transaction& out) const {
    out.set_kind(insert_weather_request);
    command& c = out.add(insert_weather_stmt, 4);
    c.params[0] = location_name(pick(r, sizes_.locations, location_zipf_));
    c.params[1] = fixed(r.uniform_real(-10, 35), 1);
    c.params[2] = fixed(r.uniform_real(20, 100), 1);
    c.params[3] = fixed(r.uniform_real(0, 25), 1);
  }

  void insert_vehicle(rng& r, transaction& out) const {
    const geo_box& a = vehicle_area;
    out.set_kind(insert_vehicle_request);
    command& c = out.add(insert_vehicle_stmt, 3);
    c.params[0] = std::to_string(r.uniform(1, sizes_.vehicles));
    c.params[1] = fixed(r.uniform_real(a.lon_min, a.lon_max), 6);
    c.params[2] = fixed(r.uniform_real(a.lat_min, a.lat_max), 6);
  }

  kind kind_;
  workload_options options_;
  dataset_sizes sizes_;
  zipf_sampler customer_zipf_;
  zipf_sampler location_zipf_;
  std::vector<statement_def> statements_;
  std::vector<generator> reads_, writes_;
};

// Read-after-write: each request INSERTs a row under a key no other request uses, then
// reads it back by that key, each statement in autocommit, on the same connection. A
// router that sends the read to a replica which has not replayed the INSERT yet returns
// no row: the load generator counts a stale read (statement_def::reads_own_write).
// Keys are (run, seq): `run` is drawn once per workload object, `seq` from one counter
// shared by every client, so targets of one bench run never collide with each other or
// with an earlier run.
class read_after_write_workload final : public transaction_source {
 public:
  explicit read_after_write_workload(std::int64_t run) : run_(std::to_string(run)) {
    statements_ = {
        {std::string("INSERT INTO ") + std::string(read_after_write_table) +
             " (run_id, seq, client_tag) VALUES ($1, $2, $3)",
         3},
        {std::string("SELECT seq, client_tag FROM ") + std::string(read_after_write_table) +
             " WHERE run_id = $1 AND seq = $2",
         2, true},
    };
  }

  const std::vector<statement_def>& statements() const override { return statements_; }

  void next(rng& r, transaction& out) const override {
    const std::string seq = std::to_string(next_seq_.fetch_add(1, std::memory_order_relaxed));
    command& write = out.add(0, 3);
    write.params[0] = run_;
    write.params[1] = seq;
    write.params[2] = "t" + std::to_string(r.below(1000000));  // text, so simple and extended bind alike
    command& read = out.add(1, 2);
    read.params[0] = run_;
    read.params[1] = seq;
  }

 private:
  std::string run_;
  mutable std::atomic<std::int64_t> next_seq_{1};  // the one piece of state shared by the clients
  std::vector<statement_def> statements_;
};

// A run key unlikely to repeat across processes: random bits mixed with the clock.
std::int64_t new_run_key() {
  std::random_device device;
  const auto now = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  const std::uint64_t bits = (static_cast<std::uint64_t>(device()) << 32 | device()) ^ now;
  return static_cast<std::int64_t>(bits & 0x3fffffffffffffffULL);
}

[[noreturn]] void missing(std::string_view workload, std::string_view dataset) {
  throw std::invalid_argument("workload " + std::string(workload) + " needs the " + std::string(dataset) +
                              " data set, which this database does not hold: run `pgsluice bench init` "
                              "(with --datasets " + std::string(dataset) + ")");
}

}  // namespace

std::shared_ptr<const transaction_source> make_workload(const workload_options& o, const dataset_info& data) {
  if (const std::string problem = validate_workload_options(o); !problem.empty()) throw std::invalid_argument(problem);
  std::map<std::string, std::int64_t> variables{{"scale", std::max<std::int64_t>(1, data.sizes.pgbench_scale)}};
  for (const auto& [k, v] : o.variables) variables[k] = v;

  if (o.sql_file || is_script_path(o.name)) {
    std::ifstream in(o.name);
    if (!in) throw std::invalid_argument("cannot read " + std::string(o.sql_file ? "--sql-file " : "script file ") + o.name);
    std::stringstream text;
    text << in.rdbuf();
    if (o.sql_file) return make_sql_file_workload(o.name, text.str(), variables);
    auto w = std::make_shared<script_workload>();
    w->add_script(o.name, text.str(), 1, variables);
    return w;
  }
  if (o.name == "read-after-write") return std::make_shared<read_after_write_workload>(new_run_key());
  if (o.name == "select-only" || o.name == "tpcb") {
    if (!data.has_pgbench) missing(o.name, "pgbench");
    auto w = std::make_shared<script_workload>();
    w->add_script(o.name, o.name == "tpcb" ? pgbench_tpcb_script : pgbench_select_only_script, 1, variables);
    return w;
  }
  using k = seed_workload::kind;
  static const std::map<std::string_view, std::pair<k, std::string_view>> seeds{
      {"point-select", {k::point_select, "purchases"}},     {"latest-purchases", {k::latest_purchases, "purchases"}},
      {"insert-purchase", {k::insert_purchase, "purchases"}}, {"purchases-mixed", {k::purchases_mixed, "purchases"}},
      {"weather-avg", {k::weather_avg, "weather"}},          {"spatial", {k::spatial, "vehicles"}},
      {"read", {k::read, ""}},                               {"write", {k::write, ""}},
      {"mixed", {k::mixed, ""}}};
  const auto& [kind, dataset] = seeds.at(o.name);
  const bool present = dataset.empty()        ? true
                       : dataset == "purchases" ? data.has_purchases
                       : dataset == "weather"   ? data.has_weather
                                                : data.has_vehicles;
  if (!present) missing(o.name, dataset);
  auto w = std::make_shared<seed_workload>(kind, o, data);
  if (dataset.empty() && !w->has_requests()) missing(o.name, "purchases, weather or vehicles");
  return w;
}

}  // namespace pgsluice::bench
