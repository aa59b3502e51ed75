// Shared integration-test servers: the cluster, PgBouncer, Pgpool-II and pgsluice processes, started once and torn down at exit.
#include "tests/harness/harness.hpp"

#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <unistd.h>

namespace pgsluice::test {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A lazily started shared server: started on first use; a failure is remembered and
// rethrown, so one missing dependency fails every test that needs it with one message.
template <class T>
class shared {
public:
    template <class Start>
    T& get(Start start) {
        if (value_)
            return *value_;
        if (!error_.empty())
            throw bench::stack_error(error_);
        try {
            value_ = start();
        } catch (const std::exception& e) {
            error_ = e.what();
            throw;
        }
        return *value_;
    }

private:
    std::unique_ptr<T> value_;
    std::string error_;
};

// Function-local statics are destroyed in reverse order of construction: the poolers,
// started after the cluster, stop before it.
shared<bench::pg_cluster>& cluster_slot() {
    static shared<bench::pg_cluster> s;
    return s;
}

} // namespace

bench::pg_cluster& cluster() {
    auto& slot = cluster_slot();
    return slot.get([] {
        bench::cluster_spec spec;
        spec.replicas = 2;
        return bench::pg_cluster::up(spec);
    });
}

bench::config_server& pgbouncer() {
    static shared<bench::config_server> s;
    return s.get([] {
        auto& c = cluster();
        return bench::start_pgbouncer(bench::pgbouncer_for(c, c.work_dir() / "pgbouncer"));
    });
}

bench::config_server& pgpool() {
    static shared<bench::config_server> s;
    return s.get([] {
        auto& c = cluster();
        return bench::start_pgpool(bench::pgpool_for(c, c.work_dir() / "pgpool"));
    });
}

pq_connection connect(const std::string& conninfo) { return bench::connect(conninfo, 15s); }

connect_result try_connect(const std::string& conninfo) { return bench::try_connect(conninfo, 15s); }

sql_rows query(const std::string& conninfo, const std::string& sql) { return connect(conninfo).query(sql); }

fs::path pgsluice_binary() {
    const char* env = std::getenv("PGSLUICE_BINARY");
    if (env == nullptr || *env == '\0')
        throw bench::missing_dependency(
            "PGSLUICE_BINARY is not set: run this test through ctest, or set it to the built pgsluice executable");
    const fs::path p{env};
    if (::access(p.c_str(), X_OK) != 0)
        throw bench::missing_dependency("PGSLUICE_BINARY=" + p.string() + " is not an executable file (build `pgsluice`)");
    return p;
}

pgsluice_process::pgsluice_process(options opts) {
    const fs::path binary = pgsluice_binary();
    // pgsluice runs as whoever runs the tests; its dir stays private to us.
    dir_ = bench::make_temp_dir("pgsluice-proxy-", bench::service_user{});
    bench::config_server::options o;
    o.name = "pgsluice";
    o.dir = dir_;
    o.probe = opts.probe;
    o.stop_signal = opts.stop_signal;
    o.run_as_service_user = false;
    o.start_timeout = opts.start_timeout;
    o.write_config = [this, binary, config = opts.config, extra = opts.extra_args](std::uint16_t port) {
        bench::write_service_file(config_file(), config(port), bench::service_user{});
        std::vector<std::string> argv{binary.string(), "serve", "-c", config_file().string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return argv;
    };
    try {
        server_ = std::make_unique<bench::config_server>(std::move(o));
    } catch (...) {
        std::error_code ec;
        if (std::getenv("PGSLUICE_KEEP_WORK_DIR") == nullptr)
            fs::remove_all(dir_, ec);
        throw;
    }
}

pgsluice_process::~pgsluice_process() {
    server_.reset();
    std::error_code ec;
    if (std::getenv("PGSLUICE_KEEP_WORK_DIR") == nullptr)
        fs::remove_all(dir_, ec);
}

} // namespace pgsluice::test
