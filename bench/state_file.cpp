// JSON form of the state files: process identities, a cluster's cluster.json (written atomically) and the config-file servers a stack records.
#include "bench/cluster.hpp"

#include <nlohmann/json.hpp>

#include <fstream>

namespace pgsluice::bench {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* method_name(password_method m) { return m == password_method::md5 ? "md5" : "scram-sha-256"; }

password_method method_from(const std::string& s) {
    if (s == "md5")
        return password_method::md5;
    if (s == "scram-sha-256")
        return password_method::scram_sha_256;
    throw stack_error("unknown password method '" + s + "' in state file");
}

} // namespace

void to_json(json& j, const process_identity& p) { j = json{{"pid", p.pid}, {"start_time", p.start_time}}; }
void from_json(const json& j, process_identity& p) {
    p.pid = j.at("pid").get<pid_t>();
    p.start_time = j.at("start_time").get<std::uint64_t>();
}

namespace {

json optional_process(const std::optional<process_identity>& p) { return p ? json(*p) : json(nullptr); }
std::optional<process_identity> optional_process(const json& j, const char* key) {
    if (!j.contains(key) || j.at(key).is_null())
        return std::nullopt;
    return j.at(key).get<process_identity>();
}

} // namespace

void cluster_state::save() const {
    json users_j = json::array();
    for (const auto& u : users)
        users_j.push_back({{"name", u.name}, {"password", u.password}, {"method", method_name(u.method)},
                           {"superuser", u.superuser}});
    json nodes_j = json::array();
    for (const auto& n : nodes)
        nodes_j.push_back({{"name", n.name},
                           {"role", n.role == node_role::primary ? "primary" : "replica"},
                           {"port", n.port},
                           {"data_dir", n.data_dir.string()},
                           {"log_file", n.log_file.string()},
                           {"process", optional_process(n.process)},
                           {"retired", n.retired}});
    const json j{{"format", 1},
                 {"kind", "pgsluice-cluster"},
                 {"work_dir", work_dir.string()},
                 {"socket_dir", socket_dir.string()},
                 {"pg_bin_dir", pg_bin_dir.string()},
                 {"os_user", os_user},
                 {"database", database},
                 {"local_superuser", local_superuser},
                 {"persistent", persistent},
                 {"complete", complete},
                 {"users", users_j},
                 {"nodes", nodes_j}};
    const fs::path file = file_in(work_dir);
    const fs::path tmp = file.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << j.dump(2) << '\n';
        if (!out)
            throw stack_error("cannot write " + tmp.string());
    }
    fs::rename(tmp, file);
}

cluster_state cluster_state::load(const fs::path& work_dir) {
    const fs::path file = file_in(work_dir);
    std::ifstream in(file);
    if (!in)
        throw stack_error("no cluster state in " + work_dir.string() + " (" + file.string() + " missing)");
    try {
        const json j = json::parse(in);
        if (j.at("kind") != "pgsluice-cluster" || j.at("format") != 1)
            throw stack_error(file.string() + " is not a pgsluice cluster state (format 1)");
        cluster_state s;
        s.work_dir = j.at("work_dir").get<std::string>();
        s.socket_dir = j.at("socket_dir").get<std::string>();
        s.pg_bin_dir = j.at("pg_bin_dir").get<std::string>();
        s.os_user = j.at("os_user").get<std::string>();
        s.database = j.at("database").get<std::string>();
        s.local_superuser = j.at("local_superuser").get<std::string>();
        s.persistent = j.value("persistent", true);
        s.complete = j.value("complete", false);
        for (const auto& u : j.at("users"))
            s.users.push_back({u.at("name").get<std::string>(), u.at("password").get<std::string>(),
                               method_from(u.at("method").get<std::string>()), u.value("superuser", false)});
        for (const auto& n : j.at("nodes")) {
            node_state node;
            node.name = n.at("name").get<std::string>();
            node.role = n.at("role") == "primary" ? node_role::primary : node_role::replica;
            node.port = n.at("port").get<std::uint16_t>();
            node.data_dir = n.at("data_dir").get<std::string>();
            node.log_file = n.at("log_file").get<std::string>();
            node.process = optional_process(n, "process");
            node.retired = n.value("retired", false);
            s.nodes.push_back(std::move(node));
        }
        return s;
    } catch (const json::exception& e) {
        throw stack_error("cannot read " + file.string() + ": " + e.what());
    }
}

void to_json(json& j, const server_record& r) {
    j = json{{"name", r.name},         {"port", r.port},
             {"config", r.config.string()}, {"log_file", r.log_file.string()},
             {"stop_signal", r.stop_signal}, {"process", optional_process(r.process)}};
}

void from_json(const json& j, server_record& r) {
    r.name = j.at("name").get<std::string>();
    r.port = j.at("port").get<std::uint16_t>();
    r.config = j.at("config").get<std::string>();
    r.log_file = j.at("log_file").get<std::string>();
    r.stop_signal = j.value("stop_signal", 15);
    r.process = optional_process(j, "process");
}

} // namespace pgsluice::bench
