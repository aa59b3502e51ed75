// Golden tests of protocol/: what libpq and PostgreSQL 15 really exchange, captured by a relay, must frame, decode and re-encode byte for byte.
//
// Each test drives libpq through a recording relay in front of the harness cluster's
// primary, then walks both captured byte streams with protocol/'s framers: every message
// must decode and its re-encoding must equal the captured bytes. The SCRAM and MD5
// exchanges are also recomputed with protocol/'s own client and server roles.
// Message formats: https://www.postgresql.org/docs/15/protocol-message-formats.html
#include "tests/harness/harness.hpp"
#include "tests/harness/relay.hpp"

#include "protocol/codec.hpp"
#include "protocol/framing.hpp"
#include "protocol/md5.hpp"
#include "protocol/messages.hpp"
#include "protocol/scram.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace p = pgsluice::protocol;
namespace t = pgsluice::test;

template <class T>
constexpr const char* message_name() {
    // Names as in the protocol docs.
    if constexpr (std::is_same_v<T, p::startup_message>) return "StartupMessage";
    else if constexpr (std::is_same_v<T, p::ssl_request>) return "SSLRequest";
    else if constexpr (std::is_same_v<T, p::gssenc_request>) return "GSSENCRequest";
    else if constexpr (std::is_same_v<T, p::cancel_request>) return "CancelRequest";
    else if constexpr (std::is_same_v<T, p::query>) return "Query";
    else if constexpr (std::is_same_v<T, p::parse>) return "Parse";
    else if constexpr (std::is_same_v<T, p::bind>) return "Bind";
    else if constexpr (std::is_same_v<T, p::describe>) return "Describe";
    else if constexpr (std::is_same_v<T, p::execute>) return "Execute";
    else if constexpr (std::is_same_v<T, p::sync>) return "Sync";
    else if constexpr (std::is_same_v<T, p::flush>) return "Flush";
    else if constexpr (std::is_same_v<T, p::close>) return "Close";
    else if constexpr (std::is_same_v<T, p::copy_data>) return "CopyData";
    else if constexpr (std::is_same_v<T, p::copy_done>) return "CopyDone";
    else if constexpr (std::is_same_v<T, p::copy_fail>) return "CopyFail";
    else if constexpr (std::is_same_v<T, p::function_call>) return "FunctionCall";
    else if constexpr (std::is_same_v<T, p::terminate>) return "Terminate";
    else if constexpr (std::is_same_v<T, p::password_message>) return "PasswordMessage";
    else if constexpr (std::is_same_v<T, p::sasl_initial_response>) return "SASLInitialResponse";
    else if constexpr (std::is_same_v<T, p::sasl_response>) return "SASLResponse";
    else if constexpr (std::is_same_v<T, p::gss_response>) return "GSSResponse";
    else if constexpr (std::is_same_v<T, p::authentication_ok>) return "AuthenticationOk";
    else if constexpr (std::is_same_v<T, p::authentication_md5_password>) return "AuthenticationMD5Password";
    else if constexpr (std::is_same_v<T, p::authentication_cleartext_password>) return "AuthenticationCleartextPassword";
    else if constexpr (std::is_same_v<T, p::authentication_sasl>) return "AuthenticationSASL";
    else if constexpr (std::is_same_v<T, p::authentication_sasl_continue>) return "AuthenticationSASLContinue";
    else if constexpr (std::is_same_v<T, p::authentication_sasl_final>) return "AuthenticationSASLFinal";
    else if constexpr (std::is_same_v<T, p::backend_key_data>) return "BackendKeyData";
    else if constexpr (std::is_same_v<T, p::parameter_status>) return "ParameterStatus";
    else if constexpr (std::is_same_v<T, p::ready_for_query>) return "ReadyForQuery";
    else if constexpr (std::is_same_v<T, p::row_description>) return "RowDescription";
    else if constexpr (std::is_same_v<T, p::data_row>) return "DataRow";
    else if constexpr (std::is_same_v<T, p::command_complete>) return "CommandComplete";
    else if constexpr (std::is_same_v<T, p::empty_query_response>) return "EmptyQueryResponse";
    else if constexpr (std::is_same_v<T, p::error_response>) return "ErrorResponse";
    else if constexpr (std::is_same_v<T, p::notice_response>) return "NoticeResponse";
    else if constexpr (std::is_same_v<T, p::parse_complete>) return "ParseComplete";
    else if constexpr (std::is_same_v<T, p::bind_complete>) return "BindComplete";
    else if constexpr (std::is_same_v<T, p::close_complete>) return "CloseComplete";
    else if constexpr (std::is_same_v<T, p::no_data>) return "NoData";
    else if constexpr (std::is_same_v<T, p::parameter_description>) return "ParameterDescription";
    else if constexpr (std::is_same_v<T, p::portal_suspended>) return "PortalSuspended";
    else if constexpr (std::is_same_v<T, p::copy_in_response>) return "CopyInResponse";
    else if constexpr (std::is_same_v<T, p::copy_out_response>) return "CopyOutResponse";
    else if constexpr (std::is_same_v<T, p::copy_both_response>) return "CopyBothResponse";
    else if constexpr (std::is_same_v<T, p::notification_response>) return "NotificationResponse";
    else if constexpr (std::is_same_v<T, p::negotiate_protocol_version>) return "NegotiateProtocolVersion";
    else if constexpr (std::is_same_v<T, p::function_call_response>) return "FunctionCallResponse";
    else return "Other";
}

template <class Variant>
std::string name_of(const Variant& v) {
    return std::visit([](const auto& m) { return std::string(message_name<std::decay_t<decltype(m)>>()); }, v);
}

std::string hex(p::bytes_view b) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (auto c : b) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string_view text(p::bytes_view b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// One captured connection, walked message by message. The typed messages view into the
// capture, which must outlive the transcript.
struct transcript {
    std::vector<p::frontend_message> client;
    std::vector<p::backend_message> server;
    std::vector<std::string> client_names;
    std::vector<std::string> server_names;
    bool ssl_requested = false;
    char ssl_answer = 0;

    template <class T>
    std::vector<const T*> all_server() const { return all_of<T>(server); }
    template <class T>
    std::vector<const T*> all_client() const { return all_of<T>(client); }
    template <class T>
    const T& server_one() const { return one_of<T>(server); }
    template <class T>
    const T& client_one() const { return one_of<T>(client); }

private:
    template <class T, class Variant>
    static std::vector<const T*> all_of(const std::vector<Variant>& messages) {
        std::vector<const T*> out;
        for (const auto& m : messages)
            if (auto* x = std::get_if<T>(&m))
                out.push_back(x);
        return out;
    }
    template <class T, class Variant>
    static const T& one_of(const std::vector<Variant>& messages) {
        const auto v = all_of<T>(messages);
        if (v.size() != 1)
            throw std::runtime_error(std::string("expected one ") + message_name<T>() + ", got " + std::to_string(v.size()));
        return *v.front();
    }
};

template <class Message>
std::string name_of_any(const Message& m) {
    if constexpr (requires { m.index(); })
        return name_of(m);
    else
        return message_name<Message>();
}

// Re-encodes `m` and compares with the bytes it was decoded from.
template <class Message>
void expect_reencodes(const Message& m, p::bytes_view original, const std::string& where) {
    std::vector<std::uint8_t> out;
    p::encode(m, out);
    EXPECT_EQ(hex(out), hex(original)) << where << " " << name_of_any(m) << " does not re-encode byte for byte";
}

// Frames, decodes and re-encodes both directions of `cap`. Failures are test failures.
transcript walk(const t::relay_capture& cap) {
    transcript tr;
    const p::bytes_view cs{cap.from_client};
    const p::bytes_view ss{cap.from_server};

    // --- client: untagged first packet(s)
    std::size_t off = 0;
    auto startup = [&]() -> bool {
        const auto r = p::next_startup_frame(cs.subspan(off));
        if (!r.is_frame()) {
            ADD_FAILURE() << "client: no startup frame at " << off << " (" << r.error.message() << ")";
            return false;
        }
        auto m = p::decode_startup(r.f);
        if (!m) {
            ADD_FAILURE() << "client: startup frame does not decode: " << m.error().message();
            return false;
        }
        expect_reencodes(*m, cs.subspan(off, r.f.size), "client");
        tr.client_names.push_back(name_of(*m));
        tr.client.push_back(*m);
        off += r.f.size;
        return true;
    };
    if (!startup())
        return tr;
    if (std::holds_alternative<p::ssl_request>(tr.client.back())) {
        tr.ssl_requested = true;
        if (!startup())
            return tr;
    }

    // --- server: a one-byte answer to SSLRequest, then tagged messages
    std::size_t soff = 0;
    if (tr.ssl_requested) {
        if (ss.empty()) {
            ADD_FAILURE() << "server: no answer to SSLRequest";
            return tr;
        }
        tr.ssl_answer = static_cast<char>(ss[0]);
        soff = 1;
    }
    // Which kind of 'p' the client sends next depends on the authentication request it
    // answers: collect them from the server side first.
    std::vector<std::string> expected_p;
    while (soff < ss.size()) {
        const auto r = p::next_frame(ss.subspan(soff));
        if (!r.is_frame()) {
            ADD_FAILURE() << "server: " << (r.is_invalid() ? "invalid frame: " + r.error.message() : "truncated frame")
                          << " at " << soff << " of " << ss.size();
            break;
        }
        auto m = p::decode_backend(r.f);
        if (!m) {
            ADD_FAILURE() << "server: '" << r.f.tag << "' does not decode: " << m.error().message() << " body "
                          << hex(r.f.body);
            break;
        }
        expect_reencodes(*m, ss.subspan(soff, r.f.size), "server");
        if (std::holds_alternative<p::authentication_md5_password>(*m) ||
            std::holds_alternative<p::authentication_cleartext_password>(*m))
            expected_p.push_back("PasswordMessage");
        else if (std::holds_alternative<p::authentication_sasl>(*m))
            expected_p.push_back("SASLInitialResponse");
        else if (std::holds_alternative<p::authentication_sasl_continue>(*m))
            expected_p.push_back("SASLResponse");
        tr.server_names.push_back(name_of(*m));
        tr.server.push_back(std::move(*m));
        soff += r.f.size;
    }

    // --- client: tagged messages
    std::size_t next_p = 0;
    while (off < cs.size()) {
        const auto r = p::next_frame(cs.subspan(off));
        if (!r.is_frame()) {
            ADD_FAILURE() << "client: " << (r.is_invalid() ? "invalid frame: " + r.error.message() : "truncated frame")
                          << " at " << off << " of " << cs.size();
            break;
        }
        p::result<p::frontend_message> m = boost::system::error_code(pgsluice::errc::malformed_message);
        if (r.f.tag == 'p') {
            const std::string kind = next_p < expected_p.size() ? expected_p[next_p++] : "PasswordMessage";
            if (kind == "SASLInitialResponse") {
                auto x = p::decode_sasl_initial_response(r.f);
                if (x) m = p::frontend_message(*x); else m = x.error();
            } else if (kind == "SASLResponse") {
                auto x = p::decode_sasl_response(r.f);
                if (x) m = p::frontend_message(*x); else m = x.error();
            } else {
                m = p::decode_frontend(r.f);
            }
        } else {
            m = p::decode_frontend(r.f);
        }
        if (!m) {
            ADD_FAILURE() << "client: '" << r.f.tag << "' does not decode: " << m.error().message() << " body "
                          << hex(r.f.body);
            break;
        }
        expect_reencodes(*m, cs.subspan(off, r.f.size), "client");
        tr.client_names.push_back(name_of(*m));
        tr.client.push_back(std::move(*m));
        off += r.f.size;
    }
    return tr;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v)
        out += (out.empty() ? "" : " ") + s;
    return out;
}

// The message names without ParameterStatus runs (their number depends on the server).
std::vector<std::string> without_parameter_status(const std::vector<std::string>& v) {
    std::vector<std::string> out;
    for (const auto& s : v)
        if (s != "ParameterStatus")
            out.push_back(s);
    return out;
}

struct pg_conn_closer {
    void operator()(PGconn* c) const { PQfinish(c); }
};
using conn_ptr = std::unique_ptr<PGconn, pg_conn_closer>;
struct pg_result_closer {
    void operator()(PGresult* r) const { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, pg_result_closer>;

// A libpq connection through `relay` as `user` (its password unless given).
conn_ptr relay_login(const t::recording_relay& relay, const std::string& user, const std::string& password,
                     const std::string& sslmode = "disable") {
    const auto& c = t::cluster();
    const std::string info = "host=127.0.0.1 port=" + std::to_string(relay.port()) + " user=" + user +
                             " password=" + pgsluice::bench::conninfo_quote(password) + " dbname=" + c.database() +
                             " sslmode=" + sslmode + " gssencmode=disable application_name=golden";
    conn_ptr conn{PQconnectdb(info.c_str())};
    return conn;
}

PGresult* checked(PGconn* conn, PGresult* r, ExecStatusType want) {
    EXPECT_EQ(PQresultStatus(r), want) << PQerrorMessage(conn);
    return r;
}

class golden : public ::testing::Test {
protected:
    void SetUp() override { relay_ = std::make_unique<t::recording_relay>(t::cluster().port(t::cluster().primary_index())); }
    std::unique_ptr<t::recording_relay> relay_;
};

TEST_F(golden, scram_login_and_a_simple_query) {
    const auto& c = t::cluster();
    const auto& user = c.user("sluice_scram");
    {
        auto conn = relay_login(*relay_, user.name, user.password);
        ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
        result_ptr r{checked(conn.get(), PQexec(conn.get(), "SELECT 1 AS one, NULL::text AS nothing, 'é'::text AS word"),
                             PGRES_TUPLES_OK)};
    }
    const auto caps = relay_->wait_for_connections(1, 20s);
    ASSERT_EQ(caps.size(), 1u);
    const auto tr = walk(caps[0]);
    EXPECT_EQ(join(tr.client_names), "StartupMessage SASLInitialResponse SASLResponse Query Terminate");
    EXPECT_EQ(join(without_parameter_status(tr.server_names)),
              "AuthenticationSASL AuthenticationSASLContinue AuthenticationSASLFinal AuthenticationOk BackendKeyData "
              "ReadyForQuery RowDescription DataRow CommandComplete ReadyForQuery");

    const auto& startup = tr.client_one<p::startup_message>();
    EXPECT_EQ(startup.protocol_major, 3);
    EXPECT_EQ(startup.protocol_minor, 0);
    EXPECT_EQ(startup.param("user"), user.name);
    EXPECT_EQ(startup.param("database"), c.database());
    EXPECT_EQ(startup.param("application_name"), "golden");
    EXPECT_EQ(tr.client_one<p::query>().sql, "SELECT 1 AS one, NULL::text AS nothing, 'é'::text AS word");
    const auto& rd = tr.server_one<p::row_description>();
    ASSERT_EQ(rd.fields.size(), 3u);
    EXPECT_EQ(rd.fields[0].name, "one");
    EXPECT_EQ(rd.fields[0].type_oid, 23u); // int4
    EXPECT_EQ(rd.fields[1].type_oid, 25u); // text
    const auto& row = tr.server_one<p::data_row>();
    ASSERT_EQ(row.columns.size(), 3u);
    EXPECT_EQ(text(*row.columns[0]), "1");
    EXPECT_FALSE(row.columns[1].has_value());
    EXPECT_EQ(text(*row.columns[2]), "é");
    EXPECT_EQ(tr.server_one<p::command_complete>().tag, "SELECT 1");
    bool saw_encoding = false;
    for (const auto* ps : tr.all_server<p::parameter_status>())
        if (ps->name == "server_encoding")
            saw_encoding = ps->value == "UTF8";
    EXPECT_TRUE(saw_encoding);
    EXPECT_EQ(tr.all_server<p::ready_for_query>().back()->status, 'I');

    // The SCRAM exchange, recomputed by protocol/ in both roles from the same inputs.
    const auto& sasl = tr.server_one<p::authentication_sasl>();
    EXPECT_NE(std::find(sasl.mechanisms.begin(), sasl.mechanisms.end(), p::scram_sha_256_name), sasl.mechanisms.end());
    const auto& initial = tr.client_one<p::sasl_initial_response>();
    EXPECT_EQ(initial.mechanism, p::scram_sha_256_name);
    ASSERT_TRUE(initial.data.has_value());
    const std::string client_first{text(*initial.data)};
    const std::string server_first{text(tr.server_one<p::authentication_sasl_continue>().data)};
    const std::string client_final{text(tr.client_one<p::sasl_response>().data)};
    const std::string server_final{text(tr.server_one<p::authentication_sasl_final>().data)};
    ASSERT_TRUE(client_first.starts_with("n,,n=,r=")) << client_first;
    const std::string client_nonce = client_first.substr(std::string("n,,n=,r=").size());
    ASSERT_TRUE(server_first.starts_with("r=" + client_nonce)) << server_first;
    const std::string server_nonce = server_first.substr(2 + client_nonce.size(), server_first.find(',') - 2 - client_nonce.size());

    p::scram_client_options copt;
    copt.nonce = client_nonce;
    auto client = p::scram_client::from_password(user.password, copt);
    ASSERT_TRUE(client) << client.error().message();
    EXPECT_EQ(client->client_first(), client_first);
    auto our_final = client->on_server_first(server_first);
    ASSERT_TRUE(our_final) << our_final.error().message();
    EXPECT_EQ(*our_final, client_final) << "libpq's proof differs from ours";
    EXPECT_TRUE(client->on_server_final(server_final)) << "server signature rejected";

    p::scram_server_options sopt;
    sopt.nonce = server_nonce;
    auto server = p::scram_server::from_verifier(c.password_secret(user.name), sopt);
    ASSERT_TRUE(server) << server.error().message();
    auto our_first = server->on_client_first(initial.mechanism, client_first);
    ASSERT_TRUE(our_first) << our_first.error().message();
    EXPECT_EQ(*our_first, server_first);
    auto our_server_final = server->on_client_final(client_final);
    ASSERT_TRUE(our_server_final) << our_server_final.error().message();
    EXPECT_EQ(*our_server_final, server_final);
}

TEST_F(golden, md5_login) {
    const auto& user = t::cluster().user("sluice_md5");
    {
        auto conn = relay_login(*relay_, user.name, user.password);
        ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
    }
    const auto caps = relay_->wait_for_connections(1, 20s);
    const auto tr = walk(caps.at(0));
    EXPECT_EQ(join(tr.client_names), "StartupMessage PasswordMessage Terminate");
    EXPECT_EQ(join(without_parameter_status(tr.server_names)),
              "AuthenticationMD5Password AuthenticationOk BackendKeyData ReadyForQuery");
    const auto& challenge = tr.server_one<p::authentication_md5_password>();
    const auto answer = p::md5_client_response(user.name, user.password, challenge.salt);
    ASSERT_TRUE(answer) << answer.error().message();
    EXPECT_EQ(tr.client_one<p::password_message>().password, *answer);
    EXPECT_TRUE(p::md5_verify_response(t::cluster().password_secret(user.name), challenge.salt, *answer));
}

TEST_F(golden, wrong_password_gets_the_error_postgresql_words) {
    const auto& user = t::cluster().user("sluice_scram");
    {
        auto conn = relay_login(*relay_, user.name, "not-the-password");
        ASSERT_EQ(PQstatus(conn.get()), CONNECTION_BAD);
    }
    const auto caps = relay_->wait_for_connections(1, 20s);
    const auto tr = walk(caps.at(0));
    EXPECT_EQ(join(tr.client_names), "StartupMessage SASLInitialResponse SASLResponse");
    EXPECT_EQ(join(tr.server_names), "AuthenticationSASL AuthenticationSASLContinue ErrorResponse");
    const auto& err = tr.server_one<p::error_response>();
    EXPECT_EQ(err.severity(), "FATAL");
    EXPECT_EQ(err.code(), "28P01");
    EXPECT_EQ(err.message(), "password authentication failed for user \"sluice_scram\"");
    // Field order as PostgreSQL sends it: S V C M, then F L R (where in its source).
    ASSERT_GE(err.fields.size(), 4u);
    EXPECT_EQ(err.fields[0].first, 'S');
    EXPECT_EQ(err.fields[1].first, 'V');
    EXPECT_EQ(err.fields[2].first, 'C');
    EXPECT_EQ(err.fields[3].first, 'M');
}

TEST_F(golden, extended_protocol_prepare_describe_execute) {
    const auto& user = t::cluster().user("sluice_scram");
    {
        auto conn = relay_login(*relay_, user.name, user.password);
        ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
        PGconn* cn = conn.get();
        const Oid types[2] = {23, 0};
        result_ptr prep{checked(cn, PQprepare(cn, "s1", "SELECT $1::int + 1 AS n, $2::text AS t", 2, types), PGRES_COMMAND_OK)};
        result_ptr desc{checked(cn, PQdescribePrepared(cn, "s1"), PGRES_COMMAND_OK)};
        EXPECT_EQ(PQnparams(desc.get()), 2);
        const char* values[2] = {"41", nullptr};
        // Text parameters, binary results for the first column's sake.
        result_ptr exec{checked(cn, PQexecPrepared(cn, "s1", 2, values, nullptr, nullptr, 1), PGRES_TUPLES_OK)};
        // Unnamed statement with a binary parameter: Parse/Bind/Describe/Execute/Sync at once.
        const std::uint32_t be42 = htonl(42);
        const char* bin_values[1] = {reinterpret_cast<const char*>(&be42)};
        const int lengths[1] = {4};
        const int formats[1] = {1};
        const Oid int4[1] = {23};
        result_ptr params{checked(cn, PQexecParams(cn, "SELECT $1::int4 * 2", 1, int4, bin_values, lengths, formats, 0),
                                  PGRES_TUPLES_OK)};
        EXPECT_STREQ(PQgetvalue(params.get(), 0, 0), "84");
        // A statement without result columns: Describe answers NoData.
        result_ptr prep2{checked(cn, PQprepare(cn, "s2", "SET application_name = 'x'", 0, nullptr), PGRES_COMMAND_OK)};
        result_ptr desc2{checked(cn, PQdescribePrepared(cn, "s2"), PGRES_COMMAND_OK)};
    }
    const auto caps = relay_->wait_for_connections(1, 20s);
    const auto tr = walk(caps.at(0));
    EXPECT_EQ(join(tr.client_names),
              "StartupMessage SASLInitialResponse SASLResponse "
              "Parse Sync Describe Sync Bind Describe Execute Sync "
              "Parse Bind Describe Execute Sync "
              "Parse Sync Describe Sync Terminate");
    EXPECT_EQ(join(without_parameter_status(tr.server_names)),
              "AuthenticationSASL AuthenticationSASLContinue AuthenticationSASLFinal AuthenticationOk BackendKeyData "
              "ReadyForQuery "
              "ParseComplete ReadyForQuery ParameterDescription RowDescription ReadyForQuery "
              "BindComplete RowDescription DataRow CommandComplete ReadyForQuery "
              "ParseComplete BindComplete RowDescription DataRow CommandComplete ReadyForQuery "
              "ParseComplete ReadyForQuery ParameterDescription NoData ReadyForQuery");
    const auto parses = tr.all_client<p::parse>();
    ASSERT_EQ(parses.size(), 3u);
    EXPECT_EQ(parses[0]->name, "s1");
    EXPECT_EQ(parses[0]->query, "SELECT $1::int + 1 AS n, $2::text AS t");
    EXPECT_EQ(parses[0]->param_types, (std::vector<std::uint32_t>{23, 0}));
    EXPECT_EQ(parses[1]->name, "");
    const auto binds = tr.all_client<p::bind>();
    ASSERT_EQ(binds.size(), 2u);
    EXPECT_EQ(binds[0]->statement, "s1");
    ASSERT_EQ(binds[0]->params.size(), 2u);
    EXPECT_EQ(text(*binds[0]->params[0]), "41");
    EXPECT_FALSE(binds[0]->params[1].has_value());
    EXPECT_EQ(binds[0]->result_formats, (std::vector<std::int16_t>{1}));
    EXPECT_EQ(binds[1]->param_formats, (std::vector<std::int16_t>{1}));
    const auto descs = tr.server_names;
    const auto pdesc = tr.all_server<p::parameter_description>();
    ASSERT_EQ(pdesc.size(), 2u);
    EXPECT_EQ(pdesc[0]->type_oids, (std::vector<std::uint32_t>{23, 25}));
    const auto rows = tr.all_server<p::data_row>();
    ASSERT_EQ(rows.size(), 2u);
    // int4 42 in binary, then a NULL text.
    EXPECT_EQ(hex(*rows[0]->columns[0]), "0000002a");
    EXPECT_FALSE(rows[0]->columns[1].has_value());
    EXPECT_EQ(text(*rows[1]->columns[0]), "84");
}

TEST_F(golden, errors_notices_copy_notifications_and_function_calls) {
    const auto& user = t::cluster().user("sluice_scram");
    {
        auto conn = relay_login(*relay_, user.name, user.password);
        ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
        PGconn* cn = conn.get();
        PQsetNoticeProcessor(cn, [](void*, const char*) {}, nullptr);
        result_ptr{checked(cn, PQexec(cn, "SELECT 1/0"), PGRES_FATAL_ERROR)};
        result_ptr{checked(cn, PQexec(cn, ""), PGRES_EMPTY_QUERY)};
        result_ptr{checked(cn, PQexec(cn, "DO $$ BEGIN RAISE NOTICE 'golden notice'; END $$"), PGRES_COMMAND_OK)};
        result_ptr{checked(cn, PQexec(cn, "BEGIN; CREATE TEMP TABLE g (a int, b text)"), PGRES_COMMAND_OK)};
        // COPY FROM STDIN: CopyInResponse, the client's CopyData and CopyDone.
        result_ptr{checked(cn, PQexec(cn, "COPY g FROM STDIN"), PGRES_COPY_IN)};
        const std::string data = "1\tone\n2\t\\N\n";
        EXPECT_EQ(PQputCopyData(cn, data.data(), static_cast<int>(data.size())), 1);
        EXPECT_EQ(PQputCopyEnd(cn, nullptr), 1);
        result_ptr{checked(cn, PQgetResult(cn), PGRES_COMMAND_OK)};
        result_ptr{PQgetResult(cn)};
        // COPY TO STDOUT: CopyOutResponse, CopyData per row, CopyDone.
        result_ptr{checked(cn, PQexec(cn, "COPY g TO STDOUT"), PGRES_COPY_OUT)};
        char* line = nullptr;
        int rows = 0;
        while (PQgetCopyData(cn, &line, 0) > 0) {
            ++rows;
            PQfreemem(line);
        }
        EXPECT_EQ(rows, 2);
        result_ptr{checked(cn, PQgetResult(cn), PGRES_COMMAND_OK)};
        result_ptr{PQgetResult(cn)};
        // COPY FROM STDIN abandoned by the client: CopyFail.
        result_ptr{checked(cn, PQexec(cn, "SAVEPOINT s; COPY g FROM STDIN"), PGRES_COPY_IN)};
        EXPECT_EQ(PQputCopyEnd(cn, "golden abort"), 1);
        result_ptr{checked(cn, PQgetResult(cn), PGRES_FATAL_ERROR)};
        result_ptr{PQgetResult(cn)};
        result_ptr{checked(cn, PQexec(cn, "ROLLBACK TO SAVEPOINT s; COMMIT"), PGRES_COMMAND_OK)};
        // LISTEN / NOTIFY to ourselves: NotificationResponse.
        result_ptr{checked(cn, PQexec(cn, "LISTEN golden; NOTIFY golden, 'payload'"), PGRES_COMMAND_OK)};
        PGnotify* n = PQnotifies(cn);
        ASSERT_NE(n, nullptr);
        EXPECT_STREQ(n->relname, "golden");
        PQfreemem(n);
        // The fast-path interface (FunctionCall): libpq's large-object calls use it.
        result_ptr{checked(cn, PQexec(cn, "BEGIN"), PGRES_COMMAND_OK)};
        const Oid lo = lo_creat(cn, 0x00060000); // INV_READ | INV_WRITE
        EXPECT_NE(lo, 0u) << PQerrorMessage(cn);
        EXPECT_EQ(lo_unlink(cn, lo), 1) << PQerrorMessage(cn);
        result_ptr{checked(cn, PQexec(cn, "ROLLBACK"), PGRES_COMMAND_OK)};
    }
    const auto caps = relay_->wait_for_connections(1, 20s);
    const auto tr = walk(caps.at(0));
    for (const char* name : {"CopyData", "CopyDone", "CopyFail", "FunctionCall", "Terminate"})
        EXPECT_NE(std::find(tr.client_names.begin(), tr.client_names.end(), name), tr.client_names.end())
            << name << " not seen from the client: " << join(tr.client_names);
    for (const char* name : {"ErrorResponse", "EmptyQueryResponse", "NoticeResponse", "CopyInResponse",
                             "CopyOutResponse", "CopyData", "CopyDone", "NotificationResponse", "FunctionCallResponse"})
        EXPECT_NE(std::find(tr.server_names.begin(), tr.server_names.end(), name), tr.server_names.end())
            << name << " not seen from the server: " << join(tr.server_names);
    const auto errors = tr.all_server<p::error_response>();
    ASSERT_GE(errors.size(), 2u);
    EXPECT_EQ(errors[0]->code(), "22012"); // division_by_zero
    EXPECT_EQ(errors[1]->code(), "57014"); // query_canceled: COPY FROM STDIN failed
    EXPECT_EQ(tr.client_one<p::copy_fail>().message, "golden abort");
    const auto& note = tr.server_one<p::notification_response>();
    EXPECT_EQ(note.channel, "golden");
    EXPECT_EQ(note.payload, "payload");
    EXPECT_EQ(note.process_id, tr.server_one<p::backend_key_data>().process_id);
    bool notice_seen = false;
    for (const auto* nr : tr.all_server<p::notice_response>())
        notice_seen = notice_seen || nr->message() == "golden notice";
    EXPECT_TRUE(notice_seen);
    const auto client_copy = tr.all_client<p::copy_data>();
    ASSERT_FALSE(client_copy.empty());
    EXPECT_EQ(text(client_copy[0]->data), "1\tone\n2\t\\N\n");
    // Transaction states in ReadyForQuery: idle, in a block, failed block.
    std::string states;
    for (const auto* z : tr.all_server<p::ready_for_query>())
        states += z->status;
    EXPECT_NE(states.find('T'), std::string::npos) << states;
    EXPECT_NE(states.find('E'), std::string::npos) << states;
}

TEST_F(golden, cancel_request_carries_the_backend_key) {
    const auto& user = t::cluster().user("sluice_scram");
    {
        auto conn = relay_login(*relay_, user.name, user.password);
        ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
        PGconn* cn = conn.get();
        ASSERT_EQ(PQsendQuery(cn, "SELECT pg_sleep(30)"), 1);
        // The sleep is running once pg_stat_activity shows it: cancel then, not after a guess.
        const auto pid = PQbackendPID(cn);
        auto& c = t::cluster();
        ASSERT_TRUE(pgsluice::bench::poll_until(10s, 10ms, [&] {
            return c.exec_sql(c.primary_index(), "SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                                                     std::to_string(pid) + " AND wait_event = 'PgSleep'")
                       .at(0)
                       .at(0) == "1";
        }));
        PGcancel* cancel = PQgetCancel(cn);
        char err[256];
        EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
        PQfreeCancel(cancel);
        result_ptr r{PQgetResult(cn)};
        EXPECT_STREQ(PQresultErrorField(r.get(), PG_DIAG_SQLSTATE), "57014");
        while (PGresult* more = PQgetResult(cn))
            PQclear(more);
    }
    const auto caps = relay_->wait_for_connections(2, 20s);
    ASSERT_EQ(caps.size(), 2u);
    const auto session = walk(caps[0]);
    const auto cancel = walk(caps[1]);
    EXPECT_EQ(join(cancel.client_names), "CancelRequest");
    EXPECT_TRUE(cancel.server_names.empty()) << "the server answers a CancelRequest by closing";
    const auto& key = session.server_one<p::backend_key_data>();
    const auto& req = cancel.client_one<p::cancel_request>();
    EXPECT_EQ(req.process_id, key.process_id);
    EXPECT_EQ(req.secret_key, key.secret_key);
    EXPECT_EQ(session.server_one<p::error_response>().code(), "57014");
}

TEST_F(golden, sslmode_prefer_falls_back_after_N) {
    const auto& user = t::cluster().user("sluice_scram");
    {
        auto conn = relay_login(*relay_, user.name, user.password, "prefer");
        ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
        EXPECT_EQ(PQsslInUse(conn.get()), 0);
    }
    const auto caps = relay_->wait_for_connections(1, 20s);
    const auto tr = walk(caps.at(0));
    EXPECT_TRUE(tr.ssl_requested);
    EXPECT_EQ(tr.ssl_answer, 'N'); // the cluster runs without TLS
    EXPECT_EQ(join(tr.client_names), "SSLRequest StartupMessage SASLInitialResponse SASLResponse Terminate");
    EXPECT_EQ(tr.server_names.front(), "AuthenticationSASL");
}

} // namespace
