// `pgsluice bench failover` end to end on real servers: two targets, a short load, the primary's whole process tree killed, the report's table, JSON and HTML.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench/cli.hpp"
#include "bench/process.hpp"

namespace {

namespace b = pgsluice::bench;
namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(bench_failover, kills_the_primary_and_reports_every_target) {
    const char* binary = std::getenv("PGSLUICE_BINARY");
    ASSERT_TRUE(binary && *binary) << "PGSLUICE_BINARY (the pgsluice executable) is not set";
    const fs::path results = fs::temp_directory_path() / ("bench-failover-" + std::to_string(::getpid()));
    std::vector<std::string> args{"bench", "--pgsluice-binary", binary, "failover", "--targets", "pgsluice,haproxy",
                                  "--duration", "4s", "--kill-at", "1500ms", "--clients", "3", "--quiet",
                                  "--results-dir", results.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    testing::internal::CaptureStdout();
    const int status = b::run_bench_command(static_cast<int>(argv.size()), argv.data());
    const std::string out = testing::internal::GetCapturedStdout();
    ASSERT_EQ(status, 0) << out;

    // The table: a header and one row per target, with numbers in it.
    EXPECT_NE(out.find("writes held"), std::string::npos) << out;
    for (const std::string target : {"pgsluice", "haproxy"}) {
        const auto row = out.find("\n" + target + " ");
        ASSERT_NE(row, std::string::npos) << "no row for " << target << ":\n" << out;
        const std::string line = out.substr(row + 1, out.find('\n', row + 1) - row - 1);
        EXPECT_NE(line.find_first_of("0123456789"), std::string::npos) << line;
    }
    EXPECT_NE(out.find("kill"), std::string::npos) << "the timeline marks the kill:\n" << out;

    ASSERT_TRUE(fs::exists(results));
    const fs::path run_dir = fs::directory_iterator(results)->path();
    EXPECT_EQ(run_dir.filename().string().rfind("failover-", 0), 0u) << run_dir;
    const auto j = nlohmann::json::parse(read_all(run_dir / "results.json"));
    EXPECT_EQ(j.at("kind"), "pgsluice-bench-failover");
    ASSERT_EQ(j.at("results").size(), 2u) << j.dump(2);
    for (const auto& r : j.at("results")) {
        const std::string name = r.at("target");
        ASSERT_TRUE(r.at("ran").get<bool>()) << name << ": " << r.at("problem");
        // The postmaster and its children (checkpointer, walwriter, backends, walsender...)
        // were killed, and none of them is left.
        const auto pids = r.at("killed_pids").get<std::vector<int>>();
        EXPECT_GT(pids.size(), 3u) << name;
        EXPECT_EQ(r.at("processes_left"), 0) << name;
        for (const int pid : pids)
            EXPECT_FALSE(b::identify_process(pid).has_value()) << name << ": process " << pid << " still runs";
        // Before the kill the clients wrote through the target; everything acknowledged was
        // looked up on the surviving primary.
        EXPECT_GT(r.at("writes_ok").get<int>(), 0) << name;
        EXPECT_EQ(r.at("acknowledged_writes"), r.at("writes_ok")) << name;
        EXPECT_TRUE(r.at("missing_writes").is_number()) << name;
        EXPECT_FALSE(r.at("checked_on").get<std::string>().empty()) << name;
        EXPECT_TRUE(r.at("errors").at("reads").is_number() && r.at("errors").at("writes").is_number()) << name;
        EXPECT_TRUE(r.at("writes_held").is_number()) << name;
        EXPECT_GE(r.at("timeline").size(), 40u) << name << ": 4 s in 100 ms buckets";
        // Something noticed: a log line of the target or a client error after the kill.
        EXPECT_FALSE(r.at("detection_source").get<std::string>().empty()) << name;
        EXPECT_FALSE(r.at("setup").get<std::string>().empty()) << name;
    }
    // HAProxy promotes nothing: the bench promoted the standby itself for the read-back.
    EXPECT_NE(j.at("results").at(1).at("checked_on").get<std::string>().find("promoted by the bench"), std::string::npos);
    EXPECT_TRUE(fs::exists(run_dir / "logs" / "haproxy" / "haproxy.log"));
    EXPECT_TRUE(fs::exists(run_dir / "logs" / "pgsluice" / "primary.log"));

    const std::string html = read_all(run_dir / "report.html");
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_NE(html.find("primary killed"), std::string::npos);
    EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg")) << "no external assets";
    fs::remove_all(results);
}

} // namespace
