// `pgsluice bench ui` against a real PostgreSQL: its HTTP API over plain sockets (bad input, one run at a time, live events, results), the token, and Debian's chromium driving the page.
#include "tests/harness/harness.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>

#include "bench/dataset.hpp"

namespace {

using namespace std::chrono_literals;
namespace b = pgsluice::bench;
namespace t = pgsluice::test;
namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using json = nlohmann::json;

// One PostgreSQL primary with pgbench's tables (a small scale: runs here are functional).
struct database {
    std::unique_ptr<b::pg_cluster> cluster;
    std::string url;
    database() {
        b::cluster_spec spec;
        spec.replicas = 0;
        cluster = b::pg_cluster::up(spec);
        url = cluster->url(cluster->primary_index(), cluster->admin().name);
        b::init_options o;
        o.conninfo = url;
        o.scale = 0.02;
        o.jobs = 2;
        o.datasets = {"pgbench"};
        o.progress_tty = 0;
        b::init_datasets(o);
    }
};

database& db() {
    static database d;
    return d;
}

// `pgsluice bench ui` on a free loopback port, results in its own temp dir, no local stack.
class ui_process {
public:
    explicit ui_process(std::vector<std::string> extra = {}) {
        dir_ = b::make_temp_dir("pgsluice-ui-", b::service_user{});
        b::spawn_options o;
        o.argv = {t::pgsluice_binary().string(), "bench", "--work-dir", (dir_ / "no-stack").string(), "ui",
                  "--listen", "127.0.0.1:0", "--results-dir", results().string(), "--target", "direct=" + db().url};
        o.argv.insert(o.argv.end(), extra.begin(), extra.end());
        o.log_file = dir_ / "ui.log";
        o.parent_death_signal = SIGKILL;
        process_ = b::child_process::spawn(o, SIGTERM);
        const std::regex address(R"(pgsluice bench ui: http://127\.0\.0\.1:(\d+)/(\?token=([0-9a-f]+))?)");
        std::smatch m;
        const bool up = b::poll_until(20s, 20ms, [&] {
            log_ = b::read_file_text(o.log_file);
            return std::regex_search(log_, m, address) || !process_.running();
        });
        if (!up || m.empty()) throw std::runtime_error("bench ui did not print its address:\n" + log_);
        port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
        token_ = m[3];
    }
    ~ui_process() {
        process_.stop(10s);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path results() const { return dir_ / "results"; }
    std::uint16_t port() const { return port_; }
    const std::string& token() const { return token_; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
    std::string log() const { return b::read_file_text(dir_ / "ui.log"); }

private:
    fs::path dir_;
    b::child_process process_;
    std::string log_;
    std::uint16_t port_ = 0;
    std::string token_;
};

ui_process& ui() {
    static ui_process p;
    return p;
}

struct reply {
    unsigned status = 0;
    std::string body;
    http::fields headers;
    json js() const { return json::parse(body); }
};

// One HTTP/1.1 request over a fresh connection.
reply call(std::uint16_t port, http::verb method, const std::string& target, const std::string& body = {},
           std::vector<std::pair<http::field, std::string>> headers = {}) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    if (method == http::verb::post) req.set(http::field::content_type, "application/json");
    for (auto& [f, v] : headers) req.set(f, v);
    req.body() = body;
    req.prepare_payload();
    http::write(socket, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    reply r;
    r.status = res.result_int();
    r.body = res.body();
    for (const auto& f : res) r.headers.set(f.name_string(), f.value());
    return r;
}

reply get(const std::string& target) { return call(ui().port(), http::verb::get, target); }
reply post(const std::string& target, const json& body) { return call(ui().port(), http::verb::post, target, body.dump()); }

json short_run(int seconds = 3) {
    return {{"targets", {"direct"}}, {"workload", "select-only"}, {"users", 2}, {"spawn_rate", 0},
            {"run_time", std::to_string(seconds) + "s"}, {"warmup", "0s"}};
}

// Polls /api/status until the run is no longer running; returns that status.
json wait_done(std::chrono::seconds limit = 60s) {
    json status;
    const bool done = b::poll_until(limit, 100ms, [&] {
        status = get("/api/status").js();
        return status.value("state", "") == "finished" || status.value("state", "") == "failed";
    });
    EXPECT_TRUE(done) << "run still " << status.value("state", "?") << " after " << limit.count() << " s";
    return status;
}

std::string error_of(const reply& r) {
    try {
        return r.js().value("error", "");
    } catch (const std::exception&) {
        return "(not JSON) " + r.body;
    }
}

TEST(bench_ui, bad_input_is_refused_with_400_and_a_message_naming_the_field) {
    struct bad_case {
        json change;
        std::string expected;
    };
    const std::string down = "nowhere=postgresql://sluice_admin:pw@127.0.0.1:" + std::to_string(b::pick_free_port()) + "/sluice";
    const std::vector<bad_case> cases{
        {{{"users", -3}}, "users must be a whole number from 1 to 10000 (got -3)"},
        {{{"users", "lots"}}, "users must be a whole number"},
        {{{"workload", "nope"}}, "unknown workload 'nope'"},
        {{{"workload", "/etc/passwd.sql"}}, "is a script path"},
        {{{"run_time", "soon"}}, "run_time: 'soon' is not a duration"},
        {{{"spawn_rate", -1}}, "spawn_rate must be 0"},
        {{{"read_ratio", 2}}, "read_ratio must be a number from 0 to 1"},
        {{{"protocol", "carrier-pigeon"}}, "protocol: 'carrier-pigeon' is not simple, extended or prepared"},
        {{{"targets", json::array()}}, "choose at least one target"},
        {{{"targets", {"pgbouncer"}}}, "pgbouncer needs the local stack"},
        {{{"targets", {"mystery"}}}, "unknown target 'mystery'"},
        {{{"targets", {down}}}, "target nowhere (postgresql://sluice_admin@127.0.0.1"},
        // point-select needs the purchases data set, which this database lacks.
        {{{"workload", "point-select"}}, "workload point-select:"},
    };
    for (const auto& c : cases) {
        json form = short_run();
        form.update(c.change);
        const reply r = post("/api/runs", form);
        EXPECT_EQ(r.status, 400u) << c.change.dump() << ": " << r.body;
        EXPECT_NE(error_of(r).find(c.expected), std::string::npos) << c.change.dump() << ": " << error_of(r);
    }
    // The target that is down: the password is not repeated back.
    const reply down_reply = post("/api/runs", json{{"targets", {down}}});
    EXPECT_NE(error_of(down_reply).find("is down"), std::string::npos) << down_reply.body;
    EXPECT_EQ(down_reply.body.find(":pw@"), std::string::npos) << down_reply.body;

    const reply not_json = call(ui().port(), http::verb::post, "/api/runs", "{users: 3");
    EXPECT_EQ(not_json.status, 400u);
    EXPECT_NE(error_of(not_json).find("not valid JSON"), std::string::npos) << not_json.body;
    // A form post from another web site (no JSON content type) and a foreign Host are refused.
    const reply form_post = call(ui().port(), http::verb::post, "/api/runs", "users=3",
                                 {{http::field::content_type, "application/x-www-form-urlencoded"}});
    EXPECT_EQ(form_post.status, 415u) << form_post.body;
    const reply rebound = call(ui().port(), http::verb::get, "/api/results", "", {{http::field::host, "evil.example:80"}});
    EXPECT_EQ(rebound.status, 403u) << rebound.body;
    EXPECT_EQ(get("/api/results/..%2F..%2Fetc").status, 404u);
    EXPECT_EQ(get("/api/results/nope/results.json").status, 404u);
    EXPECT_EQ(get("/api/status").js().value("state", ""), "idle") << "no refused start may begin a run";
}

// Reads /api/events until `count` "point" events of run `id` arrived (or the deadline passed).
std::vector<json> read_points(const std::string& id, std::size_t count, std::chrono::seconds limit) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), ui().port()});
    const std::string req = "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(ui().port()) + "\r\n\r\n";
    asio::write(socket, asio::buffer(req));
    timeval tv{1, 0};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string stream;
    std::vector<json> points;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (points.size() < count && std::chrono::steady_clock::now() < deadline) {
        char buf[4096];
        const ssize_t n = ::recv(socket.native_handle(), buf, sizeof buf, 0);
        if (n == 0) break;
        if (n < 0) continue;  // the 1 s receive timeout: check the deadline
        stream.append(buf, static_cast<std::size_t>(n));
        for (std::size_t end; (end = stream.find("\n\n")) != std::string::npos; stream.erase(0, end + 2)) {
            const std::string message = stream.substr(0, end);
            if (message.rfind("event: point\ndata: ", 0) != 0) continue;
            const json e = json::parse(message.substr(std::string("event: point\ndata: ").size()));
            if (e.value("id", "") == id) points.push_back(e.at("point"));
        }
    }
    return points;
}

TEST(bench_ui, one_run_at_a_time_live_points_then_saved_and_listed) {
    const reply started = post("/api/runs", short_run(4));
    ASSERT_EQ(started.status, 202u) << started.body;
    const std::string id = started.js().at("id");

    const reply second = post("/api/runs", short_run());
    EXPECT_EQ(second.status, 409u) << second.body;
    EXPECT_NE(error_of(second).find("a run is already in progress"), std::string::npos) << second.body;

    const auto points = read_points(id, 2, 30s);
    ASSERT_GE(points.size(), 2u) << "fewer than two live points; log:\n" << ui().log();
    EXPECT_EQ(points[0].value("target", ""), "direct");
    EXPECT_EQ(points[1].value("t", 0), points[0].value("t", 0) + 1) << "one point per second, in order";
    for (const auto& p : points)
        for (const char* field : {"rps", "p50_ms", "p95_ms", "p99_ms", "users", "failures"})
            EXPECT_TRUE(p.contains(field)) << field << " missing from " << p.dump();

    const json status = wait_done();
    ASSERT_EQ(status.value("state", ""), "finished") << status.dump();
    EXPECT_GE(status.at("points").size(), 4u) << "4 s of run time, one point a second";
    const json& outcome = status.at("outcome").at(0);
    EXPECT_EQ(outcome.value("target", ""), "direct");
    EXPECT_GT(outcome.value("requests", 0u), 0u) << outcome.dump();
    EXPECT_EQ(outcome.value("failures", 1u), 0u) << outcome.dump();

    // Saved: listed on the Results page, each file downloadable.
    const json list = get("/api/results").js();
    ASSERT_FALSE(list.empty());
    EXPECT_EQ(list.at(0).value("id", ""), id) << "newest first";
    EXPECT_EQ(list.at(0).at("targets"), json({"direct"}));
    EXPECT_TRUE(fs::exists(ui().results() / id / "results.json"));
    const reply csv = get("/api/results/" + id + "/results.csv");
    EXPECT_EQ(csv.status, 200u);
    EXPECT_EQ(csv.body.rfind("workload,protocol,users,", 0), 0u) << csv.body;
    EXPECT_NE(csv.body.find("\nselect-only,simple,2,false,direct,1,"), std::string::npos) << csv.body;
    EXPECT_NE(std::string(csv.headers[http::field::content_disposition]).find("attachment"), std::string::npos);
    const reply html = get("/api/results/" + id + "/report.html");
    EXPECT_EQ(html.status, 200u);
    EXPECT_NE(html.body.find("<svg"), std::string::npos);
    const json saved = get("/api/results/" + id).js();
    EXPECT_EQ(saved.value("id", ""), id);
    EXPECT_GT(saved.at("results").at(0).at("timeline").at(0).value("p95_ms", 0.0), 0.0);

    // Stop: a long run ends early, what was measured is saved with a note.
    const reply long_run = post("/api/runs", short_run(120));
    ASSERT_EQ(long_run.status, 202u) << long_run.body;
    const std::string long_id = long_run.js().at("id");
    ASSERT_GE(read_points(long_id, 1, 30s).size(), 1u);
    EXPECT_EQ(post("/api/stop", json::object()).status, 202u);
    const json stopped = wait_done(30s);
    EXPECT_EQ(stopped.value("state", ""), "finished") << stopped.dump();
    const json stopped_saved = get("/api/results/" + long_id).js();
    EXPECT_NE(stopped_saved.at("notes").dump().find("stopped from the page"), std::string::npos);
    EXPECT_EQ(post("/api/stop", json::object()).status, 409u) << "nothing left to stop";
}

// A target that logs in but refuses every request: the run ends with its failures and their text.
TEST(bench_ui, a_run_whose_requests_fail_reports_the_error_text) {
    auto& c = *db().cluster;
    // It may read the data set's description, not pgbench_accounts.
    t::query(db().url, "GRANT SELECT ON pgsluice_bench_meta, pgbench_branches TO sluice_scram");
    const std::string limited = c.url(c.primary_index(), "sluice_scram");
    json form = short_run(2);
    form["targets"] = {"limited=" + limited};
    const reply started = post("/api/runs", form);
    ASSERT_EQ(started.status, 202u) << started.body;
    const json status = wait_done();
    ASSERT_EQ(status.value("state", ""), "finished") << status.dump();
    const json& outcome = status.at("outcome").at(0);
    EXPECT_EQ(outcome.value("requests", 1u), 0u) << outcome.dump();
    EXPECT_GT(outcome.value("failures", 0u), 0u) << outcome.dump();
    EXPECT_NE(outcome.at("errors").dump().find("permission denied"), std::string::npos) << outcome.dump();
    EXPECT_EQ(status.dump().find("scram-secret"), std::string::npos) << "the password stays out of what the page gets";
}

TEST(bench_ui, beyond_loopback_or_with_token_every_request_needs_the_printed_token) {
    ui_process guarded({"--token"});
    ASSERT_EQ(guarded.token().size(), 32u) << guarded.log();
    EXPECT_EQ(call(guarded.port(), http::verb::get, "/").status, 401u);
    EXPECT_EQ(call(guarded.port(), http::verb::get, "/api/results?token=wrong").status, 401u);
    EXPECT_EQ(call(guarded.port(), http::verb::post, "/api/runs", short_run().dump()).status, 401u);
    const reply page = call(guarded.port(), http::verb::get, "/?token=" + guarded.token());
    EXPECT_EQ(page.status, 200u);
    const std::string cookie(page.headers[http::field::set_cookie]);
    EXPECT_NE(cookie.find(guarded.token()), std::string::npos) << "the page keeps the token in a cookie";
    EXPECT_EQ(call(guarded.port(), http::verb::get, "/api/results", "",
                   {{http::field::cookie, cookie.substr(0, cookie.find(';'))}}).status, 200u);
    EXPECT_EQ(call(guarded.port(), http::verb::get, "/api/options", "",
                   {{http::field::authorization, "Bearer " + guarded.token()}}).status, 200u);
}

TEST(bench_ui, chromium_runs_a_benchmark_from_the_page) {
    const fs::path source = std::getenv("PGSLUICE_SOURCE_DIR") ? std::getenv("PGSLUICE_SOURCE_DIR") : "";
    const fs::path script = source / "tests" / "ui" / "browser_test.js";
    ASSERT_TRUE(fs::exists(script)) << script << " (PGSLUICE_SOURCE_DIR=" << source << ")";
    ASSERT_TRUE(fs::exists(source / "tests" / "ui" / "node_modules" / "playwright-core" / "package.json"))
        << "playwright-core is not installed: run scripts/install.sh (npm ci in tests/ui)";
    ASSERT_TRUE(fs::exists("/usr/bin/chromium")) << "chromium is not installed: run scripts/install.sh";
    const fs::path artifacts = fs::current_path() / "bench_ui_artifacts";
    fs::create_directories(artifacts);
    const fs::path log = artifacts / "browser_test.log";
    fs::remove(log);
    b::spawn_options o;
    o.argv = {b::find_program("node", "nodejs").string(), script.string(), ui().base_url(), artifacts.string()};
    o.log_file = log;
    o.parent_death_signal = SIGKILL;
    std::string failure;
    try {
        b::run_to_completion(o, 180s);
    } catch (const std::exception& e) {
        failure = e.what();
    }
    EXPECT_EQ(failure, "") << b::read_file_text(log) << "\nbench ui log:\n" << ui().log();
    EXPECT_TRUE(fs::exists(artifacts / "bench-ui-live.png"));
    EXPECT_TRUE(fs::exists(artifacts / "bench-ui-results.png"));
}

} // namespace
