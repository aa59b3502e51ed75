// The bench data sets: pgbench tables, the purchases schema, weather readings and vehicle locations; sizes, values, loading.
//
// `pgsluice bench init` creates them with parallel COPY streams (rows are
// generated on the fly from the row number, so hundreds of millions of rows
// never sit in memory) and records what it loaded in pgsluice_bench_meta; the
// workloads read that table back (probe_dataset) so every target of a run draws
// parameters from the same key ranges.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace pgsluice::bench {

// Row counts for a --scale (fractional scales give small test data sets).
struct dataset_sizes {
  double scale = 1;
  std::int64_t pgbench_scale = 10;     // pgbench -s: 100,000 accounts each
  std::int64_t customers = 20000;
  std::int64_t products = 2000;
  std::int64_t purchases = 400000;     // spread over the 12 months before the load
  std::int64_t locations = 1000;
  std::int64_t weather_rows = 500000;  // readings spread over the 30 days before the load
  std::int64_t vehicles = 2000;
  std::int64_t vehicle_rows = 200000;  // positions, one per vehicle every 30 s

  static dataset_sizes for_scale(double scale);
};

// Values shared by the loader and the workloads (a region filter must match data).
inline constexpr std::array<std::string_view, 8> regions{"north-america", "south-america", "europe", "africa",
                                                         "middle-east",   "south-asia",    "east-asia", "oceania"};
inline constexpr std::array<std::string_view, 5> payment_modes{"card", "paypal", "bank_transfer", "cash", "voucher"};
inline constexpr std::array<std::string_view, 6> purchase_statuses{"pending", "paid",      "shipped",
                                                                   "delivered", "cancelled", "refunded"};
// Vehicles drive around a city-sized box (Paris): WGS 84 degrees.
struct geo_box {
  double lon_min, lon_max, lat_min, lat_max;
};
inline constexpr geo_box vehicle_area{2.20, 2.50, 48.80, 48.92};

std::string_view region_of_customer(std::int64_t customer_id) noexcept;
std::int64_t price_cents_of_product(std::int64_t product_id) noexcept;
std::string location_name(std::int64_t index);   // 1-based: "station-0001"

// Data set names for --datasets.
inline constexpr std::array<std::string_view, 4> dataset_names{"pgbench", "purchases", "weather", "vehicles"};

// What a database holds, read from pgsluice_bench_meta (or, for tables made by
// `pgbench -i`, from pgbench_branches).
struct dataset_info {
  bool has_pgbench = false;
  bool has_purchases = false;
  bool has_weather = false;
  bool has_vehicles = false;
  dataset_sizes sizes;                 // counts of what is present
};

// Reads what is loaded through `conninfo`. Throws stack_error / sql_error when it cannot connect.
dataset_info probe_dataset(const std::string& conninfo);

struct init_options {
  std::string conninfo;                // a user allowed to create tables (superuser for PostGIS)
  double scale = 1;
  unsigned jobs = 0;                   // parallel COPY connections; 0 = cores + 1 (at least 2)
  std::set<std::string> datasets{"pgbench", "purchases", "weather", "vehicles"};
  std::ostream* out = nullptr;         // progress and notes; nullptr = silent
  int progress_tty = -1;               // -1: detect (isatty(stdout)); 0: plain lines; 1: bar
};

struct init_report {
  std::map<std::string, std::int64_t> rows;   // table -> rows loaded
  std::vector<std::string> notes;             // e.g. "PostGIS unavailable: vehicles skipped"
  double seconds = 0;
  double copy_seconds = 0;
};

// Drops and recreates the selected data sets, loads them with parallel COPY,
// builds indexes, VACUUM ANALYZEs, records pgsluice_bench_meta and waits until
// streaming replicas have replayed it all. Throws on failure.
init_report init_datasets(const init_options& options);

// The table the read-after-write workload writes to and reads back from:
// (run_id, seq) primary key, a short text, the time written.
inline constexpr std::string_view read_after_write_table = "pgsluice_bench_writes";

// Creates the read-after-write table if missing and empties it (every run uses fresh keys,
// so old rows are only weight), then waits until the streaming replicas of the server
// behind `conninfo` have replayed that, so that no read balanced to one of them fails on
// a missing table. `bench init` calls it too. Throws stack_error / sql_error.
void ensure_read_after_write_table(const std::string& conninfo);

// A table being loaded: `row(i, out)` appends line i (0-based) in COPY text format.
struct copy_job {
  std::string table;
  std::string columns;                 // "(a, b, c)"
  std::int64_t rows = 0;
  std::function<void(std::int64_t, std::string&)> row;
};

// Streams the jobs over `connections` parallel COPY connections in chunks;
// `on_rows(n)` is called (from worker threads) as rows are sent.
void parallel_copy(const std::string& conninfo, const std::vector<copy_job>& jobs, unsigned connections,
                   const std::function<void(std::uint64_t)>& on_rows);

// Renders "1.23M" / "45.6k" / "999".
std::string human_count(double n);

}  // namespace pgsluice::bench
