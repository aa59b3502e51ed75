// The local bench stack: PostgreSQL primary + replicas, PgBouncer, Pgpool-II, PgBouncer -> Pgpool-II and pgsluice, under one work dir.
//
// TLS variants: `pgbouncer-tls` and `pgsluice-tls` are the same PgBouncer and pgsluice
// processes reached with sslmode=require (both terminate TLS from clients, with a certificate
// from a CA the stack makes under <work dir>/tls; plaintext to the server), so the cost of TLS
// is measured against the plaintext targets in the same run.
//
// Unix-socket variants: `pgbouncer-unix` and `pgsluice-unix` are the same PgBouncer and pgsluice
// processes serving a second database, `<db>_unix`, whose server connections go to the primary
// over its Unix socket (PgBouncer: `host=<socket dir>` in [databases]; pgsluice: host = the same
// directory), so both poolers are compared with the same kind of server connection and the
// cost of loopback TCP towards the server is measured against the plain targets in one run.
//
// One pgsluice process serves two targets: `pgsluice` (the bench database, transaction
// pooling in front of the primary, like PgBouncer) and `pgsluice-routed` (the database
// `<db>_routed`: the same server database over the primary and the replicas, reads to
// the replicas, read-your-writes), next to Pgpool-II's load balancing.
//
// Built on pg_cluster and config_server (bench/cluster.hpp): the cluster keeps its
// own cluster.json; the poolers are recorded in stack.json next to it, so
// `stack up` is idempotent (running servers are adopted, stopped ones restarted
// on their old ports), `stack status` reads the state back and `stack down`
// stops exactly what was started.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pgsluice::bench {

class pg_cluster;

struct stack_options {
  std::filesystem::path work_dir;        // empty: default_stack_dir()
  int replicas = 2;
  int max_connections = 1500;            // direct runs with 1,000 clients next to the poolers' pools
  std::string shared_buffers = "512MB";
  bool durable = false;                  // fsync on (off by default: disposable data, steadier numbers)
  int pool_size = 20;                    // PgBouncer's and pgsluice's default_pool_size
  int pgpool_children = 128;             // Pgpool-II num_init_children (clients served at once)
  std::uint32_t max_clients = 11000;     // PgBouncer's and pgsluice's max_client_conn
  bool with_pgsluice = true;
  std::filesystem::path pgsluice_binary; // empty: this executable (/proc/self/exe)
};

// A server of the cluster, reached directly: where a target's reads are counted.
struct stack_node {
  std::string name;                      // "primary", "replica_1", ...
  std::string url;                       // admin user, bench database
};

// One benchmark target of the stack.
struct stack_target {
  std::string name;                      // direct, pgbouncer, pgpool, pgbouncer-pgpool, pgsluice, pgsluice-routed
  std::string url;                       // postgresql://... with the password (for the load generator)
  std::uint16_t port = 0;
  std::vector<pid_t> pids;               // processes whose memory is reported (and their children)
  std::string memory_scope;              // what those are, for the report
  bool running = false;
  std::string problem;                   // why it is not running, when known
  std::vector<stack_node> nodes;         // targets spreading reads over the cluster: every node; else empty
};

// <cwd>/.pgsluice/stack when the postgres OS user can reach it, else /var/tmp/pgsluice-stack.
std::filesystem::path default_stack_dir();

class local_stack {
 public:
  // Starts (or adopts) everything; progress lines go to `log`. A pgsluice that
  // fails to start is reported in its target's `problem`, not thrown: the bench
  // then shows that target's failures. Throws stack_error for the rest.
  static std::unique_ptr<local_stack> up(const stack_options& options, std::ostream& log);
  // Reads a stack started earlier; nullptr when `work_dir` holds none.
  static std::unique_ptr<local_stack> attach(const std::filesystem::path& work_dir);

  ~local_stack();
  local_stack(const local_stack&) = delete;
  local_stack& operator=(const local_stack&) = delete;

  // Stops the poolers and the cluster (data kept); `destroy` also removes the work dir.
  void down(bool destroy, std::ostream& log);

  std::vector<stack_target> targets();
  std::optional<stack_target> target(const std::string& name);
  // The primary as the admin (superuser) user: for init and explain.
  std::string admin_url() const;
  const std::filesystem::path& work_dir() const { return work_dir_; }
  // One line per server: name, port, pid, state.
  std::string status_text();
  std::vector<std::string> notes() const;   // e.g. "fsync=off"

 private:
  struct impl;
  explicit local_stack(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
  std::filesystem::path work_dir_;
};

// Builtin target names, in report order.
const std::vector<std::string>& stack_target_names();

// The client-facing database of the pgsluice-routed target: "<database>_routed".
std::string routed_database(const std::string& database);
// The client-facing database of the -unix targets: "<database>_unix".
std::string unix_database(const std::string& database);
// The client-facing database of the pgsluice-pipelined target (pipeline_depth = 8): "<database>_pipelined".
std::string pipelined_database(const std::string& database);

// The pgsluice config the stack runs: transaction pooling in front of the primary for
// `database`; with replicas, also routed_database(database) over the primary and them; with
// `tls_cert`/`tls_key`, TLS for the clients that ask (client_tls_mode = "allow": the -tls
// targets), plaintext for the others; with `socket_dir`, also unix_database(database) in front of
// the primary through its Unix socket in that directory (the -unix targets).
std::string pgsluice_stack_config(std::uint16_t listen_port, std::uint16_t primary_port, const std::string& database,
                                  const std::vector<std::pair<std::string, std::string>>& users, int pool_size,
                                  std::uint32_t max_clients, const std::vector<std::uint16_t>& replica_ports = {},
                                  const std::filesystem::path& tls_cert = {}, const std::filesystem::path& tls_key = {},
                                  const std::filesystem::path& socket_dir = {});

}  // namespace pgsluice::bench
