// The shipped static binaries resolve names inside an empty root filesystem
// that holds only the binary, /etc/resolv.conf and /etc/hosts, as in the
// image: glibc's static getaddrinfo, with no NSS modules to load, must read
// both files and follow resolv.conf's search list. The test runs in its own
// network namespace with dnsmasq as the cluster DNS; every architecture's
// binary in PINNIPED_STATIC_DIR is tried (foreign ones under qemu-user,
// copied into the root as well).
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include "tests/support.hpp"

using namespace testing;

namespace {

std::string static_dir() {
  const char *d = std::getenv("PINNIPED_STATIC_DIR");
  return d ? d : "build/static";
}

std::string host_arch() {
  std::string a = run("dpkg --print-architecture 2>/dev/null");
  while (!a.empty() && (a.back() == '\n' || a.back() == ' ')) a.pop_back();
  return a.empty() ? "amd64" : a;
}

// A private network namespace that this thread (and every thread and child
// it starts) lives in until destruction: loopback, which also holds the
// addresses the names resolve to.
struct PrivateNet {
  std::string name = "pinniped-dns-" + std::to_string(getpid());
  int home = -1;
  explicit PrivateNet(const std::vector<std::string> &addresses) {
    // Namespaces of earlier runs that were killed before cleaning up.
    run("for n in $(ls /run/netns 2>/dev/null | grep '^pinniped-dns-[0-9]*$'); do"
        " kill -0 \"${n#pinniped-dns-}\" 2>/dev/null || ip netns del \"$n\"; done");
    run("ip netns del " + name + " 2>/dev/null");
    int rc = 0;
    std::string out = run("ip netns add " + name + " 2>&1", &rc);
    if (rc != 0) throw std::runtime_error("ip netns add: " + out);
    std::string setup = "{ ip -n " + name + " link set lo up";
    for (const auto &a : addresses) setup += " && ip -n " + name + " addr add " + a + "/32 dev lo";
    out = run(setup + "; } 2>&1", &rc);
    if (rc != 0) throw std::runtime_error("netns setup: " + out);
    home = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (home < 0 || fd < 0 || setns(fd, CLONE_NEWNET) != 0) throw std::runtime_error("setns failed");
    ::close(fd);
  }
  ~PrivateNet() {
    if (home >= 0) {
      setns(home, CLONE_NEWNET);
      ::close(home);
    }
    run("ip netns del " + name + " 2>/dev/null");
  }
};

void copy_file(const std::string &from, const std::string &to, mode_t mode) {
  int rc = 0;
  std::string out = run("cp " + shell_quote(from) + " " + shell_quote(to) + " 2>&1", &rc);
  if (rc != 0) throw std::runtime_error("cp: " + out);
  ::chmod(to.c_str(), mode);
}

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("static binaries resolve service names from only /etc/resolv.conf and /etc/hosts") {
  REQUIRE_FALSE(geteuid() != 0);  // network namespaces and chroot need root
  int rc = 0;
  std::string dnsmasq = run("command -v dnsmasq || ls /usr/sbin/dnsmasq 2>/dev/null");
  REQUIRE_FALSE(dnsmasq.empty());  // Debian's dnsmasq-base (make deps)
  dnsmasq.erase(dnsmasq.find('\n'));

  // 10.235.0.1: the concierge's name, .2: the IDP's name (both by DNS), .3:
  // the IDP's other name (by /etc/hosts), .53: the DNS server.
  PrivateNet net({"10.235.0.1", "10.235.0.2", "10.235.0.3", "10.235.0.53"});
  TempDir dir;
  Process dns({dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
               "--listen-address=10.235.0.53", "--bind-interfaces", "--pid-file=", "--log-queries",
               "--log-facility=-", "--local=/cluster.local/",
               "--address=/concierge.pinniped.svc.cluster.local/10.235.0.1",
               "--address=/idp.pinniped.svc.cluster.local/10.235.0.2"},
              dir.file("dnsmasq.log"));
  REQUIRE(eventually([&] { return contains(dns.log(), "started"); }, Millis(5000)));

  // The IDP answers on every address of the namespace, with a certificate
  // for both of its names only.
  FakeIdp idp({"idp.pinniped.svc", "idp-by-hosts.test"}, "0.0.0.0");
  idp.add_user("dns-token", {"dana", "", {"resolvers"}, {}});
  idp.add_user("hosts-token", {"hank", "", {}, {}});
  auto signer = make_self_signed_ca("dns-test-signer", std::chrono::hours(1));

  std::vector<std::string> arches;
  for (const char *a : {"amd64", "arm64", "armhf"})
    if (access((static_dir() + "/" + a + "/pinniped").c_str(), R_OK) == 0) arches.push_back(a);
  REQUIRE_FALSE(arches.empty());
  const std::string host = host_arch();

  for (const auto &arch : arches) {
    DYNAMIC_SECTION(arch) {
      // The root: the binary, the two files, the concierge's own config.
      std::string root = dir.file("root-" + arch);
      for (const char *d : {"", "/etc", "/config", "/run"}) ::mkdir((root + d).c_str(), 0755);
      copy_file(static_dir() + "/" + arch + "/pinniped", root + "/pinniped", 0755);
      std::vector<std::string> prefix = {"/usr/sbin/chroot", root};
      if (arch != host) {
        std::string q = arch == "arm64" ? "qemu-aarch64-static" : arch == "armhf" ? "qemu-arm-static" : "qemu-x86_64-static";
        std::string qpath = run("command -v " + q);
        REQUIRE_FALSE(qpath.empty());
        qpath.erase(qpath.find('\n'));
        copy_file(qpath, root + "/qemu", 0755);
        prefix.push_back("/qemu");
      }
      prefix.push_back("/pinniped");
      pinniped::write_file_atomic(root + "/etc/resolv.conf",
                           "search pinniped.svc.cluster.local svc.cluster.local cluster.local\n"
                           "nameserver 10.235.0.53\noptions ndots:5\n");
      pinniped::write_file_atomic(root + "/etc/hosts", "127.0.0.1 localhost\n10.235.0.3 idp-by-hosts.test\n");
      pinniped::write_file_atomic(root + "/config/s.crt", signer.cert_pem);
      pinniped::write_file_atomic(root + "/config/s.key", signer.key_pem);
      std::string port = std::to_string(idp.port());
      pinniped::write_file_atomic(root + "/config/auth.yaml",
                           authenticator_yaml("by-dns", "https://idp.pinniped.svc:" + port + "/authenticate",
                                              idp.ca_data()) +
                               "---\n" +
                               authenticator_yaml("by-hosts", "https://idp-by-hosts.test:" + port + "/authenticate",
                                                  idp.ca_data()) +
                               "---\n" +
                               authenticator_yaml("nowhere", "https://nowhere.pinniped.svc:" + port + "/authenticate",
                                                  idp.ca_data()));

      // The concierge, in the empty root, on every address of the namespace.
      auto argv = prefix;
      for (const char *a : {"concierge", "--listen", "0.0.0.0:0", "--port-file", "/run/port", "--serving-ca-out",
                            "/run/serving-ca.pem", "--tls-san", "concierge.pinniped.svc", "--signer-cert",
                            "/config/s.crt", "--signer-key", "/config/s.key", "--authenticators", "/config/auth.yaml",
                            "--webhook-attempts", "1"})
        argv.push_back(a);
      Process concierge(argv, dir.file("concierge-" + arch + ".log"));
      int cport = wait_for_port_file(concierge, root + "/run/port", Millis(20000 * slow_factor()));
      INFO(concierge.log());
      REQUIRE(cport > 0);
      REQUIRE(access((root + "/run/serving-ca.pem").c_str(), R_OK) == 0);

      // The CLI, in the same root: it resolves the concierge's service name
      // through the search list; the concierge resolves the IDP's.
      std::string ca_data = detail::base64_encode(pinniped::read_file(root + "/run/serving-ca.pem"));
      auto login = [&](const std::string &authenticator, const std::string &token) {
        std::string cmd;
        for (const auto &p : prefix) cmd += shell_quote(p) + " ";
        cmd += "login static --concierge-endpoint https://concierge.pinniped.svc:" + std::to_string(cport) +
               " --concierge-ca-bundle-data " + ca_data + " --concierge-authenticator-name " + authenticator +
               " --credential-cache /run/cache-" + authenticator + ".yaml --token " + token + " 2>&1";
        return run(cmd, &rc);
      };
      std::string out = login("by-dns", "dns-token");
      INFO(out);
      REQUIRE(rc == 0);
      auto c = parse_exec_credential(out);
      auto chain = CertificateChain::parse(c.client_certificate_data);
      CHECK(detail::common_name(&chain->get()->subject) == "dana");

      out = login("by-hosts", "hosts-token");
      CHECK(rc == 0);
      CHECK(contains(out, "\"clientCertificateData\""));

      // A name nobody knows: a refusal, and the concierge lives on.
      out = login("nowhere", "dns-token");
      CHECK(rc != 0);
      CHECK(std::count(out.begin(), out.end(), '\n') == 1);
      CHECK(concierge.running());
      CHECK_FALSE(contains(concierge.log(), "dns-token"));

      // The DNS server was asked, with the search list applied.
      std::string queries = dns.log();
      INFO(queries);
      CHECK(contains(queries, "query[A] concierge.pinniped.svc.pinniped.svc.cluster.local"));
      CHECK(contains(queries, "query[A] idp.pinniped.svc.cluster.local"));
      CHECK(contains(queries, "nowhere.pinniped.svc"));
      CHECK_FALSE(contains(queries, "idp-by-hosts.test"));  // answered by /etc/hosts alone
    }
  }
}
