// Section 3: the TLS transport on mbedTLS. An in-process TlsServer and
// HttpsClient talk real TLS on 127.0.0.1; the openssl CLI plays a foreign peer.
#include <fcntl.h>
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <set>

#include "tests/support.hpp"

using namespace pinniped;
using testing::slow_factor;

namespace {

Millis scaled(int ms) { return Millis(ms * slow_factor()); }

double elapsed_ms(Steady::time_point since) {
  return std::chrono::duration<double, std::milli>(Steady::now() - since).count();
}

// Polls every 10 ms.
bool eventually(const std::function<bool()> &cond, Millis limit) {
  return testing::eventually(cond, limit, Millis(10));
}

// A leaf certificate with full control over names, lifetime and EKU.
CertificateAndKey leaf_cert(const CertificateAndKey &ca, const std::vector<std::string> &dns,
                            const std::vector<std::string> &ips, Clock::time_point not_before,
                            Clock::time_point not_after) {
  CertificateTemplate t;
  t.common_name = dns.empty() ? (ips.empty() ? "server" : ips[0]) : dns[0];
  t.server_auth = true;
  t.dns_names = dns;
  t.ip_addresses = ips;
  t.not_before = not_before;
  t.not_after = not_after;
  return issue_with_ca(ca, t);
}

TlsServerCredentials credentials(const CertificateAndKey &leaf, const std::string &client_ca = "") {
  return {leaf.cert_pem, leaf.key_pem, client_ca};
}

// A TlsServer on 127.0.0.1 with a few routes:
//   GET /hello   "hello"
//   GET /peer    the TLS peer as JSON (present, verified, cn, orgs)
//   GET /port    the client's source port (also recorded in ports())
//   GET /wait    blocks until release() (bounded), then "done"
//   POST /upload the body size
//   GET /big     2 MiB of text
class TestServer {
 public:
  explicit TestServer(const TlsServerCredentials &cr, TlsServerOptions o = TlsServerOptions(), int port = 0)
      : server_(o) {
    server_.set_credentials(cr);
    server_.Get("/hello",
                [](const httplib::Request &, httplib::Response &res) { res.set_content("hello", "text/plain"); });
    server_.Get("/peer", [](const httplib::Request &, httplib::Response &res) {
      const PeerCertificate &p = TlsServer::peer();
      picojson::object o;
      o["present"] = picojson::value(p.present);
      o["verified"] = picojson::value(p.verified);
      o["cn"] = picojson::value(p.common_name);
      picojson::array orgs;
      for (const auto &g : p.organizations) orgs.push_back(picojson::value(g));
      o["orgs"] = picojson::value(orgs);
      res.set_content(picojson::value(o).serialize(), "application/json");
    });
    server_.Get("/port", [this](const httplib::Request &req, httplib::Response &res) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        ports_.insert(req.remote_port);
      }
      res.set_content(std::to_string(req.remote_port), "text/plain");
    });
    server_.Get("/wait", [this](const httplib::Request &, httplib::Response &res) {
      waiting_++;
      auto until = Steady::now() + std::chrono::seconds(20 * slow_factor());
      while (!released_ && Steady::now() < until) std::this_thread::sleep_for(Millis(5));
      res.set_content("done", "text/plain");
    });
    server_.Post("/upload", [](const httplib::Request &req, httplib::Response &res) {
      res.set_content(std::to_string(req.body.size()), "text/plain");
    });
    server_.Get("/big", [](const httplib::Request &, httplib::Response &res) {
      res.set_content(std::string(2 * 1024 * 1024, 'b'), "text/plain");
    });
    if (port == 0) {
      port_ = server_.bind_to_any_port("127.0.0.1");
    } else if (server_.bind_to_port("127.0.0.1", port)) {
      port_ = port;
    }
    if (port_ <= 0) throw std::runtime_error("cannot bind the test server");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(Millis(1));
  }
  ~TestServer() {
    release();
    server_.shutdown();
    thread_.join();
  }
  TestServer(const TestServer &) = delete;
  TestServer &operator=(const TestServer &) = delete;

  TlsServer &server() { return server_; }
  int port() const { return port_; }
  std::string url(const std::string &host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(port_);
  }
  void release() { released_ = true; }
  int waiting() const { return waiting_.load(); }
  std::set<int> ports() const {
    std::lock_guard<std::mutex> lk(mu_);
    return ports_;
  }

 private:
  TlsServer server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> released_{false};
  std::atomic<int> waiting_{0};
  mutable std::mutex mu_;
  std::set<int> ports_;
};

ClientTlsOptions trust(const std::string &ca_pem) {
  ClientTlsOptions t;
  t.ca_pem = ca_pem;
  return t;
}

HttpResponse get(const std::string &url, const ClientTlsOptions &tls, const std::string &path = "/hello") {
  HttpsClient c(url, tls);
  return c.request("GET", path, {}, "", scaled(10000));
}

// Runs `fn`, which must throw pinniped::Error 503; returns the message.
std::string transport_error(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const Error &e) {
    CHECK(e.code == 503);
    CHECK(e.reason == "ServiceUnavailable");
    return e.what();
  }
  FAIL("the request succeeded but should have failed");
  return "";
}

std::string get_error(const std::string &url, const ClientTlsOptions &tls, const std::string &path = "/hello") {
  return transport_error([&] { get(url, tls, path); });
}

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

// A TCP listener on 127.0.0.1 that never accepts: the kernel completes the
// TCP handshake, nobody ever speaks TLS.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr *>(&a), len) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) != 0)
      throw std::runtime_error("cannot listen");
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A port on 127.0.0.1 where nothing listens (bound once, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&a), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0)
    throw std::runtime_error("cannot bind");
  ::close(fd);
  return ntohs(a.sin_port);
}

// A plain TCP connection to 127.0.0.1:port (no TLS).
int tcp_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) throw std::runtime_error("connect");
  return fd;
}

std::string s_client(int port, const std::string &flags, int *rc) {
  return testing::run(
      "timeout 5 openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " " + flags + " </dev/null 2>&1", rc);
}

struct Pki {
  CertificateAndKey ca = make_self_signed_ca("test-server-ca", std::chrono::hours(24));
  CertificateAndKey leaf = testing::serving_cert(ca, {"localhost", "127.0.0.1"});
};

}  // namespace

// ---------------------------------------------------------------------------
// Protocol versions and ALPN, seen by a foreign TLS stack.

TEST_CASE(
    "sockets above FD_SETSIZE are served (cpp-httplib's definitions are compiled with poll, as pinniped.hpp asks)") {
  // Busy processes hold many descriptors; select(2) cannot watch one at or
  // above FD_SETSIZE, and cpp-httplib built without CPPHTTPLIB_USE_POLL
  // answers such a connection 500. Its definitions are compiled apart
  // (libhttplib.a): this fails if they were compiled without the setting.
  struct rlimit old {};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < FD_SETSIZE + 64) {
    WARN("the hard descriptor limit is below FD_SETSIZE + 64: nothing to check here");
    return;
  }
  struct rlimit more = old;
  more.rlim_cur = std::max<rlim_t>(old.rlim_cur, FD_SETSIZE + 64);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &more) == 0);
  std::vector<int> held;
  for (int fd = 0; fd < FD_SETSIZE;) {
    fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) FAIL("cannot open /dev/null: " << std::strerror(errno));
    held.push_back(fd);
  }
  {
    Pki pki;
    TestServer s(credentials(pki.leaf));
    auto res = get(s.url(), trust(pki.ca.cert_pem));
    CHECK(res.status == 200);
    CHECK(res.body == "hello");
  }
  for (int fd : held) ::close(fd);
  ::setrlimit(RLIMIT_NOFILE, &old);
}

TEST_CASE("openssl: TLS 1.1 is refused by the server, TLS 1.2 is accepted") {
  Pki pki;
  TestServer s(credentials(pki.leaf));
  int rc = 0;
  // SECLEVEL=0 lets OpenSSL 3 offer TLS 1.1 at all, so a refusal is the server's.
  std::string out = s_client(s.port(), "-tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'", &rc);
  INFO(out);
  CHECK(rc != 0);
  CHECK(contains(out, "alert protocol version"));
  CHECK_FALSE(contains(out, "no protocols available"));

  out = s_client(s.port(), "-tls1_2", &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK(contains(out, "New, TLSv1.2"));
}

TEST_CASE("openssl: ALPN negotiates http/1.1") {
  Pki pki;
  TestServer s(credentials(pki.leaf));
  int rc = 0;
  std::string out = s_client(s.port(), "-alpn http/1.1", &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK(contains(out, "ALPN protocol: http/1.1"));
}

TEST_CASE("openssl: the key exchange prefers X25519 and P-256, as Go does, and SHA-224 signatures are refused") {
  Pki pki;
  TestServer s(credentials(pki.leaf));
  struct Row {
    std::string groups, want;
  };
  // The server's preference wins: a client that lists P-521 first still gets P-256.
  for (const auto &row :
       {Row{"P-256:P-521", "prime256v1"}, Row{"P-521:P-256", "prime256v1"}, Row{"X25519:P-256", "X25519"},
        Row{"P-256:X25519", "X25519"}, Row{"P-384:P-256", "prime256v1"}}) {
    INFO(row.groups);
    int rc = 0;
    std::string out = s_client(s.port(), "-tls1_2 -groups " + row.groups, &rc);
    INFO(out);
    CHECK(rc == 0);
    CHECK(contains(out, "Server Temp Key: " + std::string(row.want == "X25519" ? "X25519" : "ECDH, " + row.want)));
  }
  int rc = 0;
  std::string out = s_client(s.port(), "-tls1_2 -sigalgs ECDSA+SHA224", &rc);
  INFO(out);
  CHECK(rc != 0);
  CHECK(contains(out, "handshake failure"));
}

TEST_CASE("openssl: session tickets resume a TLS session, across a certificate reload too") {
  Pki pki;
  TestServer s(credentials(pki.leaf));
  testing::TempDir dir;
  std::string sess = dir.file("session.pem");
  int rc = 0;
  std::string out = s_client(s.port(), "-tls1_2 -sess_out " + sess, &rc);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(contains(out, "New, TLSv1.2"));
  CHECK(contains(out, "TLS session ticket lifetime hint"));
  out = s_client(s.port(), "-tls1_2 -sess_in " + sess, &rc);
  CHECK(rc == 0);
  CHECK(contains(out, "Reused, TLSv1.2"));
  // A new certificate (rotation) keeps the ticket keys.
  s.server().set_credentials(credentials(testing::serving_cert(pki.ca, {"localhost", "127.0.0.1"})));
  out = s_client(s.port(), "-tls1_2 -sess_in " + sess, &rc);
  CHECK(rc == 0);
  CHECK(contains(out, "Reused, TLSv1.2"));
  // Another server (another process, a restart) does not know the ticket.
  TestServer other(credentials(pki.leaf));
  out = s_client(other.port(), "-tls1_2 -sess_in " + sess, &rc);
  CHECK(rc == 0);
  CHECK(contains(out, "New, TLSv1.2"));
}

// ---------------------------------------------------------------------------
// Client certificates: what TlsServer::peer() reports.

TEST_CASE("client certificates are verified against the configured client CA") {
  Pki pki;
  auto client_ca = make_self_signed_ca("client-ca", std::chrono::hours(24));
  auto other_ca = make_self_signed_ca("other-client-ca", std::chrono::hours(24));
  TestServer s(credentials(pki.leaf, client_ca.cert_pem));

  auto peer_with = [&](const CertificateAndKey *cert) {
    ClientTlsOptions tls = trust(pki.ca.cert_pem);
    if (cert) {
      tls.client_cert_pem = cert->cert_pem;
      tls.client_key_pem = cert->key_pem;
    }
    auto res = get(s.url(), tls, "/peer");
    REQUIRE(res.status == 200);
    return json::parse(res.body);
  };
  auto orgs_of = [](const picojson::value &v) {
    std::vector<std::string> out;
    for (const auto &o : v.get("orgs").get<picojson::array>()) out.push_back(o.get<std::string>());
    return out;
  };

  SECTION("a clientAuth certificate from the client CA is verified, with CN and O's in order") {
    auto cert = testing::client_cert(client_ca, "alice", {"devs", "ops", "admins"});
    auto p = peer_with(&cert);
    CHECK(p.get("present").get<bool>());
    CHECK(p.get("verified").get<bool>());
    CHECK(p.get("cn").get<std::string>() == "alice");
    CHECK(orgs_of(p) == std::vector<std::string>{"devs", "ops", "admins"});
  }
  SECTION("a certificate from another CA is present but not verified") {
    auto cert = testing::client_cert(other_ca, "mallory", {"system:masters"});
    auto p = peer_with(&cert);
    CHECK(p.get("present").get<bool>());
    CHECK_FALSE(p.get("verified").get<bool>());
  }
  SECTION("no certificate: not present, not verified") {
    auto p = peer_with(nullptr);
    CHECK_FALSE(p.get("present").get<bool>());
    CHECK_FALSE(p.get("verified").get<bool>());
    CHECK(p.get("cn").get<std::string>().empty());
  }
  SECTION("a serverAuth-only certificate from the client CA is not verified") {
    auto cert = testing::serving_cert(client_ca, {"alice"}, /*server_auth=*/true);
    auto p = peer_with(&cert);
    CHECK(p.get("present").get<bool>());
    CHECK_FALSE(p.get("verified").get<bool>());
  }
  SECTION("an expired certificate from the client CA is not verified") {
    CertificateTemplate t;
    t.common_name = "old-alice";
    t.client_auth = true;
    t.not_before = Clock::now() - std::chrono::hours(48);
    t.not_after = Clock::now() - std::chrono::hours(24);
    auto cert = issue_with_ca(client_ca, t);
    auto p = peer_with(&cert);
    CHECK(p.get("present").get<bool>());
    CHECK_FALSE(p.get("verified").get<bool>());
  }
}

TEST_CASE("without a client CA, no client certificate is requested") {
  Pki pki;
  auto client_ca = make_self_signed_ca("client-ca", std::chrono::hours(24));
  TestServer s(credentials(pki.leaf));
  auto cert = testing::client_cert(client_ca, "alice", {"devs"});
  ClientTlsOptions tls = trust(pki.ca.cert_pem);
  tls.client_cert_pem = cert.cert_pem;
  tls.client_key_pem = cert.key_pem;
  auto res = get(s.url(), tls, "/peer");
  REQUIRE(res.status == 200);
  auto p = json::parse(res.body);
  CHECK_FALSE(p.get("present").get<bool>());
  CHECK_FALSE(p.get("verified").get<bool>());
}

TEST_CASE("a client certificate that does not match its key is refused before connecting") {
  auto ca = make_self_signed_ca("client-ca", std::chrono::hours(24));
  auto a = testing::client_cert(ca, "a"), b = testing::client_cert(ca, "b");
  ClientTlsOptions tls;
  tls.insecure_skip_verify = true;
  tls.client_cert_pem = a.cert_pem;
  tls.client_key_pem = b.key_pem;
  try {
    HttpsClient c("https://127.0.0.1:1", tls);
    FAIL("a mismatched client certificate and key were accepted");
  } catch (const Error &e) {
    CHECK(e.code == 400);
    CHECK(contains(e.what(), "do not match"));
  }
}

// ---------------------------------------------------------------------------
// Serving credentials replaced while serving.

TEST_CASE("set_credentials swaps the serving certificate without a restart") {
  auto ca_a = make_self_signed_ca("ca-a", std::chrono::hours(24));
  auto ca_b = make_self_signed_ca("ca-b", std::chrono::hours(24));
  auto leaf_a = testing::serving_cert(ca_a, {"127.0.0.1"});
  auto leaf_b = testing::serving_cert(ca_b, {"127.0.0.1"});
  TestServer s(credentials(leaf_a));

  // A kept-alive connection opened with the old certificate.
  HttpsClient old_client(s.url(), trust(ca_a.cert_pem));
  REQUIRE(old_client.request("GET", "/port", {}, "", scaled(5000)).status == 200);

  REQUIRE(get(s.url(), trust(ca_a.cert_pem)).status == 200);
  CHECK(contains(get_error(s.url(), trust(ca_b.cert_pem)), "verification failed"));

  s.server().set_credentials(credentials(leaf_b));
  CHECK(get(s.url(), trust(ca_b.cert_pem)).status == 200);
  CHECK(contains(get_error(s.url(), trust(ca_a.cert_pem)), "verification failed"));

  // The open connection finishes with what it started with.
  CHECK(old_client.request("GET", "/port", {}, "", scaled(5000)).status == 200);
  CHECK(s.ports().size() == 1);

  SECTION("a broken certificate PEM is refused and the current one stays") {
    TlsServerCredentials broken = credentials(leaf_a);
    broken.cert_chain_pem = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
    try {
      s.server().set_credentials(broken);
      FAIL("a broken certificate was accepted");
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(contains(e.what(), "serving certificate"));
    }
  }
  SECTION("a broken key PEM is refused and the current one stays") {
    TlsServerCredentials broken = credentials(leaf_a);
    broken.key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    try {
      s.server().set_credentials(broken);
      FAIL("a broken key was accepted");
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(contains(e.what(), "serving key"));
    }
  }
  SECTION("a certificate with another certificate's key is refused and the current one stays") {
    TlsServerCredentials mismatched{leaf_a.cert_pem, leaf_b.key_pem, ""};
    try {
      s.server().set_credentials(mismatched);
      FAIL("a mismatched certificate and key were accepted");
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(contains(e.what(), "do not match"));
    }
  }
  SECTION("a broken client CA is refused and the current one stays") {
    try {
      s.server().set_credentials(credentials(leaf_a, "garbage"));
      FAIL("a broken client CA was accepted");
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(contains(e.what(), "client CA"));
    }
  }
  CHECK(s.server().has_credentials());
  CHECK(get(s.url(), trust(ca_b.cert_pem)).status == 200);
  CHECK(contains(get_error(s.url(), trust(ca_a.cert_pem)), "verification failed"));
}

// ---------------------------------------------------------------------------
// HttpsClient: server verification.

TEST_CASE("HttpsClient verifies the server certificate") {
  auto ca = make_self_signed_ca("server-ca", std::chrono::hours(24));
  auto other_ca = make_self_signed_ca("other-ca", std::chrono::hours(24));
  auto now = Clock::now();

  SECTION("an IP SAN matches a connection by IP") {
    TestServer s(credentials(testing::serving_cert(ca, {"127.0.0.1"})));
    auto res = get(s.url(), trust(ca.cert_pem));
    CHECK(res.status == 200);
    CHECK(res.body == "hello");
  }
  SECTION("a DNS-only certificate does not match a connection by IP") {
    TestServer s(credentials(testing::serving_cert(ca, {"localhost"})));
    std::string msg = get_error(s.url(), trust(ca.cert_pem));
    CHECK(contains(msg, "not valid for IP address 127.0.0.1"));
  }
  SECTION("a certificate whose CN is the IP but without an IP SAN does not match") {
    CertificateTemplate t;
    t.common_name = "127.0.0.1";
    t.server_auth = true;
    t.not_before = now - std::chrono::minutes(5);
    t.not_after = now + std::chrono::hours(1);
    TestServer s(credentials(issue_with_ca(ca, t)));
    CHECK(contains(get_error(s.url(), trust(ca.cert_pem)), "not valid for IP address 127.0.0.1"));
  }
  SECTION("a localhost certificate matches https://localhost") {
    TestServer s(credentials(testing::serving_cert(ca, {"localhost"})));
    CHECK(get(s.url("localhost"), trust(ca.cert_pem)).status == 200);
  }
  SECTION("a certificate for another name does not match https://localhost") {
    TestServer s(credentials(testing::serving_cert(ca, {"idp.example"})));
    CHECK(contains(get_error(s.url("localhost"), trust(ca.cert_pem)), "verification failed"));
  }
  SECTION("a certificate from another CA fails verification") {
    TestServer s(credentials(testing::serving_cert(other_ca, {"127.0.0.1", "localhost"})));
    CHECK(contains(get_error(s.url(), trust(ca.cert_pem)), "verification failed"));
    CHECK(contains(get_error(s.url("localhost"), trust(ca.cert_pem)), "verification failed"));
  }
  SECTION("server_name overrides the name to verify") {
    TestServer s(credentials(testing::serving_cert(ca, {"idp.example"})));
    ClientTlsOptions tls = trust(ca.cert_pem);
    tls.server_name = "idp.example";
    CHECK(get(s.url(), tls).status == 200);
    tls.server_name = "other.example";
    CHECK(contains(get_error(s.url(), tls), "verification failed"));
  }
  SECTION("an expired server certificate fails verification") {
    TestServer s(credentials(
        leaf_cert(ca, {"localhost"}, {"127.0.0.1"}, now - std::chrono::hours(48), now - std::chrono::hours(1))));
    std::string msg = get_error(s.url(), trust(ca.cert_pem));
    CHECK(contains(msg, "verification failed"));
    CHECK(contains(msg, "expired"));
  }
  SECTION("a server certificate that is not yet valid fails verification") {
    TestServer s(credentials(
        leaf_cert(ca, {"localhost"}, {"127.0.0.1"}, now + std::chrono::hours(1), now + std::chrono::hours(48))));
    CHECK(contains(get_error(s.url(), trust(ca.cert_pem)), "verification failed"));
  }
  SECTION("insecure_skip_verify connects whatever the certificate") {
    TestServer s(credentials(
        leaf_cert(other_ca, {"elsewhere.example"}, {}, now - std::chrono::hours(48), now - std::chrono::hours(1))));
    ClientTlsOptions tls;
    tls.insecure_skip_verify = true;
    CHECK(get(s.url(), tls).status == 200);
  }
  SECTION("a CA bundle that does not parse is refused up front") {
    try {
      HttpsClient c("https://127.0.0.1:1", trust("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
      FAIL("a broken CA was accepted");
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(contains(e.what(), "certificate authority"));
    }
  }
  SECTION("plain http:// is refused") {
    CHECK_THROWS_AS(HttpsClient("http://127.0.0.1:80", ClientTlsOptions()), Error);
  }
}

TEST_CASE("HttpsClient reports an unreachable server as 503") {
  std::string msg = get_error("https://127.0.0.1:" + std::to_string(closed_port()), trust(""));
  CHECK(contains(msg, "cannot connect"));
  CHECK(contains(msg, ": connection refused"));  // the errno, not just "failed"
  CHECK(detail::connect_failure("127.0.0.1", closed_port(), 1000) == "connection refused");
}

// ---------------------------------------------------------------------------
// Timeouts.

TEST_CASE("a server that never answers the TLS handshake times out within the deadline") {
  SilentListener silent;
  const Millis timeout(1000);
  auto started = Steady::now();
  std::string msg = transport_error([&] {
    HttpsClient c("https://127.0.0.1:" + std::to_string(silent.port()), trust(""));
    c.request("GET", "/", {}, "", timeout);
  });
  double ms = elapsed_ms(started);
  INFO(msg << " after " << ms << " ms");
  CHECK(contains(msg, "timed out"));
  CHECK(ms >= timeout.count() * 0.9);
  CHECK(ms < timeout.count() + 1000.0 * slow_factor());
}

TEST_CASE("a server that accepts the request and then stalls times out within the deadline") {
  Pki pki;
  TestServer s(credentials(pki.leaf));
  HttpsClient c(s.url(), trust(pki.ca.cert_pem));
  REQUIRE(c.request("GET", "/hello", {}, "", scaled(5000)).status == 200);  // handshake done, kept alive

  const Millis timeout(1000);
  auto started = Steady::now();
  std::string msg = transport_error([&] { c.request("GET", "/wait", {}, "", timeout); });
  double ms = elapsed_ms(started);
  INFO(msg << " after " << ms << " ms");
  CHECK(contains(msg, "timed out"));
  CHECK(ms >= timeout.count() * 0.9);
  CHECK(ms < timeout.count() + 1000.0 * slow_factor());
  s.release();

  // The same client recovers on a fresh connection.
  CHECK(c.request("GET", "/hello", {}, "", scaled(5000)).status == 200);
}

TEST_CASE("a server that closes the connection at once gives an Error, quickly") {
  // Accepts TCP and closes it: the handshake meets EOF.
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr *>(&a), len) == 0);
  REQUIRE(::listen(lfd, 4) == 0);
  REQUIRE(::getsockname(lfd, reinterpret_cast<sockaddr *>(&a), &len) == 0);
  std::thread closer([lfd] {
    int fd = ::accept(lfd, nullptr, nullptr);
    if (fd >= 0) ::close(fd);
  });
  auto started = Steady::now();
  std::string msg = get_error("https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)), trust(""));
  closer.join();
  ::close(lfd);
  CHECK(contains(msg, "TLS handshake"));
  CHECK(elapsed_ms(started) < 2000.0 * slow_factor());
}

// ---------------------------------------------------------------------------
// Keep-alive.

TEST_CASE("HttpsClient keeps one connection alive across requests") {
  Pki pki;
  TestServer s(credentials(pki.leaf));
  HttpsClient c(s.url(), trust(pki.ca.cert_pem));
  for (int i = 0; i < 50; i++) {
    auto res = c.request("GET", "/port", {}, "", scaled(5000));
    REQUIRE(res.status == 200);
  }
  CHECK(s.ports().size() == 1);
  CHECK(s.server().open_connections() == 1);

  // Other clients coming and going (free workers remain) do not evict it.
  for (int i = 0; i < 20; i++) {
    REQUIRE(get(s.url(), trust(pki.ca.cert_pem)).status == 200);
    std::this_thread::sleep_for(Millis(5));
    REQUIRE(c.request("GET", "/port", {}, "", scaled(5000)).status == 200);
  }
  CHECK(s.ports().size() == 1);
}

// The TLS records of what the server sent on `fd` so far, read with
// MSG_PEEK (mbedTLS then reads them as usual): type and length of each.
std::vector<std::pair<int, size_t>> peek_records(int fd) {
  std::string buf(256 * 1024, '\0');
  ssize_t n = ::recv(fd, &buf[0], buf.size(), MSG_PEEK | MSG_DONTWAIT);
  std::vector<std::pair<int, size_t>> out;
  for (size_t at = 0; n > 0 && at + 5 <= static_cast<size_t>(n);) {
    size_t len = (static_cast<unsigned char>(buf[at + 3]) << 8) | static_cast<unsigned char>(buf[at + 4]);
    out.push_back({static_cast<unsigned char>(buf[at]), len});
    at += 5 + len;
  }
  return out;
}

TEST_CASE(
    "an answer's head and body go out as one TLS record; a head whose body never comes, and streams, are not held") {
  Pki pki;
  TestServer s(credentials(pki.leaf));
  std::atomic<bool> go_on{false};
  s.server().Get("/stream", [&](const httplib::Request &, httplib::Response &res) {
    res.set_chunked_content_provider("text/plain", [&](size_t offset, httplib::DataSink &sink) {
      if (offset == 0) {
        sink.write("first", 5);
        return true;
      }
      auto until = Steady::now() + scaled(5000);
      while (!go_on && Steady::now() < until) std::this_thread::sleep_for(Millis(5));
      sink.write("second", 6);
      sink.done();
      return true;
    });
  });
  s.server().Get("/sized", [](const httplib::Request &, httplib::Response &res) {
    res.set_content_provider(5, "text/plain", [](size_t offset, size_t, httplib::DataSink &sink) {
      sink.write(offset == 0 ? "hel" : "lo", offset == 0 ? 3 : 2);
      return true;
    });
  });
  int fd = tcp_connect(s.port());
  detail::TlsSession tls(fd, detail::make_client_config(trust(pki.ca.cert_pem), "127.0.0.1"), 5000);
  REQUIRE(tls.handshake(Steady::now() + scaled(5000)) == 0);
  detail::TlsStream stream(tls);
  auto ask = [&](const std::string &request) {
    REQUIRE(stream.write(request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  };
  // Reads until `want` is in what came, or 5 s pass.
  auto read_until = [&](const std::string &want) {
    std::string got;
    char buf[4096];
    auto until = Steady::now() + scaled(5000);
    while (got.find(want) == std::string::npos && Steady::now() < until) {
      stream.set_deadline(until);
      ssize_t n = stream.read(buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  };
  auto settled_records = [&] {  // what the server sent, once it is all here
    std::this_thread::sleep_for(scaled(200));
    return peek_records(fd);
  };

  ask("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  auto records = settled_records();
  REQUIRE(records.size() == 1);
  CHECK(records[0].first == 23);  // application data
  std::string got = read_until("\r\n\r\nhello");
  CHECK(got.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(got.substr(got.size() - 9) == "\r\n\r\nhello");

  // HEAD: the head announces 5 bytes that never come; it is sent anyway.
  ask("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  records = settled_records();
  CHECK(records.size() == 1);
  got = read_until("\r\n\r\n");
  CHECK(got.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(got.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(got.substr(got.size() - 4) == "\r\n\r\n");

  // A body of known length from a provider: the head goes with its first part.
  ask("GET /sized HTTP/1.1\r\nHost: x\r\n\r\n");
  got = read_until("\r\n\r\nhello");
  CHECK(got.substr(got.size() - 9) == "\r\n\r\nhello");

  // A chunked stream: its head and first chunk arrive while the handler
  // still holds the rest back.
  ask("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  got = read_until("first\r\n");
  CHECK(got.find("Transfer-Encoding: chunked") != std::string::npos);
  CHECK(got.find("first\r\n") != std::string::npos);
  CHECK(got.find("second") == std::string::npos);
  go_on = true;
  got = read_until("0\r\n\r\n");
  CHECK(got.find("second") != std::string::npos);
  ::close(fd);

  // Requests: a client's head goes with its body too, whole when the body
  // is past one record (16 KiB) and when it is of one byte.
  HttpsClient c(s.url(), trust(pki.ca.cert_pem));
  for (size_t n : {size_t(1), size_t(16000), size_t(16384), size_t(70000)}) {
    auto r =
        c.request("POST", "/upload", {{"Content-Type", "application/octet-stream"}}, std::string(n, 'u'), scaled(5000));
    CHECK(r.status == 200);
    CHECK(r.body == std::to_string(n));
  }
}

TEST_CASE("HttpsClient reconnects after the server closed an idle connection") {
  Pki pki;
  TlsServerOptions o;
  o.idle_timeout = Millis(400);
  TestServer s(credentials(pki.leaf), o);
  HttpsClient c(s.url(), trust(pki.ca.cert_pem));
  REQUIRE(c.request("GET", "/port", {}, "", scaled(5000)).status == 200);
  REQUIRE(c.request("GET", "/port", {}, "", scaled(5000)).status == 200);
  REQUIRE(s.ports().size() == 1);

  REQUIRE(eventually([&] { return s.server().open_connections() == 0; }, scaled(3000)));
  std::this_thread::sleep_for(Millis(50));  // let close_notify and FIN arrive
  auto res = c.request("GET", "/port", {}, "", scaled(5000));
  CHECK(res.status == 200);
  CHECK(s.ports().size() == 2);
}

TEST_CASE("HttpsClient survives a server restart on the same port") {
  Pki pki;
  auto first = std::make_unique<TestServer>(credentials(pki.leaf));
  int port = first->port();
  HttpsClient c(first->url(), trust(pki.ca.cert_pem));
  REQUIRE(c.request("GET", "/hello", {}, "", scaled(5000)).status == 200);

  first.reset();
  TestServer second(credentials(pki.leaf), TlsServerOptions(), port);
  std::this_thread::sleep_for(Millis(50));
  auto res = c.request("GET", "/hello", {}, "", scaled(5000));
  CHECK(res.status == 200);
  CHECK(res.body == "hello");
}

TEST_CASE("the server closes a connection after max_requests_per_connection; the client reconnects") {
  Pki pki;
  TlsServerOptions o;
  o.max_requests_per_connection = 5;
  TestServer s(credentials(pki.leaf), o);
  HttpsClient c(s.url(), trust(pki.ca.cert_pem));
  for (int i = 0; i < 12; i++) REQUIRE(c.request("GET", "/port", {}, "", scaled(5000)).status == 200);
  CHECK(s.ports().size() == 3);
}

TEST_CASE("a response over max_response_bytes is an Error, and the client goes on") {
  Pki pki;
  TestServer s(credentials(pki.leaf));
  HttpsClient c(s.url(), trust(pki.ca.cert_pem));
  std::string msg = transport_error([&] { c.request("GET", "/big", {}, "", scaled(5000), 1024 * 1024); });
  CHECK(contains(msg, "too large"));
  auto res = c.request("GET", "/big", {}, "", scaled(5000), 4 * 1024 * 1024);
  CHECK(res.status == 200);
  CHECK(res.body.size() == 2 * 1024 * 1024);
  CHECK(c.request("GET", "/hello", {}, "", scaled(5000)).body == "hello");
}

TEST_CASE("a client that never starts the handshake is dropped after handshake_timeout") {
  Pki pki;
  TlsServerOptions o;
  o.handshake_timeout = Millis(300);
  TestServer s(credentials(pki.leaf), o);
  int fd = tcp_connect(s.port());
  auto started = Steady::now();
  // The server closes its end: our read sees EOF (or a reset).
  pollfd p{fd, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(scaled(5000).count()));
  char byte;
  ssize_t n = r > 0 ? ::recv(fd, &byte, 1, 0) : 1;
  double ms = elapsed_ms(started);
  ::close(fd);
  CHECK(r == 1);
  CHECK(n <= 0);
  CHECK(ms >= 250);
  CHECK(ms < 300 + 1000.0 * slow_factor());
  CHECK(eventually([&] { return s.server().failed_handshakes() == 1; }, scaled(1000)));
  CHECK(get(s.url(), trust(pki.ca.cert_pem)).status == 200);
}

// ---------------------------------------------------------------------------
// SIGPIPE: this binary keeps the default action (death) for SIGPIPE.

TEST_CASE("a peer that closes while the client sends a large body gives an Error, not SIGPIPE") {
  Pki pki;
  TlsServerOptions o;
  o.max_request_bytes = 64 * 1024;
  TestServer s(credentials(pki.leaf), o);
  // httplib::Server ignores SIGPIPE process-wide when constructed; put the
  // default (fatal) action back so that a send without MSG_NOSIGNAL kills us.
  std::signal(SIGPIPE, SIG_DFL);

  std::string body(16 * 1024 * 1024, 'x');
  HttpsClient c(s.url(), trust(pki.ca.cert_pem));
  REQUIRE(c.request("GET", "/hello", {}, "", scaled(5000)).status == 200);
  std::string msg = transport_error([&] { c.request("POST", "/upload", {}, body, scaled(10000)); });
  CHECK_FALSE(msg.empty());

  // Again on a fresh connection, and then the server still serves.
  msg = transport_error([&] {
    HttpsClient fresh(s.url(), trust(pki.ca.cert_pem));
    fresh.request("POST", "/upload", {}, body, scaled(10000));
  });
  CHECK_FALSE(msg.empty());
  CHECK(c.request("GET", "/hello", {}, "", scaled(5000)).status == 200);
  CHECK(std::signal(SIGPIPE, SIG_DFL) == SIG_DFL);  // nobody switched it back behind our back
}

// ---------------------------------------------------------------------------
// The bounded worker pool.

TEST_CASE("a full worker pool makes new connections wait, not fail, and serves them when a worker frees") {
  Pki pki;
  TlsServerOptions o;
  o.threads = 1;
  o.max_queue = 1;
  o.handshake_timeout = scaled(5000);
  TestServer s(credentials(pki.leaf), o);

  // Hold the only worker.
  std::atomic<int> slow_status{0};
  std::thread slow([&] {
    try {
      HttpsClient c(s.url(), trust(pki.ca.cert_pem));
      slow_status = c.request("GET", "/wait", {}, "", scaled(20000)).status;
    } catch (const Error &) {
      slow_status = -1;
    }
  });
  struct ReleaseAndJoin {
    TestServer &s;
    std::thread &t;
    ~ReleaseAndJoin() {
      s.release();
      if (t.joinable()) t.join();
    }
  } release_and_join{s, slow};
  REQUIRE(eventually([&] { return s.waiting() == 1; }, scaled(5000)));

  // Silent connections and a burst of clients, beyond the worker and the
  // queue: none is refused, all wait off the workers.
  std::vector<int> silent;
  for (int i = 0; i < 20; i++) silent.push_back(tcp_connect(s.port()));
  std::atomic<int> served{0}, failed{0};
  std::vector<std::thread> burst;
  for (int i = 0; i < 8; i++)
    burst.emplace_back([&] {
      try {
        HttpsClient c(s.url(), trust(pki.ca.cert_pem));
        (c.request("GET", "/hello", {}, "", scaled(20000)).status == 200 ? served : failed)++;
      } catch (const Error &) {
        failed++;
      }
    });
  std::this_thread::sleep_for(Millis(500));
  CHECK(served == 0);  // the only worker is still taken
  CHECK(s.server().refused_connections() == 0);
  // Free the worker: every waiting client is served.
  s.release();
  slow.join();  // (release_and_join covers the early exits)
  for (auto &t : burst) t.join();
  CHECK(slow_status == 200);
  CHECK(served == 8);
  CHECK(failed == 0);
  for (int fd : silent) ::close(fd);
  auto res = get(s.url(), trust(pki.ca.cert_pem));
  CHECK(res.status == 200);
  CHECK(res.body == "hello");
}

// ---------------------------------------------------------------------------
// Url::parse.

TEST_CASE("Url::parse accepts good URLs") {
  struct Row {
    std::string in, scheme, host;
    int port;
    std::string path, base;
  };
  std::vector<Row> rows = {
      {"https://example.com", "https", "example.com", 443, "/", "https://example.com:443"},
      {"https://example.com/", "https", "example.com", 443, "/", "https://example.com:443"},
      {"https://127.0.0.1:8443/authenticate", "https", "127.0.0.1", 8443, "/authenticate", "https://127.0.0.1:8443"},
      {"https://idp.example:1/a/b?x=1&y=two", "https", "idp.example", 1, "/a/b?x=1&y=two", "https://idp.example:1"},
      {"https://idp.example?q=1", "https", "idp.example", 443, "/?q=1", "https://idp.example:443"},
      {"https://idp.example/p#fragment", "https", "idp.example", 443, "/p", "https://idp.example:443"},
      {"https://[::1]:8443/authenticate", "https", "::1", 8443, "/authenticate", "https://[::1]:8443"},
      {"https://[::1]", "https", "::1", 443, "/", "https://[::1]:443"},
      {"https://idp.example:65535/", "https", "idp.example", 65535, "/", "https://idp.example:65535"},
      {"HTTPS://Example.COM/Path", "https", "Example.COM", 443, "/Path", "https://Example.COM:443"},
      {"http://example.com/x", "http", "example.com", 80, "/x", "http://example.com:80"},
  };
  for (const auto &r : rows) {
    INFO(r.in);
    Url u = Url::parse(r.in);
    CHECK(u.scheme == r.scheme);
    CHECK(u.host == r.host);
    CHECK(u.port == r.port);
    CHECK(u.path == r.path);
    CHECK(u.base() == r.base);
  }
}

TEST_CASE("Url::parse rejects bad URLs with Error 400") {
  struct Row {
    std::string in, message;
  };
  std::vector<Row> rows = {
      {"example.com/authenticate", "https://"},
      {"127.0.0.1:8443", "https://"},
      {"https://user:secret@example.com/", "user information"},
      {"https://user@example.com/", "user information"},
      {"https://example.com:0/", "invalid port"},
      {"https://example.com:65536/", "invalid port"},
      {"https://example.com:123456/", "invalid port"},
      {"https://example.com:-1/", "invalid port"},
      {"https://example.com:84a3/", "invalid port"},
      {"https://example.com:/", "invalid port"},
      {"https://", "no host"},
      {"https:///path", "no host"},
      {"https://:8443/", "no host"},
      {"https://[::1/", "IPv6"},
      {"https://[::1]8443/", "garbage"},
      {"https://exa mple.com/", "invalid host"},
      {"https://[]:8443/", "no host"},
      {"https://::1/", "invalid host"},
      {"https://fd00::1:8443/authenticate", "invalid host"},
      {"https://idp.example:8443:9443/", "invalid host"},
  };
  for (const auto &r : rows) {
    INFO(r.in);
    try {
      Url::parse(r.in);
      FAIL_CHECK("accepted: " << r.in);
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(contains(e.what(), r.message));
    }
  }
}

// --- 3d: the parts both servers are made of -----------------------------------

TEST_CASE("HttpsService: health endpoints, Status errors, and a drain that fails /readyz before it closes") {
  Pki pki;
  ServingOptions opt;
  opt.max_body_bytes = 1024;
  Logger log(Logger::Level::error);
  HttpsService svc(opt, log);
  std::atomic<bool> ready{false};
  svc.serve_health([&] { return ready ? std::string() : std::string("no signer yet"); });
  svc.handle([](const httplib::Request &req, httplib::Response &res) {
    if (req.path == "/boom") throw Error(409, "Conflict", "it broke");
    res.set_content("handled " + req.path, "text/plain");
  });
  REQUIRE(svc.set_credentials(credentials(pki.leaf)));
  CHECK_FALSE(svc.set_credentials({"not a certificate", pki.leaf.key_pem, ""}));  // refused, previous kept
  int port = svc.bind("127.0.0.1", 0);
  REQUIRE(port > 0);
  svc.run_in_background();
  ClientTlsOptions t;
  t.ca_pem = pki.ca.cert_pem;
  HttpsClient client("https://127.0.0.1:" + std::to_string(port), t);
  auto get = [&](const std::string &method, const std::string &path, const std::string &body = "") {
    return client.request(method, path, {{"Content-Type", "application/json"}}, body, scaled(5000));
  };
  CHECK(get("GET", "/healthz").status == 200);
  CHECK(get("GET", "/livez/").status == 200);
  auto r = get("GET", "/readyz");
  CHECK(r.status == 500);
  CHECK(contains(r.body, "not ready: no signer yet"));
  ready = true;
  CHECK(get("GET", "/readyz").status == 200);
  r = get("POST", "/healthz");
  CHECK(r.status == 405);
  CHECK(contains(r.body, "\"reason\":\"MethodNotAllowed\""));
  CHECK(get("GET", "/other").body == "handled /other");
  r = get("GET", "/boom");
  CHECK(r.status == 409);
  CHECK(contains(r.body, "\"kind\":\"Status\""));
  CHECK(contains(r.body, "it broke"));
  r = get("POST", "/upload", std::string(2048, 'x'));
  CHECK(r.status == 413);
  CHECK(contains(r.body, "\"kind\":\"Status\""));

  svc.begin_drain();
  CHECK(svc.draining());
  r = get("GET", "/readyz");
  CHECK(r.status == 500);
  CHECK(contains(r.body, "shutting down"));
  CHECK(get("GET", "/healthz").status == 200);   // still alive
  CHECK(get("GET", "/x").body == "handled /x");  // still answering
  svc.stop();
  svc.stop();  // again, as a signal and the owner may both
  svc.join();
  CHECK_THROWS_AS(get("GET", "/healthz"), Error);  // closed
}

TEST_CASE("HttpsService without serve_health passes the health paths to its handler") {
  Pki pki;
  Logger log(Logger::Level::error);
  HttpsService svc(ServingOptions(), log);
  svc.handle([](const httplib::Request &req, httplib::Response &res) {
    res.status = 404;
    res.set_content("no " + req.path, "text/plain");
  });
  svc.set_credentials(credentials(pki.leaf));
  int port = svc.bind("127.0.0.1", 0);
  svc.run_in_background();
  ClientTlsOptions t;
  t.ca_pem = pki.ca.cert_pem;
  HttpsClient client("https://127.0.0.1:" + std::to_string(port), t);
  auto r = client.request("GET", "/healthz", {}, "", scaled(5000));
  CHECK(r.status == 404);
  CHECK(r.body == "no /healthz");
}

TEST_CASE("HttpsService::stop before its background listener ran is not lost") {
  Logger log(Logger::Level::error);
  for (int i = 0; i < 20; i++) {
    HttpsService svc(ServingOptions(), log);
    int port = svc.bind("127.0.0.1", 0);
    svc.run_in_background();
    svc.stop();  // the listener saw it: join() returns
    svc.join();
    INFO("round " << i);
    CHECK_THROWS(::close(tcp_connect(port)));  // and the port is closed
  }
}

TEST_CASE("WatchedFiles gives the texts once per change, only when every file is whole") {
  testing::TempDir dir;
  dir.write("a", "one");
  dir.write("b", "two");
  WatchedFiles w({dir.file("a"), dir.file("b")});
  auto first = w.take(true);
  REQUIRE(first);
  CHECK(*first == std::vector<std::string>{"one", "two"});
  CHECK_FALSE(w.take(false));  // unchanged
  // A file modified just now may still be being written: not yet.
  dir.write("b", "three");
  std::string why;
  CHECK_FALSE(w.take(false, &why));
  CHECK(contains(why, "modified just now"));
  std::this_thread::sleep_for(Millis(PINNIPED_FILE_SETTLE_MS + 50));
  auto second = w.take(false, &why);
  REQUIRE(second);
  CHECK((*second)[1] == "three");
  CHECK_FALSE(w.take(false));
  // Other paths: read at the next take even though neither changed.
  dir.write("c", "four");
  std::this_thread::sleep_for(Millis(PINNIPED_FILE_SETTLE_MS + 50));
  w.watch({dir.file("c")});
  auto third = w.take(false);
  REQUIRE(third);
  CHECK(*third == std::vector<std::string>{"four"});
  // A missing file: nothing, and the reason.
  std::remove(dir.file("c").c_str());
  why.clear();
  CHECK_FALSE(w.take(false, &why));
  CHECK(contains(why, "cannot read"));
  WatchedFiles missing({dir.file("nope")});
  CHECK_THROWS_AS(missing.take(true), Error);
}

namespace {
struct FakeLoop {
  std::vector<std::string> *stopped;
  std::string name;
  uint64_t n = 0;
  void stop() { stopped->push_back(name); }
  uint64_t reconnects() const { return n; }
};
struct QuietLoop {
  std::vector<std::string> *stopped;
  void stop() { stopped->push_back("quiet"); }
};
}  // namespace

TEST_CASE("Controllers stop their loops once, in the reverse order, and sum their reconnections") {
  std::vector<std::string> stopped;
  std::unique_ptr<FakeLoop> lease, watch;
  std::unique_ptr<QuietLoop> quiet;
  {
    Controllers c;
    c.add(lease, std::make_unique<FakeLoop>(FakeLoop{&stopped, "lease", 1}));
    c.add(quiet, std::make_unique<QuietLoop>(QuietLoop{&stopped}));
    auto &w = c.add(watch, std::make_unique<FakeLoop>(FakeLoop{&stopped, "watch", 2}));
    CHECK(&w == watch.get());
    w.n = 5;
    CHECK(c.reconnects() == 6);
    c.stop();
    CHECK(stopped == std::vector<std::string>{"watch", "quiet", "lease"});
  }
  CHECK(stopped.size() == 3);  // the destructor does not stop them again
}
