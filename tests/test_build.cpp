// The shipped artifacts: no OpenSSL/zlib/brotli in the binary, the static
// build is static, the program's CLI edge, and the README example works.
#include <catch2/catch.hpp>

#include "tests/support.hpp"

using namespace testing;

namespace {
std::string example_bin() {
  const char *e = std::getenv("PINNIPED_EXAMPLE");
  return e ? e : "build/readme-example";
}
}  // namespace

TEST_CASE("the binary links neither OpenSSL nor zlib nor brotli") {
  int rc = 0;
  std::string elf = pinniped_elf();
  std::string ldd = run("ldd '" + elf + "' 2>&1", &rc);
  INFO(ldd);
  for (const char *lib : {"libssl", "libcrypto", "libz.so", "libbrotli", "libmbed", "libyaml"})
    CHECK(ldd.find(lib) == std::string::npos);
  // No symbol of those libraries is linked in either.
  const char *nm_env = std::getenv("PINNIPED_NM");
  std::string nm = nm_env ? nm_env : "nm";
  std::string syms = run(nm + " -D '" + elf + "' 2>/dev/null; " + nm + " '" + elf + "' 2>/dev/null");
  REQUIRE(syms.find("mbedtls_ssl_handshake") != std::string::npos);  // nm did read the symbols
  for (const char *sym : {" SSL_new", " SSL_CTX_new", " EVP_", " inflate", " deflate", " BrotliDecoder"})
    CHECK(syms.find(sym) == std::string::npos);
}

TEST_CASE("the static build has no dynamic dependencies and stays under 3 MiB") {
  std::string static_bin = pinniped_static();
  REQUIRE(access(static_bin.c_str(), R_OK) == 0);
  int rc = 0;
  // The ELF header itself: no PT_INTERP (no dynamic loader), whatever the
  // architecture (ldd cannot read a foreign one).
  std::string headers = run("readelf -lh '" + static_bin + "' 2>&1", &rc);
  INFO(headers);
  REQUIRE(rc == 0);
  CHECK(headers.find("INTERP") == std::string::npos);
  CHECK(headers.find("DYNAMIC") == std::string::npos);
  CHECK(run("readelf -S '" + static_bin + "' 2>&1").find(".symtab") == std::string::npos);  // stripped
  struct stat st;
  REQUIRE(::stat(static_bin.c_str(), &st) == 0);
  CHECK(st.st_size < 3 * 1024 * 1024);
  std::string v = run(static_runner() + "'" + static_bin + "' version", &rc);
  CHECK(rc == 0);
  CHECK(v.find("pinniped 0.1.0") != std::string::npos);
  CHECK(v.find("mbedTLS 2.28") != std::string::npos);
}

TEST_CASE("the CLI edge: usage errors are one line and a non-zero exit") {
  struct Row {
    std::string args;
    int code;
    std::string says;
  };
  std::vector<Row> rows = {
      {"frobnicate", 2, "unknown command"},
      {"concierge --no-such-flag", 2, "unknown flag --no-such-flag"},
      {"concierge --listen", 2, "needs a value"},
      {"concierge --listen 127.0.0.1", 2, "HOST:PORT"},
      {"concierge --listen 127.0.0.1:99999", 2, "invalid port"},
      {"concierge --threads 0", 2, "not a number from 1"},
      {"concierge --webhook-timeout soon", 2, "not a duration"},
      {"concierge --credential-ttl 2h", 2, "at most 1h"},
      {"concierge --log-level loud", 2, "unknown level"},
      {"concierge --tls-cert /nonexistent/cert.pem --listen 127.0.0.1:0", 2, "--tls-key"},
      {"concierge --tls-cert /nonexistent/c --tls-key /nonexistent/k --listen 127.0.0.1:0", 1, "cannot read"},
  };
  for (const auto &r : rows) {
    int rc = 0;
    std::string out = run("'" + pinniped_bin() + "' " + r.args + " 2>&1 >/dev/null", &rc);
    INFO(r.args << " -> " << out);
    CHECK(rc == r.code);
    CHECK(out.find(r.says) != std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  }
  int rc = 0;
  std::string help = run("'" + pinniped_bin() + "' concierge --help", &rc);
  CHECK(rc == 0);
  CHECK(help.find("--signer-cert") != std::string::npos);
}

TEST_CASE("the README example exchanges a token and reports a refusal") {
  TempDir dir;
  FakeIdp idp;
  idp.add_user("example-token", {"erin", "", {"readers"}, {}});
  auto ca = make_self_signed_ca("example-signer", std::chrono::hours(1));
  dir.write("s.crt", ca.cert_pem);
  dir.write("s.key", ca.key_pem);
  dir.write("auth.yaml", authenticator_yaml("my-idp", idp.url(), idp.ca_data()));
  ConciergeProcess c(dir, {"--signer-cert", dir.file("s.crt"), "--signer-key", dir.file("s.key"), "--authenticators",
                           dir.file("auth.yaml")});
  int rc = 0;
  std::string cmd = "EX_TOKEN=example-token '" + example_bin() + "' " + c.base() + " '" + dir.file("serving-ca.pem") +
                    "' my-idp EX_TOKEN";
  std::string out = run(cmd + " 2>&1", &rc);
  INFO(out);
  REQUIRE(rc == 0);
  auto nl = out.find('\n');
  REQUIRE(nl != std::string::npos);
  auto exp = parse_rfc3339(out.substr(0, nl));
  REQUIRE(exp);
  CHECK(std::abs(std::chrono::duration_cast<std::chrono::seconds>(*exp - Clock::now()).count() - 300) <= 5);
  auto key_at = out.find("-----BEGIN PRIVATE KEY-----");
  REQUIRE(key_at != std::string::npos);
  auto chain = CertificateChain::parse(out.substr(nl + 1, key_at - nl - 1));
  CHECK(detail::common_name(&chain->get()->subject) == "erin");
  auto key = PrivateKey::parse(out.substr(key_at));
  CHECK(mbedtls_pk_check_pair(&chain->get()->pk, key->get()) == 0);

  out = run("EX_TOKEN=bad-token '" + example_bin() + "' " + c.base() + " '" + dir.file("serving-ca.pem") +
                "' my-idp EX_TOKEN 2>&1",
            &rc);
  CHECK(rc == 1);
  CHECK(out == "exchange failed: authentication failed\n");
}
