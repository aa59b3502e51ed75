// The test harness itself against real servers: replication, SCRAM and MD5 logins, PgBouncer and Pgpool-II.
#include "tests/harness/harness.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <set>
#include <string>

namespace {

using namespace std::chrono_literals;
using pgsluice::bench::poll_until;
namespace t = pgsluice::test;

TEST(cluster, primary_and_two_replicas_are_up_in_their_roles) {
    auto& c = t::cluster();
    ASSERT_EQ(c.node_count(), 3u);
    EXPECT_EQ(c.replica_indexes().size(), 2u);
    std::set<std::uint16_t> ports;
    for (std::size_t i = 0; i < c.node_count(); ++i) {
        ports.insert(c.port(i));
        const bool replica = i != c.primary_index();
        EXPECT_EQ(c.exec_sql(i, "SELECT pg_is_in_recovery()").at(0).at(0), replica ? "t" : "f") << c.node(i).name;
        EXPECT_EQ(c.exec_sql(i, "SHOW port").at(0).at(0), std::to_string(c.port(i)));
        EXPECT_EQ(c.exec_sql(i, "SHOW listen_addresses").at(0).at(0), "127.0.0.1");
    }
    EXPECT_EQ(ports.size(), 3u) << "every node has its own port";
    // Both replicas stream from their slots.
    const auto rows = c.exec_sql(c.primary_index(),
                                 "SELECT s.slot_name, r.state FROM pg_replication_slots s "
                                 "JOIN pg_stat_replication r ON r.pid = s.active_pid ORDER BY 1");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0][0], "replica_1");
    EXPECT_EQ(rows[1][0], "replica_2");
    EXPECT_EQ(rows[0][1], "streaming");
    EXPECT_EQ(rows[1][1], "streaming");
}

TEST(cluster, a_write_on_the_primary_becomes_visible_on_both_replicas) {
    auto& c = t::cluster();
    const auto admin = c.admin().name;
    auto primary = t::connect(c.conninfo(c.primary_index(), admin));
    primary.query("CREATE TABLE IF NOT EXISTS harness_replication (id int PRIMARY KEY, note text)");
    const auto token = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    primary.query("INSERT INTO harness_replication VALUES ($1::bigint % 1000000000, $2)", {token, token});
    for (std::size_t r : c.replica_indexes()) {
        auto replica = t::connect(c.conninfo(r, admin));
        std::string last;
        const bool seen = poll_until(30s, 20ms, [&] {
            try {
                const auto rows = replica.query("SELECT note FROM harness_replication WHERE note = $1", {token});
                return !rows.empty();
            } catch (const t::sql_error& e) {
                last = e.what(); // the table itself may not have been replayed yet
                return false;
            }
        });
        EXPECT_TRUE(seen) << c.node(r).name << " never showed the row; last error: " << last;
        // A replica refuses writes: it really is a hot standby.
        try {
            replica.query("INSERT INTO harness_replication VALUES (-1, 'x')");
            ADD_FAILURE() << "write accepted by " << c.node(r).name;
        } catch (const t::sql_error& e) {
            EXPECT_EQ(e.sqlstate(), "25006") << e.what(); // read_only_sql_transaction
        }
    }
}

// Logging in with the right and a wrong password, on every node: the exact refusal
// clients see (docs: 55.8 error fields; LOCAL-STACKS.md).
void check_login(const std::string& user, const std::string& expected_method) {
    auto& c = t::cluster();
    const auto stored = c.exec_sql(c.primary_index(), "SELECT rolpassword FROM pg_authid WHERE rolname = '" + user + "'");
    ASSERT_EQ(stored.size(), 1u);
    EXPECT_TRUE(stored[0][0]->starts_with(expected_method == "md5" ? "md5" : "SCRAM-SHA-256$")) << *stored[0][0];
    for (std::size_t i = 0; i < c.node_count(); ++i) {
        auto ok = t::try_connect(c.conninfo(i, user));
        ASSERT_TRUE(ok.ok()) << user << " on " << c.node(i).name << ": " << ok.raw_error;
        EXPECT_EQ(ok.conn.scalar("SELECT current_user"), user);

        auto bad = t::try_connect(c.conninfo(i, user, std::string("wrong-password")));
        ASSERT_FALSE(bad.ok());
        EXPECT_EQ(bad.severity, "FATAL") << bad.raw_error;
        EXPECT_EQ(bad.sqlstate, "28P01") << bad.raw_error;
        EXPECT_EQ(bad.message, "password authentication failed for user \"" + user + "\"") << bad.raw_error;

        // The exception names the target without its password, in either conninfo form.
        const std::string url = "postgresql://" + user + ":wrong-secret-42@127.0.0.1:" +
                                std::to_string(c.port(i)) + "/" + c.database() + "?sslmode=disable";
        for (const auto& info : {url, c.conninfo(i, user, std::string("wrong-secret-42"))}) {
            try {
                (void)t::connect(info);
                ADD_FAILURE() << "a wrong password logged in";
            } catch (const t::sql_error& e) {
                const std::string what = e.what();
                EXPECT_EQ(what.find("wrong-secret-42"), std::string::npos) << what;
                EXPECT_NE(what.find("28P01"), std::string::npos) << what;
            }
        }
    }
}

TEST(cluster, scram_user_logs_in_and_a_wrong_password_gets_28P01) {
    check_login(t::cluster().user("sluice_scram").name, "scram");
}

TEST(cluster, md5_user_logs_in_and_a_wrong_password_gets_28P01) {
    check_login(t::cluster().user("sluice_md5").name, "md5");
}

TEST(cluster, the_method_used_is_the_one_pg_hba_names) {
    auto& c = t::cluster();
    // pg_stat_activity does not show the method; pg_hba_file_rules does, per line.
    const auto rows = c.exec_sql(c.primary_index(),
                                 "SELECT user_name[1], auth_method FROM pg_hba_file_rules "
                                 "WHERE type = 'host' AND 'all' = ANY(database) ORDER BY line_number");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0][0], "sluice_md5");
    EXPECT_EQ(rows[0][1], "md5");
    EXPECT_EQ(rows[1][0], "all");
    EXPECT_EQ(rows[1][1], "scram-sha-256");
}

TEST(cluster, state_file_reads_back_what_runs) {
    auto& c = t::cluster();
    // The ephemeral test cluster keeps no file; write one and read it back as `status` would.
    c.state().save();
    auto again = pgsluice::bench::cluster_state::load(c.work_dir());
    ASSERT_EQ(again.nodes.size(), c.node_count());
    for (std::size_t i = 0; i < c.node_count(); ++i) {
        EXPECT_EQ(again.nodes[i].port, c.port(i));
        EXPECT_EQ(again.nodes[i].data_dir, c.node(i).data_dir);
        ASSERT_TRUE(again.nodes[i].process.has_value());
        EXPECT_TRUE(pgsluice::bench::is_alive(*again.nodes[i].process));
        // The recorded pid is the postmaster's own, as postmaster.pid says.
        const auto pidfile = pgsluice::bench::read_file_text(c.node(i).data_dir / "postmaster.pid");
        EXPECT_EQ(pidfile.substr(0, pidfile.find('\n')), std::to_string(again.nodes[i].process->pid));
    }
    EXPECT_EQ(again.users.size(), 3u);
    std::filesystem::remove(pgsluice::bench::cluster_state::file_in(c.work_dir()));
}

TEST(pgbouncer, serves_scram_and_md5_users_and_refuses_a_wrong_password) {
    auto& c = t::cluster();
    auto& b = t::pgbouncer();
    for (const char* name : {"sluice_scram", "sluice_md5", "sluice_admin"}) {
        const auto& u = c.user(name);
        auto conn = t::try_connect(b.conninfo(u.name, u.password, c.database()));
        ASSERT_TRUE(conn.ok()) << name << ": " << conn.raw_error;
        EXPECT_EQ(conn.conn.scalar("SELECT current_user"), u.name);
        // Transaction pooling to the primary.
        EXPECT_EQ(conn.conn.scalar("SELECT pg_is_in_recovery()"), "f");
    }
    // A wrong password is refused. PgBouncer 1.18 words the refusal its own way rather than
    // as PostgreSQL does (28P01 "password authentication failed for user ..."): shown for
    // comparison, not judged.
    auto bad = t::try_connect(b.conninfo("sluice_scram", "wrong-password", c.database()));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.severity, "FATAL") << bad.raw_error;
    std::cout << "    pgbouncer refuses a wrong SCRAM password with " << bad.sqlstate << " \"" << bad.message << "\"\n";
    RecordProperty("pgbouncer_wrong_password", bad.sqlstate + " " + bad.message);
}

TEST(pgpool, serves_queries_and_knows_the_primary_and_both_replicas) {
    auto& c = t::cluster();
    auto& p = t::pgpool();
    const auto& u = c.user("sluice_scram");
    auto conn = t::connect(p.conninfo(u.name, u.password, c.database()));
    EXPECT_EQ(conn.scalar("SELECT 40 + 2"), "42");
    // SHOW pool_nodes: one row per backend with its role as Pgpool-II determined it. Right after
    // its start Pgpool-II may not have found the primary yet (its streaming-replication check
    // runs on its own schedule): asked again until it has, within a deadline.
    std::multiset<std::string> roles;
    std::size_t node_rows = 0;
    poll_until(20s, 100ms, [&] {
        const auto nodes = conn.query("SHOW pool_nodes");
        node_rows = nodes.size();
        roles.clear();
        for (const auto& row : nodes)
            for (const auto& v : row)
                if (v == "primary" || v == "standby")
                    roles.insert(*v);
        return roles.count("primary") == 1;
    });
    ASSERT_EQ(node_rows, 3u);
    EXPECT_EQ(roles.count("primary"), 1u);
    EXPECT_EQ(roles.count("standby"), 2u);

    auto md5 = t::try_connect(p.conninfo("sluice_md5", c.user("sluice_md5").password, c.database()));
    ASSERT_TRUE(md5.ok()) << md5.raw_error;
    EXPECT_EQ(md5.conn.scalar("SELECT current_user"), "sluice_md5");
}

TEST(processes, a_child_is_stopped_with_its_signal_and_never_adopted_twice) {
    namespace b = pgsluice::bench;
    auto& c = t::cluster();
    b::spawn_options o;
    o.argv = {"sleep", "600"};
    o.log_file = c.work_dir() / "log" / "sleep.log";
    o.user = &c.os_user();
    o.parent_death_signal = SIGKILL;
    auto child = b::child_process::spawn(o, SIGTERM);
    ASSERT_TRUE(child.running());
    const auto id = child.identity();
    EXPECT_TRUE(b::is_alive(id));
    // A different start time is a different process: adopt refuses it.
    EXPECT_FALSE(b::child_process::adopt({id.pid, id.start_time + 1}, SIGTERM));
    EXPECT_TRUE(child.stop(5s));
    EXPECT_EQ(child.exit_status(), 128 + SIGTERM);
    EXPECT_FALSE(b::is_alive(id));
    EXPECT_FALSE(b::child_process::adopt(id, SIGTERM));
}

TEST(processes, a_cluster_without_its_binaries_fails_naming_them) {
    pgsluice::bench::cluster_spec spec;
    spec.pg_bin_dir = "/nonexistent/postgresql/bin";
    try {
        pgsluice::bench::pg_cluster::up(spec);
        FAIL() << "expected missing_dependency";
    } catch (const pgsluice::bench::missing_dependency& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/postgresql/bin/initdb"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("postgresql-15"), std::string::npos) << e.what();
    }
}

TEST(processes, a_missing_program_is_named) {
    try {
        pgsluice::bench::find_program("pgsluice-no-such-program", "some-package");
        FAIL() << "expected missing_dependency";
    } catch (const pgsluice::bench::missing_dependency& e) {
        EXPECT_NE(std::string(e.what()).find("pgsluice-no-such-program"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("some-package"), std::string::npos);
    }
}

} // namespace

namespace {

// `pgsluice bench stack up | status | down` in miniature: a persistent cluster outlives its
// object, is found again from its state file, restarts from its data dirs, and goes away.
TEST(persistent_cluster, up_attach_down_and_fast_restart_keep_the_data) {
    namespace b = pgsluice::bench;
    const auto os_user = b::resolve_service_user();
    const auto parent = b::make_temp_dir("pgsluice-stack-", os_user);
    const auto work = parent / "stack";
    // Whatever happens below, nothing persistent survives the test.
    struct cleanup {
        std::filesystem::path dir, parent;
        ~cleanup() {
            try {
                if (std::filesystem::exists(b::cluster_state::file_in(dir)))
                    b::pg_cluster::attach(dir)->destroy();
            } catch (...) {
            }
            std::error_code ec;
            std::filesystem::remove_all(parent, ec);
        }
    } guard{work, parent};

    b::cluster_spec spec;
    spec.work_dir = work;
    spec.persistent = true;
    spec.replicas = 1;
    std::vector<b::process_identity> first;
    {
        auto c = b::pg_cluster::up(spec);
        ASSERT_TRUE(c->state().complete);
        c->exec_sql(c->primary_index(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')",
                    c->database());
        for (const auto& n : c->state().nodes)
            first.push_back(n.process.value());
    } // persistent: the servers keep running
    for (const auto& id : first)
        EXPECT_TRUE(b::is_alive(id));

    {
        auto again = b::pg_cluster::up(spec); // idempotent: reuses what runs
        for (std::size_t i = 0; i < again->node_count(); ++i)
            EXPECT_EQ(again->node(i).process, first[i]) << "restarted a running node";
    }
    {
        auto status = b::pg_cluster::attach(work);
        for (std::size_t i = 0; i < status->node_count(); ++i)
            EXPECT_TRUE(status->running(i));
        status->stop(); // `down`
    }
    for (const auto& id : first)
        EXPECT_FALSE(b::is_alive(id));
    {
        auto stopped = b::pg_cluster::attach(work);
        for (std::size_t i = 0; i < stopped->node_count(); ++i) {
            EXPECT_FALSE(stopped->running(i));
            EXPECT_FALSE(stopped->node(i).process.has_value());
        }
    }
    {
        auto restarted = b::pg_cluster::up(spec); // fast restart from the data dirs
        const auto replica = restarted->replica_indexes().at(0);
        EXPECT_EQ(restarted->exec_sql(replica, "SELECT v FROM kept", restarted->database()).at(0).at(0), "still here");
        EXPECT_EQ(restarted->exec_sql(replica, "SELECT pg_is_in_recovery()").at(0).at(0), "t");
        restarted->destroy();
    }
    EXPECT_FALSE(std::filesystem::exists(work));
}

} // namespace

namespace {

// The pgsluice_process helper against the real binary: a `serve` that cannot start must
// be reported with its own words (here: an invalid config), not as a timeout.
TEST(pgsluice_process, a_serve_that_exits_is_reported_with_its_log) {
    auto& c = t::cluster();
    t::pgsluice_process::options o;
    o.config = [&](std::uint16_t port) {
        return "pool_mode = \"no-such-mode\"\n[listen]\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) +
               "\n[users]\nsluice_scram = \"scram-secret\"\n[databases.sluice]\nhost = \"127.0.0.1\"\nport = " +
               std::to_string(c.port(c.primary_index())) + "\n";
    };
    o.probe = {"sluice_scram", "scram-secret", c.database()};
    try {
        t::pgsluice_process proxy(o);
        FAIL() << "pgsluice accepted pool_mode = \"no-such-mode\"";
    } catch (const pgsluice::bench::missing_dependency& e) {
        FAIL() << e.what();
    } catch (const pgsluice::bench::stack_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("pgsluice exited during start-up"), std::string::npos) << what;
        // The log's own lines follow "log <file>:"; what serve printed must be there.
        const auto log_at = what.find("pgsluice.log:\n");
        ASSERT_NE(log_at, std::string::npos) << what;
        EXPECT_NE(what.find("key 'pool_mode'", log_at), std::string::npos) << what;
    }
}

} // namespace

namespace {

// Failover as later tests will stage it: SIGKILL the primary, promote replica_1, and
// replica_2 follows it.
TEST(failover_cluster, kill_primary_promote_a_replica_and_the_other_follows) {
    namespace b = pgsluice::bench;
    b::cluster_spec spec;
    spec.replicas = 2;
    auto c = b::pg_cluster::up(spec);
    const auto old_primary = c->primary_index();
    const auto old_pid = c->node(old_primary).process.value();
    c->kill_primary();
    EXPECT_FALSE(b::is_alive(old_pid));
    const auto replicas = c->replica_indexes();
    ASSERT_EQ(replicas.size(), 2u);
    c->promote(replicas[0]);
    EXPECT_EQ(c->primary_index(), replicas[0]);
    EXPECT_EQ(c->replica_indexes(), std::vector<std::size_t>{replicas[1]});
    EXPECT_EQ(c->exec_sql(replicas[0], "SELECT pg_is_in_recovery()").at(0).at(0), "f");
    c->exec_sql(replicas[0], "CREATE TABLE after_failover AS SELECT 'new primary'::text AS v", c->database());
    std::string seen;
    EXPECT_TRUE(poll_until(30s, 20ms, [&] {
        try {
            seen = c->exec_sql(replicas[1], "SELECT v FROM after_failover", c->database()).at(0).at(0).value_or("");
        } catch (const b::stack_error&) {
            return false;
        }
        return seen == "new primary";
    })) << "replica_2 does not follow the promoted node";
    // The write went through a new timeline.
    EXPECT_EQ(c->exec_sql(replicas[1], "SELECT received_tli > 1 FROM pg_stat_wal_receiver").at(0).at(0), "t");
}

} // namespace

namespace {

// pgsluice_process started for real: transaction pooling in front of the primary, a
// SCRAM login through it, a query served.
TEST(pgsluice_process, serves_a_scram_login_in_front_of_the_primary) {
    auto& c = t::cluster();
    const auto& u = c.user("sluice_scram");
    t::pgsluice_process::options o;
    o.config = [&](std::uint16_t port) {
        return "pool_mode = \"transaction\"\nauth_type = \"scram-sha-256\"\n[listen]\nhost = \"127.0.0.1\"\nport = " +
               std::to_string(port) + "\n[users]\n" + u.name + " = \"" + u.password + "\"\n[databases." + c.database() +
               "]\nhost = \"127.0.0.1\"\nport = " + std::to_string(c.port(c.primary_index())) + "\n";
    };
    o.probe = {u.name, u.password, c.database()};
    t::pgsluice_process proxy(o);
    EXPECT_TRUE(proxy.running());
    auto conn = t::connect(proxy.conninfo(u.name, u.password, c.database()));
    EXPECT_EQ(conn.scalar("SELECT current_user"), u.name);
    EXPECT_EQ(conn.scalar("SELECT pg_is_in_recovery()"), "f");
    proxy.stop();
    EXPECT_FALSE(proxy.running());
}

} // namespace
