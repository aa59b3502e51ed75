// Test certificates through the openssl command (see bench/tls_files.hpp).
#include "bench/tls_files.hpp"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>

namespace pgsluice::bench {

namespace fs = std::filesystem;

namespace {

void run_openssl(const std::vector<std::string>& args, const fs::path& dir) {
  spawn_options o;
  o.argv = {"openssl"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.log_file = dir / "openssl.log";
  o.working_dir = dir;
  auto child = child_process::spawn(o, SIGTERM);
  if (!child.wait_exit(std::chrono::seconds(60)) || child.exit_status().value_or(-1) != 0) {
    child.stop(std::chrono::seconds(5));
    throw stack_error("openssl " + args.front() + " failed: " + read_file_tail(o.log_file, 2000));
  }
}

void hand_over(const tls_files& f, const service_user& owner) {
  for (const auto& [p, mode] : {std::pair{f.cert, 0644}, std::pair{f.key, 0600}}) {
    fs::permissions(p, static_cast<fs::perms>(mode));
    if (owner.switch_needed && ::chown(p.c_str(), owner.uid, owner.gid) != 0)
      throw stack_error("cannot hand " + p.string() + " to " + owner.name);
  }
}

const std::vector<std::string> ec_key{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};

}  // namespace

tls_files make_test_ca(const fs::path& dir, const std::string& name, const service_user& owner) {
  tls_files f;
  f.cert = f.ca_cert = dir / (name + ".crt");
  f.key = f.ca_key = dir / (name + ".key");
  std::vector<std::string> args{"req", "-x509"};
  args.insert(args.end(), ec_key.begin(), ec_key.end());
  args.insert(args.end(), {"-sha256", "-days", "30", "-subj", "/CN=" + name, "-keyout", f.key.string(), "-out",
                           f.cert.string(), "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                           "keyUsage=critical,keyCertSign,cRLSign"});
  run_openssl(args, dir);
  hand_over(f, owner);
  return f;
}

tls_files make_test_certificate(const tls_files& ca, const fs::path& dir, const std::string& stem,
                                const std::string& common_name, bool server, const service_user& owner) {
  tls_files f;
  f.ca_cert = ca.ca_cert;
  f.ca_key = ca.ca_key;
  f.cert = dir / (stem + ".crt");
  f.key = dir / (stem + ".key");
  const fs::path csr = dir / (stem + ".csr");
  const fs::path ext = dir / (stem + ".ext");
  std::vector<std::string> args{"req", "-new"};
  args.insert(args.end(), ec_key.begin(), ec_key.end());
  args.insert(args.end(), {"-subj", "/CN=" + common_name, "-keyout", f.key.string(), "-out", csr.string()});
  run_openssl(args, dir);
  {
    std::ofstream out(ext);
    out << "basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\n";
    if (server) {
      out << "extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n";
    } else {
      out << "extendedKeyUsage = clientAuth\n";
    }
  }
  std::random_device rd;
  const std::string serial = std::to_string((static_cast<std::uint64_t>(rd()) << 20) ^ rd());
  run_openssl({"x509", "-req", "-sha256", "-days", "30", "-in", csr.string(), "-CA", ca.ca_cert.string(), "-CAkey",
               ca.ca_key.string(), "-set_serial", serial, "-extfile", ext.string(), "-out", f.cert.string()},
              dir);
  std::error_code ec;
  fs::remove(csr, ec);
  fs::remove(ext, ec);
  hand_over(f, owner);
  return f;
}

}  // namespace pgsluice::bench
