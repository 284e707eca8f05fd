// Section 2: the certificate authority. Loading cluster signers made by the
// openssl CLI (foreign encodings), the certificates they issue (checked by
// mbedTLS and by openssl), hostile names, clamping, the key pool, signer
// discovery, and rotation through the real `pinniped concierge`.
#include <mbedtls/x509_csr.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include "tests/support.hpp"

using namespace std::chrono_literals;
using pinniped::Clock;
using pinniped::Millis;
using pinniped::Steady;
using testing::TempDir;

namespace {

// --- shell and openssl ------------------------------------------------------

// Paths come from mkdtemp and never hold a quote.
std::string q(const std::string &path) { return "'" + path + "'"; }

// Runs a shell command that must succeed; returns stdout and stderr.
std::string sh(const std::string &cmd) {
  int rc = 0;
  std::string out = testing::run(cmd + " 2>&1", &rc);
  if (rc != 0) throw std::runtime_error("command failed (exit " + std::to_string(rc) + "): " + cmd + "\n" + out);
  return out;
}

bool contains(const std::string &hay, const std::string &needle) { return hay.find(needle) != std::string::npos; }

std::string openssl_time(Clock::time_point t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%SZ", &tm);
  return buf;
}

enum class KeyFormat { sec1, sec1_with_params, pkcs1, pkcs8 };

// A private key written by openssl: type "ec:<curve>" or "rsa:<bits>".
std::string openssl_key(const TempDir &dir, const std::string &name, const std::string &type, KeyFormat fmt) {
  std::string out = dir.file(name + ".key"), raw = dir.file(name + ".raw.key");
  bool ec = type.rfind("ec:", 0) == 0;
  std::string param = type.substr(type.find(':') + 1);
  std::string target = fmt == KeyFormat::pkcs8 ? raw : out;
  if (ec)
    sh("openssl ecparam -name " + param + " -genkey " + (fmt == KeyFormat::sec1_with_params ? "" : "-noout ") +
       "-out " + q(target));
  else
    sh("openssl genrsa -traditional -out " + q(target) + " " + param);
  if (fmt == KeyFormat::pkcs8) sh("openssl pkcs8 -topk8 -nocrypt -in " + q(raw) + " -out " + q(out));
  return out;
}

const std::string kCaExtensions =
    "basicConstraints = critical,CA:TRUE\n"
    "keyUsage = critical,digitalSignature,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier = hash\n";

// What a CA certificate made with `openssl ca -selfsign` says.
struct CaSpec {
  std::string common_name = "test-ca";
  std::string extensions = kCaExtensions;
  std::string string_mask = "utf8only";   // "default": PrintableString where possible, as Go writes
  std::chrono::seconds not_before = -1h;  // relative to now
  std::chrono::seconds not_after = 24h * 30;
};

// A self-signed certificate for `key_file`, made by `openssl ca` (which,
// unlike `openssl req -x509`, can backdate notBefore). Returns its path.
std::string openssl_ca_cert(const TempDir &dir, const std::string &name, const std::string &key_file,
                            const CaSpec &spec = CaSpec()) {
  std::string db = dir.file(name + ".db");
  std::filesystem::create_directories(db + "/new");
  dir.write(name + ".db/index.txt", "");
  dir.write(name + ".db/serial", "1000\n");
  std::string cnf = dir.write(
      name + ".cnf", "[req]\ndistinguished_name = dn\nprompt = no\nutf8 = yes\nstring_mask = " + spec.string_mask +
                         "\n[dn]\nCN = " + spec.common_name +
                         "\n[ca]\ndefault_ca = ca_section\n[ca_section]\ndatabase = " + db +
                         "/index.txt\nnew_certs_dir = " + db + "/new\nserial = " + db +
                         "/serial\ndefault_md = sha256\npolicy = policy_any\nunique_subject = no\n"
                         "preserve = yes\nemail_in_dn = no\nstring_mask = " +
                         spec.string_mask + "\n[policy_any]\ncommonName = supplied\n[ext]\n" + spec.extensions);
  std::string csr = dir.file(name + ".csr"), crt = dir.file(name + ".crt");
  sh("openssl req -new -config " + q(cnf) + " -key " + q(key_file) + " -out " + q(csr));
  auto now = Clock::now();
  sh("openssl ca -batch -selfsign -notext -utf8 -config " + q(cnf) + " -keyfile " + q(key_file) + " -in " + q(csr) +
     " -extensions ext -startdate " + openssl_time(now + spec.not_before) + " -enddate " +
     openssl_time(now + spec.not_after) + " -out " + q(crt));
  return crt;
}

// `openssl verify`, strict, for a client certificate.
bool openssl_verifies(const TempDir &dir, const std::string &ca_file, const std::string &leaf_pem,
                      std::string *output = nullptr) {
  std::string leaf = dir.write("leaf-under-test.pem", leaf_pem);
  int rc = 0;
  std::string out = testing::run(
      "openssl verify -x509_strict -purpose sslclient -CAfile " + q(ca_file) + " " + q(leaf) + " 2>&1", &rc);
  if (output) *output = out;
  return rc == 0 && contains(out, ": OK");
}

// The value line under an extension header in `openssl x509 -ext` output.
std::string openssl_ext_value(const std::string &text, const std::string &header) {
  size_t at = text.find(header);
  if (at == std::string::npos) return "";
  size_t start = text.find('\n', at);
  if (start == std::string::npos) return "";
  size_t end = text.find('\n', start + 1);
  std::string line = text.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
  line = pinniped::detail::trim(line);
  if (line.rfind("keyid:", 0) == 0) line = line.substr(6);
  return line;
}

// --- mbedTLS views ----------------------------------------------------------

class X509 {
 public:
  explicit X509(const std::string &pem) {
    mbedtls_x509_crt_init(&crt_);
    int ret = mbedtls_x509_crt_parse(&crt_, reinterpret_cast<const unsigned char *>(pem.c_str()), pem.size() + 1);
    if (ret != 0) throw std::runtime_error("mbedTLS cannot parse certificate: " + pinniped::detail::mbed_error(ret));
  }
  ~X509() { mbedtls_x509_crt_free(&crt_); }
  X509(const X509 &) = delete;
  X509 &operator=(const X509 &) = delete;
  mbedtls_x509_crt *get() { return &crt_; }
  const mbedtls_x509_crt &operator*() const { return crt_; }
  const mbedtls_x509_crt *operator->() const { return &crt_; }

 private:
  mbedtls_x509_crt crt_;
};

class Pk {
 public:
  explicit Pk(const std::string &pem) {
    mbedtls_pk_init(&pk_);
    int ret =
        mbedtls_pk_parse_key(&pk_, reinterpret_cast<const unsigned char *>(pem.c_str()), pem.size() + 1, nullptr, 0);
    if (ret != 0) throw std::runtime_error("mbedTLS cannot parse key: " + pinniped::detail::mbed_error(ret));
  }
  ~Pk() { mbedtls_pk_free(&pk_); }
  Pk(const Pk &) = delete;
  Pk &operator=(const Pk &) = delete;
  mbedtls_pk_context *get() { return &pk_; }

 private:
  mbedtls_pk_context pk_;
};

std::string raw(const mbedtls_x509_buf &b) { return std::string(reinterpret_cast<const char *>(b.p), b.len); }

// mbedtls_x509_crt_verify of `leaf` against `ca` alone: 0 when trusted.
uint32_t mbed_verify_flags(const std::string &leaf_pem, const std::string &ca_pem) {
  X509 leaf(leaf_pem), ca(ca_pem);
  uint32_t flags = 0;
  int ret = mbedtls_x509_crt_verify(leaf.get(), ca.get(), nullptr, nullptr, &flags, nullptr, nullptr);
  return ret == 0 ? 0 : (flags ? flags : 0xffffffffu);
}
bool mbed_verifies(const std::string &leaf_pem, const std::string &ca_pem) {
  return mbed_verify_flags(leaf_pem, ca_pem) == 0;
}

struct NameAttr {
  std::string oid;
  int tag;
  std::string value;
};
std::vector<NameAttr> name_attrs(const mbedtls_x509_name *n) {
  std::vector<NameAttr> out;
  for (; n; n = n->next)
    if (n->oid.p) out.push_back({raw(n->oid), n->val.tag, raw(n->val)});
  return out;
}
const std::string kOidCn = MBEDTLS_OID_AT_CN;
const std::string kOidOrg = MBEDTLS_OID_AT_ORGANIZATION;

std::vector<std::string> values_of(const std::vector<NameAttr> &attrs, const std::string &oid) {
  std::vector<std::string> out;
  for (const auto &a : attrs)
    if (a.oid == oid) out.push_back(a.value);
  return out;
}

// Go's choice for a DirectoryString (encoding/asn1): PrintableString when
// every byte is in its set, else UTF8String.
int go_string_tag(const std::string &v) {
  for (unsigned char c : v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != 0 && std::strchr(" '()+,-./:=?", c) != nullptr);
    if (!ok) return MBEDTLS_ASN1_UTF8_STRING;
  }
  return MBEDTLS_ASN1_PRINTABLE_STRING;
}

// True when `message` carries none of the key's PEM lines (or a PEM header).
bool free_of_key_material(const std::string &message, const std::string &key_pem) {
  if (contains(message, "BEGIN") || contains(message, "-----")) return false;
  std::istringstream lines(key_pem);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line.rfind("-----", 0) == 0 || contains(line, ":")) continue;
    if (contains(message, line.substr(0, std::min<size_t>(line.size(), 16)))) return false;
  }
  return true;
}

std::string fmt_time(Clock::time_point t) { return pinniped::format_rfc3339(t); }

template <typename Pred>
bool wait_until(Pred pred, Millis timeout) {
  auto until = Steady::now() + timeout * testing::slow_factor();
  while (Steady::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

// --- the concierge ------------------------------------------------------------

// One TokenCredentialRequest; the credential, or nullopt and why.
std::optional<pinniped::ClusterCredential> exchange(pinniped::HttpsClient &cli, const std::string &token,
                                                    std::string *why = nullptr) {
  try {
    auto res = cli.request("POST", testing::kTcrPath, {{"Content-Type", "application/json"}}, testing::tcr_body(token),
                           std::chrono::seconds(30 * testing::slow_factor()));
    if (res.status != 201) {
      if (why) *why = "HTTP " + std::to_string(res.status) + ": " + res.body;
      return std::nullopt;
    }
    auto out = pinniped::TokenCredentialRequest::from_json(pinniped::json::parse(res.body));
    if (!out.credential && why) *why = "201 without a credential: " + res.body;
    return out.credential;
  } catch (const std::exception &e) {
    if (why) *why = e.what();
    return std::nullopt;
  }
}

std::string issue_cert_via(pinniped::HttpsClient &cli) {
  std::string why;
  auto cred = exchange(cli, "good-token", &why);
  INFO(why);
  REQUIRE(cred.has_value());
  return cred->client_certificate_data;
}

// Counts occurrences of `needle` in `text` from `offset` on.
size_t count_from(const std::string &text, const std::string &needle, size_t offset = 0) {
  size_t n = 0;
  for (size_t at = text.find(needle, offset); at != std::string::npos; at = text.find(needle, at + 1)) n++;
  return n;
}

}  // namespace

// ============================================================================
// 1. Loading signers
// ============================================================================

TEST_CASE("signers made by the openssl CLI load in every key encoding and issue verifiable certificates") {
  TempDir dir;
  struct Row {
    std::string what, type;
    KeyFormat format;
    std::string pem_label, key_type;
  };
  const std::vector<Row> rows = {
      {"P-256 SEC1 with EC PARAMETERS", "ec:prime256v1", KeyFormat::sec1_with_params, "EC PRIVATE KEY", "ECDSA P-256"},
      {"P-256 SEC1", "ec:prime256v1", KeyFormat::sec1, "EC PRIVATE KEY", "ECDSA P-256"},
      {"P-256 PKCS#8", "ec:prime256v1", KeyFormat::pkcs8, "PRIVATE KEY", "ECDSA P-256"},
      {"P-384 SEC1 with EC PARAMETERS", "ec:secp384r1", KeyFormat::sec1_with_params, "EC PRIVATE KEY", "ECDSA P-384"},
      {"P-384 PKCS#8", "ec:secp384r1", KeyFormat::pkcs8, "PRIVATE KEY", "ECDSA P-384"},
      {"RSA 2048 PKCS#1", "rsa:2048", KeyFormat::pkcs1, "RSA PRIVATE KEY", "RSA 2048"},
      {"RSA 2048 PKCS#8", "rsa:2048", KeyFormat::pkcs8, "PRIVATE KEY", "RSA 2048"},
      {"RSA 3072 PKCS#1", "rsa:3072", KeyFormat::pkcs1, "RSA PRIVATE KEY", "RSA 3072"},
      {"RSA 4096 PKCS#8", "rsa:4096", KeyFormat::pkcs8, "PRIVATE KEY", "RSA 4096"},
  };
  int n = 0;
  for (const auto &row : rows) {
    INFO("signer: " << row.what);
    std::string name = "signer" + std::to_string(n++);
    std::string key_file = openssl_key(dir, name, row.type, row.format);
    std::string key_pem = pinniped::read_file(key_file);
    // The file really is in the encoding the row names.
    CHECK(contains(key_pem, "-----BEGIN " + row.pem_label + "-----"));
    CHECK(contains(key_pem, "EC PARAMETERS") == (row.format == KeyFormat::sec1_with_params));

    CaSpec spec;
    spec.common_name = "ca-" + name;
    std::string cert_file = openssl_ca_cert(dir, name, key_file, spec);
    std::string cert_pem = pinniped::read_file(cert_file);

    auto signer = pinniped::Signer::from_pem(cert_pem, key_pem);
    CHECK(signer->key_type() == row.key_type);
    CHECK(contains(signer->subject(), "CN=ca-" + name));
    // The fingerprint is the SHA-256 of the certificate's DER, as openssl says.
    std::string fp = sh("openssl x509 -noout -fingerprint -sha256 -in " + q(cert_file));
    fp = fp.substr(fp.find('=') + 1);
    fp.erase(std::remove_if(fp.begin(), fp.end(), [](char c) { return c == ':' || c == '\n'; }), fp.end());
    CHECK(signer->fingerprint() == pinniped::detail::lower(fp));

    auto issued = signer->issue("alice", {"devs"}, 5min, pinniped::ClientKey::generate());
    CHECK(mbed_verify_flags(issued.cert_pem, cert_pem) == 0);
    std::string why;
    bool openssl_ok = openssl_verifies(dir, cert_file, issued.cert_pem, &why);
    INFO(why);
    CHECK(openssl_ok);
    // Signature digest chosen as Go does: SHA-384 for P-384, SHA-256 otherwise.
    X509 leaf(issued.cert_pem);
    CHECK(leaf->sig_md == (row.key_type == "ECDSA P-384" ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256));
  }
}

TEST_CASE("a signer is refused with a clear message that never carries key material") {
  TempDir dir;
  std::string key_a = openssl_key(dir, "a", "ec:prime256v1", KeyFormat::sec1);
  std::string key_b = openssl_key(dir, "b", "ec:prime256v1", KeyFormat::sec1);
  std::string key_rsa1024 = openssl_key(dir, "rsa1024", "rsa:1024", KeyFormat::pkcs1);
  auto pem = [](const std::string &f) { return pinniped::read_file(f); };

  std::string cert_a = pem(openssl_ca_cert(dir, "a", key_a));
  std::string cert_b = pem(openssl_ca_cert(dir, "b", key_b));

  CaSpec not_ca;
  not_ca.extensions = "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n";
  CaSpec no_basic_constraints;
  no_basic_constraints.extensions = "keyUsage = critical,digitalSignature,keyCertSign\n";
  CaSpec no_cert_sign;
  no_cert_sign.extensions = "basicConstraints = critical,CA:TRUE\nkeyUsage = critical,digitalSignature,cRLSign\n";
  CaSpec expired;
  expired.not_before = -24h * 60;
  expired.not_after = -24h;
  CaSpec future;
  future.not_before = 24h;
  future.not_after = 24h * 30;

  sh("openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:secret -in " + q(key_a) + " -out " + q(dir.file("enc8.key")));
  sh("openssl ec -aes256 -passout pass:secret -in " + q(key_a) + " -out " + q(dir.file("enc1.key")));
  const std::string encrypted_pkcs8 = dir.read("enc8.key"), encrypted_sec1 = dir.read("enc1.key");
  REQUIRE(contains(encrypted_pkcs8, "BEGIN ENCRYPTED PRIVATE KEY"));
  REQUIRE(contains(encrypted_sec1, "Proc-Type: 4,ENCRYPTED"));
  const std::string garbage_cert = "-----BEGIN CERTIFICATE-----\nTOPSECRETGARBAGExx==\n-----END CERTIFICATE-----\n";
  const std::string garbage_key = "-----BEGIN PRIVATE KEY-----\nTOPSECRETGARBAGExx==\n-----END PRIVATE KEY-----\n";

  struct Row {
    std::string what, cert_pem, key_pem, expect;
  };
  const std::vector<Row> rows = {
      {"key does not match the certificate", cert_a, pem(key_b), "do not match"},
      {"bundle of two, neither matching the key", cert_a + cert_a, pem(key_b), "do not match"},
      {"basicConstraints CA:FALSE", pem(openssl_ca_cert(dir, "notca", key_a, not_ca)), pem(key_a), "not a CA"},
      {"no basicConstraints", pem(openssl_ca_cert(dir, "nobc", key_a, no_basic_constraints)), pem(key_a), "not a CA"},
      {"keyUsage without keyCertSign", pem(openssl_ca_cert(dir, "nocs", key_a, no_cert_sign)), pem(key_a),
       "keyCertSign"},
      {"expired certificate", pem(openssl_ca_cert(dir, "expired", key_a, expired)), pem(key_a), "expired"},
      {"certificate not valid yet", pem(openssl_ca_cert(dir, "future", key_a, future)), pem(key_a), "not valid before"},
      {"garbage certificate PEM", garbage_cert, pem(key_a), "certificate"},
      {"garbage key PEM", cert_a, garbage_key, "private key"},
      {"text that is no PEM at all", "hello, world\n", "hello, world\n", "certificate"},
      {"empty certificate", "", pem(key_a), "certificate"},
      {"empty key", cert_a, "", "private key"},
      {"encrypted PKCS#8 key", cert_a, encrypted_pkcs8, "password"},
      {"encrypted SEC1 key (Proc-Type)", cert_a, encrypted_sec1, "password"},
      {"RSA 1024 key", pem(openssl_ca_cert(dir, "rsa1024", key_rsa1024)), pem(key_rsa1024), "2048"},
  };
  for (const auto &row : rows) {
    INFO("case: " << row.what);
    std::string message;
    try {
      pinniped::Signer::from_pem(row.cert_pem, row.key_pem);
      FAIL_CHECK("accepted");
      continue;
    } catch (const pinniped::Error &e) {
      message = e.what();
    }
    INFO("message: " << message);
    CHECK(contains(message, row.expect));
    CHECK(free_of_key_material(message, row.key_pem));
    CHECK_FALSE(contains(message, "TOPSECRET"));
  }
}

TEST_CASE("a certificate bundle from a rotation loads and signs with the certificate that matches the key") {
  TempDir dir;
  std::string old_key = openssl_key(dir, "old", "ec:prime256v1", KeyFormat::sec1);
  std::string new_key = openssl_key(dir, "new", "rsa:2048", KeyFormat::pkcs8);
  CaSpec old_spec, new_spec;
  old_spec.common_name = "old-ca";
  new_spec.common_name = "new-ca";
  std::string old_file = openssl_ca_cert(dir, "old", old_key, old_spec);
  std::string new_file = openssl_ca_cert(dir, "new", new_key, new_spec);
  std::string old_cert = pinniped::read_file(old_file), new_cert = pinniped::read_file(new_file);

  auto signer = pinniped::Signer::from_pem(old_cert + new_cert, pinniped::read_file(new_key));
  CHECK(signer->cert_pem() == new_cert);
  CHECK(contains(signer->subject(), "new-ca"));
  CHECK(signer->key_type() == "RSA 2048");

  auto issued = signer->issue("bob", {}, 5min, pinniped::ClientKey::generate());
  CHECK(mbed_verifies(issued.cert_pem, new_cert));
  CHECK_FALSE(mbed_verifies(issued.cert_pem, old_cert));
  CHECK(openssl_verifies(dir, new_file, issued.cert_pem));
  CHECK_FALSE(openssl_verifies(dir, old_file, issued.cert_pem));
  X509 leaf(issued.cert_pem), ca(new_cert);
  CHECK(raw(leaf->issuer_raw) == raw(ca->subject_raw));

  // The first certificate is picked when it is the matching one.
  auto first = pinniped::Signer::from_pem(old_cert + new_cert, pinniped::read_file(old_key));
  CHECK(first->cert_pem() == old_cert);
}

// ============================================================================
// 2. Issued certificates
// ============================================================================

namespace {

// Every rule the issued client certificate follows (as upstream issues it), checked by mbedTLS and by
// the openssl CLI, for a signer given as files.
void check_issued_certificate(const TempDir &dir, const std::string &cert_file, const std::string &key_file) {
  const std::string signer_pem = pinniped::read_file(cert_file);
  auto signer = pinniped::Signer::from_pem(signer_pem, pinniped::read_file(key_file));
  const std::vector<std::string> groups = {"devs", "ops", "admins"};

  auto before = Clock::now();
  auto issued = signer->issue("alice", groups, 5min, pinniped::ClientKey::generate());
  auto after = Clock::now();
  std::string leaf_file = dir.write("leaf.pem", issued.cert_pem);
  std::string key_out = dir.write("leaf.key", issued.key_pem);

  X509 leaf(issued.cert_pem), ca(signer_pem);

  SECTION("it verifies against the signer, by mbedTLS and by openssl") {
    CHECK(mbed_verify_flags(issued.cert_pem, signer_pem) == 0);
    std::string out;
    bool openssl_ok = openssl_verifies(dir, cert_file, issued.cert_pem, &out);
    INFO(out);
    CHECK(openssl_ok);
  }

  SECTION("subject: CN is the username and one O per group, in order") {
    auto attrs = name_attrs(&leaf->subject);
    CHECK(values_of(attrs, kOidCn) == std::vector<std::string>{"alice"});
    CHECK(values_of(attrs, kOidOrg) == groups);
    std::string subject = sh("openssl x509 -noout -subject -nameopt utf8,sep_multiline -in " + q(leaf_file));
    CHECK(subject == "subject=\n    O=devs\n    O=ops\n    O=admins\n    CN=alice\n");
  }

  SECTION("extensions: clientAuth only, digitalSignature critical, CA:FALSE") {
    int eku = 0;
    for (const mbedtls_x509_sequence *s = &leaf->ext_key_usage; s && s->buf.p; s = s->next) {
      eku++;
      CHECK(raw(s->buf) == std::string(MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)));
    }
    CHECK(eku == 1);
    CHECK(leaf->key_usage == MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
    CHECK((leaf->ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS) != 0);
    CHECK(leaf->ca_istrue == 0);
    CHECK(leaf->version == 3);

    std::string ext = sh("openssl x509 -noout -ext extendedKeyUsage,keyUsage,basicConstraints -in " + q(leaf_file));
    INFO(ext);
    CHECK(contains(ext, "X509v3 Key Usage: critical\n    Digital Signature\n"));
    CHECK(contains(ext, "X509v3 Extended Key Usage: \n    TLS Web Client Authentication\n"));
    CHECK(contains(ext, "CA:FALSE"));
  }

  SECTION("validity: now - 5 min to now + 5 min") {
    auto nb = pinniped::detail::from_x509_time(leaf->valid_from);
    auto na = pinniped::detail::from_x509_time(leaf->valid_to);
    INFO("notBefore " << fmt_time(nb) << " notAfter " << fmt_time(na) << " now " << fmt_time(before));
    CHECK(nb >= before - 5min - 2s);
    CHECK(nb <= after - 5min + 2s);
    CHECK(na >= before + 5min - 2s);
    CHECK(na <= after + 5min + 2s);
    CHECK(issued.not_before == nb);
    CHECK(issued.not_after == na);
  }

  SECTION("serial: positive, at most 128 bits, random and distinct per issue") {
    std::set<std::string> serials;
    for (int i = 0; i < 40; i++) {
      auto c = i == 0 ? issued : signer->issue("alice", groups, 5min, pinniped::ClientKey::generate());
      X509 x(c.cert_pem);
      std::string s = raw(x->serial);
      INFO("serial " << pinniped::detail::hex(s));
      REQUIRE(!s.empty());
      CHECK((static_cast<unsigned char>(s[0]) & 0x80) == 0);  // positive
      size_t lead = 0;
      while (lead < s.size() && s[lead] == 0) lead++;
      CHECK(lead <= 1);              // minimal DER: at most one 0x00 pad
      CHECK(s.size() - lead <= 16);  // at most 128 bits
      CHECK(s.size() - lead >= 9);   // random 128 bits: short serials are vanishingly rare
      serials.insert(s);
    }
    CHECK(serials.size() == 40);
  }

  SECTION("issuer: byte-identical to the signer's subject; AKI is the signer's SKI") {
    CHECK(raw(leaf->issuer_raw) == raw(ca->subject_raw));
    std::string ski = openssl_ext_value(sh("openssl x509 -noout -ext subjectKeyIdentifier -in " + q(cert_file)),
                                        "X509v3 Subject Key Identifier");
    std::string aki = openssl_ext_value(sh("openssl x509 -noout -ext authorityKeyIdentifier -in " + q(leaf_file)),
                                        "X509v3 Authority Key Identifier");
    CHECK(ski.size() >= 20);
    CHECK(aki == ski);
  }

  SECTION("private key: PKCS#8 P-256 matching the certificate") {
    CHECK(issued.key_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
    Pk key(issued.key_pem);
    REQUIRE(mbedtls_pk_get_type(key.get()) == MBEDTLS_PK_ECKEY);
    CHECK(mbedtls_pk_ec(*key.get())->grp.id == MBEDTLS_ECP_DP_SECP256R1);
    CHECK(mbedtls_pk_check_pair(&leaf.get()->pk, key.get()) == 0);

    CHECK(contains(sh("openssl pkey -noout -text -in " + q(key_out)), "ASN1 OID: prime256v1"));
    CHECK(sh("openssl pkey -pubout -in " + q(key_out)) == sh("openssl x509 -noout -pubkey -in " + q(leaf_file)));
    // And the key is not one of the signer's.
    CHECK_FALSE(mbedtls_pk_check_pair(&ca.get()->pk, key.get()) == 0);
  }
}

}  // namespace

TEST_CASE("an EC P-256 (k3s-like) signer issues certificates that follow every rule") {
  TempDir dir;
  std::string key = openssl_key(dir, "k3s", "ec:prime256v1", KeyFormat::sec1_with_params);
  CaSpec spec;
  spec.common_name = "k3s-client-ca@1700000000";
  check_issued_certificate(dir, openssl_ca_cert(dir, "k3s", key, spec), key);
}

TEST_CASE("an RSA (kubeadm-like) signer with a PrintableString subject issues certificates that follow every rule") {
  TempDir dir;
  std::string key = openssl_key(dir, "kubeadm", "rsa:2048", KeyFormat::pkcs1);
  CaSpec spec;
  spec.common_name = "kubernetes";
  spec.string_mask = "default";  // as Go writes it: PrintableString
  std::string cert_file = openssl_ca_cert(dir, "kubeadm", key, spec);

  // The signer really carries a PrintableString CN...
  auto kubernetes_line = [](const std::string &asn1) {
    std::istringstream lines(asn1);
    std::string line;
    while (std::getline(lines, line))
      if (contains(line, ":kubernetes")) return line;
    return std::string();
  };
  std::string signer_line = kubernetes_line(sh("openssl asn1parse -in " + q(cert_file)));
  INFO("signer: " << signer_line);
  REQUIRE(contains(signer_line, "PRINTABLESTRING"));

  SECTION("the leaf's issuer keeps the PrintableString tag") {
    auto signer = pinniped::Signer::from_pem(pinniped::read_file(cert_file), pinniped::read_file(key));
    auto issued = signer->issue("alice", {"devs"}, 5min, pinniped::ClientKey::generate());
    std::string leaf_file = dir.write("leaf.pem", issued.cert_pem);
    std::string leaf_line = kubernetes_line(sh("openssl asn1parse -in " + q(leaf_file)));
    INFO("leaf: " << leaf_line);
    CHECK(contains(leaf_line, "PRINTABLESTRING"));
    X509 leaf(issued.cert_pem);
    auto issuer = name_attrs(&leaf->issuer);
    REQUIRE(issuer.size() == 1);
    CHECK(issuer[0].tag == MBEDTLS_ASN1_PRINTABLE_STRING);
    CHECK(issuer[0].value == "kubernetes");
  }
  SECTION("and every other rule") { check_issued_certificate(dir, cert_file, key); }
}

// ============================================================================
// 3. Hostile names
// ============================================================================

TEST_CASE("hostile usernames and groups round-trip byte-exactly and still verify") {
  TempDir dir;
  auto files = testing::openssl_signer(dir, "signer", "ec", "/CN=hostile-names-ca");
  const std::string signer_pem = pinniped::read_file(files.cert_file);
  auto signer = pinniped::Signer::from_pem(signer_pem, pinniped::read_file(files.key_file));

  std::vector<std::string> many_groups;
  for (int i = 0; i < 200; i++) many_groups.push_back("group-" + std::to_string(1000 + i));
  using Groups = std::vector<std::string>;
  struct Row {
    std::string what, username;
    Groups groups;
    std::optional<Groups> expect_groups;  // nullopt: the groups as given
  };
  const std::vector<Row> rows = {
      {"commas", "doe, john", {"a,b", ",", "c,"}, std::nullopt},
      {"DN injection", "alice,O=system:masters", {"devs,CN=root"}, std::nullopt},
      {"quotes", "\"quoted\" 'single'", {"\"", "'"}, std::nullopt},
      {"backslashes", "back\\slash\\", {"\\", "\\2C"}, std::nullopt},
      {"plus and equals", "a+b=c", {"x+y", "=", "k=v+w"}, std::nullopt},
      {"leading and trailing spaces", "  spaced  ", {" lead", "trail ", " "}, std::nullopt},
      {"hash", "#hash", {"#0403", "#"}, std::nullopt},
      {"asterisk, ampersand, angle brackets, semicolon", "a*b&c", {"<script>;", "50%"}, std::nullopt},
      {"control characters", "tab\there", {"new\nline", "bell\a"}, std::nullopt},
      {"unicode", "J\xc3\xbcrgen", {"\xe7\x94\xa8\xe6\x88\xb7", "\xf0\x9f\xa6\xad seal", "caf\xc3\xa9"}, std::nullopt},
      {"emoji username", "\xf0\x9f\x98\x80", {"x"}, std::nullopt},
      {"1000-character username", std::string(1000, 'u'), {std::string(1000, 'g')}, std::nullopt},
      {"1000-character unicode username",
       [] {
         std::string s;
         for (int i = 0; i < 250; i++) s += "\xf0\x9f\x98\x80";
         return s;
       }(),
       {"x"},
       std::nullopt},
      {"200 groups", "many", many_groups, std::nullopt},
      {"empty groups are dropped", "empty", {"", "first", "", "second", ""}, Groups{"first", "second"}},
      {"only empty groups", "none", {"", ""}, Groups{}},
      {"no groups", "nobody", {}, std::nullopt},
  };
  for (const auto &row : rows) {
    INFO("case: " << row.what);
    auto issued = signer->issue(row.username, row.groups, 5min, pinniped::ClientKey::generate());
    X509 leaf(issued.cert_pem);
    auto attrs = name_attrs(&leaf->subject);

    const Groups &want = row.expect_groups ? *row.expect_groups : row.groups;
    CHECK(values_of(attrs, kOidCn) == std::vector<std::string>{row.username});
    CHECK(values_of(attrs, kOidOrg) == want);
    CHECK(attrs.size() == want.size() + 1);  // nothing injected
    // Each value is one whole attribute, tagged as Go would tag it.
    for (const auto &a : attrs) CHECK(a.tag == go_string_tag(a.value));

    CHECK(mbed_verify_flags(issued.cert_pem, signer_pem) == 0);
    std::string out;
    bool openssl_ok = openssl_verifies(dir, files.cert_file, issued.cert_pem, &out);
    INFO(out);
    CHECK(openssl_ok);
  }
}

TEST_CASE("an empty username is refused") {
  TempDir dir;
  auto files = testing::openssl_signer(dir, "signer", "ec", "/CN=ca");
  auto signer = pinniped::Signer::from_pem(pinniped::read_file(files.cert_file), pinniped::read_file(files.key_file));
  try {
    signer->issue("", {"devs"}, 5min, pinniped::ClientKey::generate());
    FAIL("an empty username was accepted");
  } catch (const pinniped::Error &e) {
    CHECK(e.code == 400);
    CHECK(contains(e.what(), "username"));
  }
}

// ============================================================================
// 4. Clamping to the signer's life
// ============================================================================

TEST_CASE("certificates never outlive the signer nor predate it") {
  TempDir dir;
  std::string key = openssl_key(dir, "signer", "ec:prime256v1", KeyFormat::sec1);

  SECTION("a signer expiring in 2 minutes: notAfter is the signer's notAfter") {
    CaSpec spec;
    spec.not_after = 2min;
    std::string cert_file = openssl_ca_cert(dir, "short", key, spec);
    std::string signer_pem = pinniped::read_file(cert_file);
    auto signer = pinniped::Signer::from_pem(signer_pem, pinniped::read_file(key));
    auto issued = signer->issue("alice", {}, 5min, pinniped::ClientKey::generate());
    X509 leaf(issued.cert_pem), ca(signer_pem);
    auto signer_na = pinniped::detail::from_x509_time(ca->valid_to);
    CHECK(pinniped::detail::from_x509_time(leaf->valid_to) == signer_na);
    CHECK(signer->not_after() == signer_na);
    CHECK(issued.not_after == signer_na);
    CHECK(signer_na < Clock::now() + 3min);
    // The start is not clamped: the signer is an hour old.
    CHECK(pinniped::detail::from_x509_time(leaf->valid_from) >= Clock::now() - 5min - 3s);
    CHECK(mbed_verifies(issued.cert_pem, signer_pem));
    CHECK(openssl_verifies(dir, cert_file, issued.cert_pem));
  }

  SECTION("a signer made a minute ago: notBefore is the signer's notBefore") {
    CaSpec spec;
    spec.not_before = -1min;
    std::string cert_file = openssl_ca_cert(dir, "young", key, spec);
    std::string signer_pem = pinniped::read_file(cert_file);
    auto signer = pinniped::Signer::from_pem(signer_pem, pinniped::read_file(key));
    auto issued = signer->issue("alice", {}, 5min, pinniped::ClientKey::generate());
    X509 leaf(issued.cert_pem), ca(signer_pem);
    CHECK(pinniped::detail::from_x509_time(leaf->valid_from) == pinniped::detail::from_x509_time(ca->valid_from));
    CHECK(mbed_verifies(issued.cert_pem, signer_pem));
  }

  SECTION("a signer that expired after it was loaded issues nothing") {
    CaSpec spec;
    spec.not_after = 2min;
    auto signer = pinniped::Signer::from_pem(pinniped::read_file(openssl_ca_cert(dir, "dying", key, spec)),
                                             pinniped::read_file(key));
    auto later = signer->not_after() + 1min;
    try {
      auto issued = signer->issue("alice", {}, 5min, pinniped::ClientKey::generate(), later);
      FAIL("issued a certificate valid from " << fmt_time(issued.not_before) << " to " << fmt_time(issued.not_after));
    } catch (const pinniped::Error &e) {
      CHECK(contains(e.what(), "expired"));
    }
  }
}

// ============================================================================
// 5. The key pool and the certificate authority
// ============================================================================

namespace {
// A pool key is a P-256 key whose PEM holds the advertised public key.
void check_client_key(const pinniped::ClientKey &k) {
  REQUIRE(k.key_pem.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
  auto parsed = pinniped::PrivateKey::parse(k.key_pem);
  CHECK(parsed->describe() == "ECDSA P-256");
  CHECK(parsed->public_der() == k.spki_der);
}
}  // namespace

namespace {
// This process's threads of the idle scheduling class.
int idle_threads() {
  int n = 0;
  for (const auto &e : std::filesystem::directory_iterator("/proc/self/task"))
    if (sched_getscheduler(std::atoi(e.path().filename().c_str())) == SCHED_IDLE) n++;
  return n;
}
}  // namespace

TEST_CASE("the key pool hands out distinct valid keys and refills in the background") {
  int idle_before = idle_threads();
  pinniped::KeyPool pool(4);
  REQUIRE(wait_until([&] { return pool.ready() == 4; }, 10s));
  // Its refill thread runs only on a core that nothing else wants.
  CHECK(idle_threads() == idle_before + 1);
  std::this_thread::sleep_for(50ms);
  CHECK(pool.ready() == 4);  // never above capacity

  std::set<std::string> seen;
  for (int i = 0; i < 10; i++) {  // more than the capacity: the rest are made on demand
    auto k = pool.take();
    check_client_key(k);
    seen.insert(k.spki_der);
  }
  CHECK(seen.size() == 10);
  CHECK(wait_until([&] { return pool.ready() == 4; }, 10s));
  for (int i = 0; i < 4; i++) seen.insert(pool.take().spki_der);
  CHECK(seen.size() == 14);
}

TEST_CASE("a key pool of capacity 0 still hands out keys") {
  pinniped::KeyPool pool(0);
  std::set<std::string> seen;
  for (int i = 0; i < 3; i++) {
    auto k = pool.take();
    check_client_key(k);
    seen.insert(k.spki_der);
  }
  CHECK(seen.size() == 3);
  std::this_thread::sleep_for(100ms);
  CHECK(pool.ready() == 0);
}

TEST_CASE("the certificate authority refuses without a signer and issues from the current one") {
  TempDir dir;
  pinniped::CertificateAuthority ca(2);
  try {
    ca.issue("alice", {});
    FAIL("issued without a signer");
  } catch (const pinniped::Error &e) {
    CHECK(e.code == 503);
  }
  auto a = testing::openssl_signer(dir, "a", "ec", "/CN=a");
  auto b = testing::openssl_signer(dir, "b", "rsa", "/CN=b");
  std::string a_pem = pinniped::read_file(a.cert_file), b_pem = pinniped::read_file(b.cert_file);
  ca.set_signer(pinniped::Signer::from_pem(a_pem, pinniped::read_file(a.key_file)));
  auto first = ca.issue("alice", {"devs"});
  CHECK(mbed_verifies(first.cert_pem, a_pem));
  ca.set_signer(pinniped::Signer::from_pem(b_pem, pinniped::read_file(b.key_file)));
  auto second = ca.issue("alice", {"devs"});
  CHECK(mbed_verifies(second.cert_pem, b_pem));
  CHECK_FALSE(mbed_verifies(second.cert_pem, a_pem));
  CHECK(first.key_pem != second.key_pem);
}

// ============================================================================
// 6. Signer discovery
// ============================================================================

namespace {
const std::string kK3sDir = "var/lib/rancher/k3s/server/tls";
const std::string kKubeadmDir = "etc/kubernetes/pki";

// Places a signer's two files at `cert_rel`/`key_rel` under `root`.
void place_signer(const TempDir &root, const testing::OpensslSigner &s, const std::string &cert_rel,
                  const std::string &key_rel) {
  std::filesystem::create_directories(std::filesystem::path(root.file(cert_rel)).parent_path());
  root.write(cert_rel, pinniped::read_file(s.cert_file));
  root.write(key_rel, pinniped::read_file(s.key_file));
}
}  // namespace

TEST_CASE("find_signer looks at the distributions' paths under a root, k3s first") {
  TempDir files, root;
  auto k3s = testing::openssl_signer(files, "k3s", "ec", "/CN=k3s-client-ca");
  auto kubeadm = testing::openssl_signer(files, "kubeadm", "rsa", "/CN=kubernetes");

  CHECK_FALSE(pinniped::find_signer(root.path).has_value());

  // Half a signer is no signer.
  std::filesystem::create_directories(root.file(kKubeadmDir));
  root.write(kKubeadmDir + "/ca.crt", pinniped::read_file(kubeadm.cert_file));
  CHECK_FALSE(pinniped::find_signer(root.path).has_value());

  root.write(kKubeadmDir + "/ca.key", pinniped::read_file(kubeadm.key_file));
  auto found = pinniped::find_signer(root.path);
  REQUIRE(found.has_value());
  CHECK(found->distribution == "kubeadm");
  CHECK(found->cert_path == root.file(kKubeadmDir + "/ca.crt"));
  CHECK(found->key_path == root.file(kKubeadmDir + "/ca.key"));

  place_signer(root, k3s, kK3sDir + "/client-ca.crt", kK3sDir + "/client-ca.key");
  for (const std::string &r : {root.path, root.path + "/", root.path + "//"}) {
    INFO("root " << r);
    found = pinniped::find_signer(r);
    REQUIRE(found.has_value());
    CHECK(found->distribution == "k3s");
    CHECK(found->cert_path == root.file(kK3sDir + "/client-ca.crt"));
    CHECK(found->key_path == root.file(kK3sDir + "/client-ca.key"));
  }
  // What it finds loads.
  auto signer = pinniped::Signer::from_pem(pinniped::read_file(found->cert_path), pinniped::read_file(found->key_path));
  CHECK(signer->key_type() == "ECDSA P-256");
}

TEST_CASE("the concierge finds a k3s signer under --signer-root and issues with it") {
  TempDir dir, root;
  testing::FakeIdp idp;
  idp.add_user("good-token", {"alice", "", {"devs"}, {}});
  dir.write("auth.yaml", testing::authenticator_yaml("my-idp", idp.url(), idp.ca_data()));
  auto k3s = testing::openssl_signer(dir, "k3s", "ec", "/CN=k3s-client-ca@1700000000");
  const std::string signer_pem = pinniped::read_file(k3s.cert_file);
  const std::vector<std::string> flags = {"--signer-root",       root.path,           "--authenticators",
                                          dir.file("auth.yaml"), "--reload-interval", "200ms"};
  auto readyz = [](const testing::ConciergeProcess &c) { return c.request("GET", "/readyz", "").status; };

  SECTION("present at start") {
    place_signer(root, k3s, kK3sDir + "/client-ca.crt", kK3sDir + "/client-ca.key");
    testing::ConciergeProcess c(dir, flags);
    bool ready = wait_until([&] { return readyz(c) == 200; }, 5s);
    INFO(c.log());
    REQUIRE(ready);
    auto cli = c.client();
    std::string cert = issue_cert_via(*cli);
    CHECK(mbed_verifies(cert, signer_pem));
    CHECK(openssl_verifies(dir, k3s.cert_file, cert));
    CHECK(contains(c.log(), "\"source\":\"k3s\""));
  }

  SECTION("appearing after the start") {
    testing::ConciergeProcess c(dir, flags);
    CHECK(c.request("GET", "/healthz", "").status == 200);
    CHECK(readyz(c) != 200);  // alive, not ready, and it keeps looking
    auto cli = c.client();
    std::string why;
    CHECK_FALSE(exchange(*cli, "good-token", &why).has_value());

    place_signer(root, k3s, kK3sDir + "/client-ca.crt", kK3sDir + "/client-ca.key");
    bool ready = wait_until([&] { return readyz(c) == 200; }, 5s);
    INFO(c.log());
    REQUIRE(ready);
    std::string cert = issue_cert_via(*cli);
    CHECK(mbed_verifies(cert, signer_pem));
    CHECK(openssl_verifies(dir, k3s.cert_file, cert));
  }
}

// ============================================================================
// 7. Rotation through the real binary
// ============================================================================

TEST_CASE("the concierge follows a signer rotation without failing a request") {
  TempDir dir;
  testing::FakeIdp idp;
  idp.add_user("good-token", {"alice", "", {"devs", "ops"}, {}});
  dir.write("auth.yaml", testing::authenticator_yaml("my-idp", idp.url(), idp.ca_data()));
  // Same subject for every generation, as a real rotation keeps it.
  auto gen1 = testing::openssl_signer(dir, "gen1", "ec", "/CN=k3s-client-ca");
  auto gen2 = testing::openssl_signer(dir, "gen2", "ec", "/CN=k3s-client-ca");
  auto gen3 = testing::openssl_signer(dir, "gen3", "rsa", "/CN=k3s-client-ca");
  const std::string pem1 = pinniped::read_file(gen1.cert_file), pem2 = pinniped::read_file(gen2.cert_file),
                    pem3 = pinniped::read_file(gen3.cert_file);
  std::string cert_file = dir.write("signer.crt", pem1);
  std::string key_file = dir.write("signer.key", pinniped::read_file(gen1.key_file));

  testing::ConciergeProcess c(dir, {"--signer-cert", cert_file, "--signer-key", key_file, "--authenticators",
                                    dir.file("auth.yaml"), "--reload-interval", "200ms"});
  auto cli = c.client();
  std::string first = issue_cert_via(*cli);
  CHECK(mbed_verifies(first, pem1));
  CHECK_FALSE(mbed_verifies(first, pem2));

  // Requests run without pause while the files change underneath.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::mutex mu;
  std::string first_failure;
  std::thread load([&] {
    auto own = c.client();
    auto until = Steady::now() + 60s * testing::slow_factor();
    while (!stop && Steady::now() < until) {
      std::string why;
      if (exchange(*own, "good-token", &why)) {
        ok++;
      } else {
        failed++;
        std::lock_guard<std::mutex> lk(mu);
        if (first_failure.empty()) first_failure = why;
      }
    }
  });
  struct Joiner {
    std::atomic<bool> &stop;
    std::thread &t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, load};

  // Verifies against `now` and not against `before`.
  auto signed_by = [&](const std::string &now, const std::string &before) {
    std::string cert = issue_cert_via(*cli);
    return mbed_verifies(cert, now) && !mbed_verifies(cert, before);
  };

  std::this_thread::sleep_for(300ms);
  dir.write("signer.crt", pem2);
  dir.write("signer.key", pinniped::read_file(gen2.key_file));
  bool rotated = wait_until([&] { return signed_by(pem2, pem1); }, 5s);
  INFO(c.log());
  REQUIRE(rotated);
  CHECK(contains(c.log(), "cluster signer rotated"));
  std::string openssl_out;
  bool openssl_ok = openssl_verifies(dir, gen2.cert_file, issue_cert_via(*cli), &openssl_out);
  INFO(openssl_out);
  CHECK(openssl_ok);

  // New certificate, old key: generation 2 stays, with a warning.
  size_t log_mark = c.log().size();
  dir.write("signer.crt", pem3);
  bool warned = wait_until(
      [&] { return count_from(c.log(), "cluster signer not reloaded; keeping the previous one", log_mark) > 0; }, 5s);
  CHECK(warned);
  std::this_thread::sleep_for(400ms);  // two more reload ticks
  CHECK(signed_by(pem2, pem1));
  CHECK_FALSE(mbed_verifies(issue_cert_via(*cli), pem3));
  std::string tail = c.log().substr(log_mark);
  CHECK(contains(tail, "do not match"));
  CHECK_FALSE(contains(tail, "cluster signer rotated"));

  // The matching key arrives: generation 3 takes over.
  dir.write("signer.key", pinniped::read_file(gen3.key_file));
  CHECK(wait_until([&] { return signed_by(pem3, pem2); }, 5s));

  std::this_thread::sleep_for(200ms);
  stop = true;
  load.join();
  int succeeded = ok, failures = failed;
  INFO("first failure: " << first_failure);
  CHECK(failures == 0);
  CHECK(succeeded > 10);
  CHECK_FALSE(contains(c.log(), "BEGIN"));  // no key or certificate material in the log
}

// ============================================================================
// The CSR strategy: the PKCS#10 request we send to the CSR API, and the
// checks on the certificate that comes back before it is handed out.

TEST_CASE("certificate requests for the CSR API verify with openssl and carry hostile names byte-exactly") {
  TempDir dir;
  using Groups = std::vector<std::string>;
  struct Row {
    std::string what, username;
    Groups groups, expect;
  };
  const std::vector<Row> rows = {
      {"plain", "alice", {"devs", "ops"}, {"devs", "ops"}},
      {"DN injection", "alice,O=system:masters", {"devs,CN=root"}, {"devs,CN=root"}},
      {"quotes, backslashes, plus and equals", "\"q\" \\ a+b=c", {"'", "\\2C", "k=v+w"}, {"'", "\\2C", "k=v+w"}},
      {"spaces and hash", "  spaced  ", {" lead", "#0403"}, {" lead", "#0403"}},
      {"control characters", "tab\there", {"new\nline"}, {"new\nline"}},
      {"unicode",
       "J\xc3\xbcrgen",
       {"\xe7\x94\xa8\xe6\x88\xb7", "caf\xc3\xa9"},
       {"\xe7\x94\xa8\xe6\x88\xb7", "caf\xc3\xa9"}},
      {"empty groups are dropped", "empty", {"", "first", ""}, {"first"}},
      {"no groups", "nobody", {}, {}},
  };
  int i = 0;
  for (const auto &row : rows) {
    INFO("case: " << row.what);
    auto key = pinniped::ClientKey::generate();
    std::string der = pinniped::detail::certificate_request_der(row.username, row.groups, key);
    std::string pem = pinniped::detail::pem_encode("CERTIFICATE REQUEST", der);
    std::string file = dir.write("req" + std::to_string(i) + ".pem", pem);
    std::string key_file = dir.write("req" + std::to_string(i++) + ".key", key.key_pem);
    // openssl checks the self-signature; its public key is ours.
    CHECK(contains(sh("openssl req -noout -verify -in " + q(file)), "verify OK"));
    CHECK(sh("openssl req -noout -pubkey -in " + q(file)) == sh("openssl pkey -pubout -in " + q(key_file)));
    // The subject, attribute by attribute, as mbedTLS parses it.
    mbedtls_x509_csr csr;
    mbedtls_x509_csr_init(&csr);
    REQUIRE(mbedtls_x509_csr_parse_der(&csr, reinterpret_cast<const unsigned char *>(der.data()), der.size()) == 0);
    auto attrs = name_attrs(&csr.subject);
    CHECK(values_of(attrs, kOidCn) == std::vector<std::string>{row.username});
    CHECK(values_of(attrs, kOidOrg) == row.expect);
    CHECK(attrs.size() == row.expect.size() + 1);  // nothing injected
    CHECK(csr.version == 1);
    mbedtls_x509_csr_free(&csr);
  }
  // A key without its private part cannot sign a request.
  auto key = pinniped::ClientKey::generate();
  key.key.reset();
  CHECK_THROWS_WITH(pinniped::detail::certificate_request_der("alice", {}, key), Catch::Contains("no private part"));
}

namespace {

// A certificate as a cluster signer might return it, for `key`'s public key.
std::string csr_api_cert(const pinniped::CertificateAndKey &ca, const pinniped::ClientKey &key, const std::string &cn,
                         const std::vector<std::string> &orgs, Clock::time_point nb, Clock::time_point na,
                         bool client_auth = true, bool server_auth = false, bool is_ca = false) {
  pinniped::CertificateTemplate t;
  t.common_name = cn;
  t.organizations = orgs;
  t.client_auth = client_auth;
  t.server_auth = server_auth;
  t.is_ca = is_ca;
  if (is_ca) t.key_usage |= MBEDTLS_X509_KU_KEY_CERT_SIGN;
  t.not_before = nb;
  t.not_after = na;
  auto chain = pinniped::CertificateChain::parse(ca.cert_pem);
  auto ca_key = pinniped::PrivateKey::parse(ca.key_pem);
  const mbedtls_x509_crt *c = chain->get();
  std::string issuer(reinterpret_cast<const char *>(c->subject_raw.p), c->subject_raw.len);
  return pinniped::detail::pem_encode(
      "CERTIFICATE",
      pinniped::detail::sign_certificate(t, key.spki_der, issuer, *ca_key, pinniped::detail::subject_key_id(*c)));
}

}  // namespace

TEST_CASE("a certificate from the CSR API is handed out only when it is what was asked for") {
  auto ca = pinniped::make_self_signed_ca("cluster-client-ca", 24h);
  auto other_ca = pinniped::make_self_signed_ca("someone-else", 24h);
  auto key = pinniped::ClientKey::generate(), other_key = pinniped::ClientKey::generate();
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(Clock::now());
  const std::vector<std::string> groups = {"devs", "ops"};
  pinniped::CertificateExpectation want;
  want.username = "alice";
  want.groups = {"devs", "", "ops"};  // an empty group is not in the certificate
  want.spki_der = key.spki_der;
  want.lifetime = 600s;
  want.trusted_ca_pem = ca.cert_pem;
  // kube-controller-manager's shape: notBefore backdated 5 minutes, notAfter
  // now + the lifetime.
  auto good_nb = now - 5min, good_na = now + 600s;

  SECTION("what kube-controller-manager issues for expirationSeconds passes, with its own times and serial") {
    std::string pem = csr_api_cert(ca, key, "alice", groups, good_nb, good_na);
    pinniped::IssuedCertificate out;
    auto problem = pinniped::check_issued_certificate(pem, want, out, now);
    CHECK_FALSE(problem.has_value());
    CHECK(out.cert_pem == pem);
    CHECK(out.not_after == good_na);
    CHECK(out.not_before == good_nb);
    CHECK(out.serial_hex.size() >= 30);
  }
  SECTION("the groups may come in another order (Go's signer sorts them in one RDN)") {
    pinniped::IssuedCertificate out;
    CHECK_FALSE(pinniped::check_issued_certificate(csr_api_cert(ca, key, "alice", {"ops", "devs"}, good_nb, good_na),
                                                   want, out, now)
                    .has_value());
  }
  SECTION("without a known client CA, the chain is not checked") {
    want.trusted_ca_pem.clear();
    pinniped::IssuedCertificate out;
    CHECK_FALSE(pinniped::check_issued_certificate(csr_api_cert(other_ca, key, "alice", groups, good_nb, good_na), want,
                                                   out, now)
                    .has_value());
  }
  SECTION("anything else is refused, with a reason for the CredentialIssuer") {
    struct Row {
      std::string what, pem, reason, says;
    };
    const std::vector<Row> rows = {
        {"a year-long certificate (a signer that ignores expirationSeconds)",
         csr_api_cert(ca, key, "alice", groups, good_nb, now + 8760h), "CertificateLifetimeTooLong", "8760h"},
        {"11 minutes of life more than asked", csr_api_cert(ca, key, "alice", groups, now, now + 600s + 11min),
         "CertificateLifetimeTooLong", "does not honour"},
        {"a lifetime as asked, but starting an hour from now",
         csr_api_cert(ca, key, "alice", groups, now + 1h, now + 1h + 600s), "CertificateMismatch", "not valid yet"},
        {"another user", csr_api_cert(ca, key, "mallory", groups, good_nb, good_na), "CertificateMismatch",
         "another user"},
        {"a group more", csr_api_cert(ca, key, "alice", {"devs", "ops", "system:masters"}, good_nb, good_na),
         "CertificateMismatch", "other groups"},
        {"a group less", csr_api_cert(ca, key, "alice", {"devs"}, good_nb, good_na), "CertificateMismatch",
         "other groups"},
        {"a group twice instead of two", csr_api_cert(ca, key, "alice", {"devs", "devs"}, good_nb, good_na),
         "CertificateMismatch", "other groups"},
        {"another key", csr_api_cert(ca, other_key, "alice", groups, good_nb, good_na), "CertificateMismatch",
         "not for the key"},
        {"serverAuth only", csr_api_cert(ca, key, "alice", groups, good_nb, good_na, false, true),
         "CertificateMismatch", "clientAuth"},
        {"a CA certificate", csr_api_cert(ca, key, "alice", groups, good_nb, good_na, true, false, true),
         "CertificateMismatch", "CA certificate"},
        {"signed by another CA", csr_api_cert(other_ca, key, "alice", groups, good_nb, good_na), "CertificateMismatch",
         "does not chain"},
        {"already expired", csr_api_cert(ca, key, "alice", groups, now - 20min, now - 10min), "CertificateMismatch",
         "expired"},
        {"not PEM", "hello", "CertificateMismatch", "does not parse"},
    };
    for (const auto &row : rows) {
      INFO("case: " << row.what);
      pinniped::IssuedCertificate out;
      auto problem = pinniped::check_issued_certificate(row.pem, want, out, now);
      REQUIRE(problem.has_value());
      CHECK(problem->reason == row.reason);
      CHECK(contains(problem->message, row.says));
      CHECK(out.cert_pem.empty());  // nothing to hand out
    }
  }
}

TEST_CASE("EC signatures and keys from the per-thread prepared groups verify, in many threads at once") {
  SECTION("signatures by P-256, P-384 and RSA keys, from eight threads at once, verify with mbedTLS") {
    std::vector<std::shared_ptr<const pinniped::PrivateKey>> keys = {
        pinniped::PrivateKey::parse(pinniped::PrivateKey::generate_ec()->to_pem()),
        pinniped::PrivateKey::parse(pinniped::PrivateKey::generate_ec(MBEDTLS_ECP_DP_SECP384R1)->to_pem()),
        pinniped::PrivateKey::parse(pinniped::PrivateKey::generate_rsa(2048)->to_pem())};
    std::atomic<int> good{0}, bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 12; i++) {
          const auto &key = keys[static_cast<size_t>(t + i) % keys.size()];
          unsigned char hash[32];
          std::memset(hash, t * 16 + i, sizeof hash);
          std::string sig = key->sign(MBEDTLS_MD_SHA256, hash, sizeof hash);
          auto *pk = const_cast<mbedtls_pk_context *>(key->get());
          bool ok = mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, hash, sizeof hash,
                                      reinterpret_cast<const unsigned char *>(sig.data()), sig.size()) == 0;
          hash[0] ^= 1;  // and only for that hash
          ok = ok && mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, hash, sizeof hash,
                                       reinterpret_cast<const unsigned char *>(sig.data()), sig.size()) != 0;
          (ok ? good : bad)++;
        }
      });
    for (auto &t : threads) t.join();
    CHECK(good == 96);
    CHECK(bad == 0);
  }
  SECTION("P-256 keys from the per-thread group: on the curve, a matching pair, all different, in many threads") {
    std::mutex mu;
    std::set<std::string> publics;
    std::atomic<int> unsound{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++)
      threads.emplace_back([&] {
        for (int i = 0; i < 10; i++) {
          auto k = pinniped::PrivateKey::generate_ec();
          mbedtls_ecp_keypair *kp = mbedtls_pk_ec(*const_cast<mbedtls_pk_context *>(k->get()));
          // An independent group: the point is on P-256, d matches Q.
          auto again = pinniped::PrivateKey::parse(k->to_pem());
          if (kp->grp.id != MBEDTLS_ECP_DP_SECP256R1 || mbedtls_ecp_check_pubkey(&kp->grp, &kp->Q) != 0 ||
              mbedtls_ecp_check_privkey(&kp->grp, &kp->d) != 0 || mbedtls_pk_check_pair(again->get(), k->get()) != 0 ||
              again->public_der() != k->public_der())
            unsound++;
          std::lock_guard<std::mutex> lk(mu);
          publics.insert(k->public_der());
        }
      });
    for (auto &t : threads) t.join();
    CHECK(unsound == 0);
    CHECK(publics.size() == 40);
  }
}

// ============================================================================
// 9. Presignatures: the message-independent half of ECDSA, made ahead
// ============================================================================

namespace {
std::string unhex(const std::string &h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}
std::string mpi_hex(const mbedtls_mpi &x) {
  char buf[200];
  size_t n = 0;
  REQUIRE(mbedtls_mpi_write_string(&x, 16, buf, sizeof buf, &n) == 0);
  return buf;
}
// The r of a DER ECDSA signature, as hex.
std::string signature_r(const std::string &sig) {
  auto *p = reinterpret_cast<unsigned char *>(const_cast<char *>(sig.data()));
  const unsigned char *end = p + sig.size();
  size_t len = 0;
  mbedtls_mpi r;
  mbedtls_mpi_init(&r);
  REQUIRE(mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) == 0);
  REQUIRE(mbedtls_asn1_get_mpi(&p, end, &r) == 0);
  std::string out = mpi_hex(r);
  mbedtls_mpi_free(&r);
  return out;
}
// Whether `sig` is `key`'s signature of `hash`, and of no other hash.
bool verifies_only(const pinniped::PrivateKey &key, unsigned char *hash, size_t n, const std::string &sig) {
  auto *pk = const_cast<mbedtls_pk_context *>(key.get());
  auto *s = reinterpret_cast<const unsigned char *>(sig.data());
  bool ok = mbedtls_pk_verify(pk, MBEDTLS_MD_NONE, hash, n, s, sig.size()) == 0;
  hash[n - 1] ^= 1;
  ok = ok && mbedtls_pk_verify(pk, MBEDTLS_MD_NONE, hash, n, s, sig.size()) != 0;
  hash[n - 1] ^= 1;
  return ok;
}
}  // namespace

TEST_CASE("a presignature finishes the published ECDSA vectors exactly and signs once") {
  // RFC 4754, sections 8.1 to 8.3: private key d, nonce k, the SHA-2 hash
  // of "abc", and the signature (r, s) those give.
  struct Vector {
    mbedtls_ecp_group_id curve;
    const char *d, *k, *hash, *r, *s;
  };
  const Vector vectors[] = {
      {MBEDTLS_ECP_DP_SECP256R1, "DC51D3866A15BACDE33D96F992FCA99DA7E6EF0934E7097559C27F1614C88A7F",
       "9E56F509196784D963D1C0A401510EE7ADA3DCC5DEE04B154BF61AF1D5A6DECE",
       "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
       "CB28E0999B9C7715FD0A80D8E47A77079716CBBF917DD72E97566EA1C066957C",
       "86FA3BB4E26CAD5BF90B7F81899256CE7594BB1EA0C89212748BFF3B3D5B0315"},
      {MBEDTLS_ECP_DP_SECP384R1,
       "0BEB646634BA87735D77AE4809A0EBEA865535DE4C1E1DCB692E84708E81A5AF62E528C38B2A81B35309668D73524D9F",
       "B4B74E44D71A13D568003D7489908D564C7761E229C58CBFA18950096EB7463B854D7FA992F934D927376285E63414FA",
       "CB00753F45A35E8BB5A03D699AC65007272C32AB0EDED1631A8B605A43FF5BED8086072BA1E7CC2358BAECA134C825A7",
       "FB017B914E29149432D8BAC29A514640B46F53DDAB2C69948084E2930F1C8F7E08E07C9C63F2D21A07DCB56A6AF56EB3",
       "B263A1305E057F984D38726A1B46874109F417BCA112674C528262A40A629AF1CBB9F516CE0FA7D2FF630863A00E8B9F"},
      {MBEDTLS_ECP_DP_SECP521R1,
       "0065FDA3409451DCAB0A0EAD45495112A3D813C17BFD34BDF8C1209D7DF5849120597779060A7FF9D704ADF78B570FFAD6F0"
       "62E95C7E0C5D5481C5B153B48B375FA1",
       "00C1C2B305419F5A41344D7E4359933D734096F556197A9B244342B8B62F46F9373778F9DE6B6497B1EF825FF24F42F9B4A4"
       "BD7382CFC3378A540B1B7F0C1B956C2F",
       "DDAF35A193617ABACC417349AE20413112E6FA4E89A97EA20A9EEEE64B55D39A2192992A274FC1A836BA3C23A3FEEBBD454D"
       "4423643CE80E2A9AC94FA54CA49F",
       "0154FD3836AF92D0DCA57DD5341D3053988534FDE8318FC6AAAAB68E2E6F4339B19F2F281A7E0B22C269D93CF8794A927888"
       "0ED7DBB8D9362CAEACEE544320552251",
       "017705A7030290D1CEB605A9A1BB03FF9CDD521E87A696EC926C8C10C8362DF4975367101F67D1CF9BCCBF2F3D239534FA50"
       "9E70AAC851AE01AAC68D62F866472660"},
  };
  for (const auto &v : vectors) {
    CAPTURE(v.curve);
    mbedtls_ecp_group grp;
    mbedtls_ecp_group_init(&grp);
    REQUIRE(mbedtls_ecp_group_load(&grp, v.curve) == 0);
    mbedtls_mpi d, r, s;
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    REQUIRE(mbedtls_mpi_read_string(&d, 16, v.d) == 0);
    std::string hash = unhex(v.hash);
    auto *h = reinterpret_cast<const unsigned char *>(hash.data());
    auto pre = pinniped::Presignature::with_known_nonce(v.curve, unhex(v.k));
    CHECK(pre.usable_for(v.curve));
    CHECK_FALSE(
        pre.usable_for(v.curve == MBEDTLS_ECP_DP_SECP256R1 ? MBEDTLS_ECP_DP_SECP384R1 : MBEDTLS_ECP_DP_SECP256R1));
    REQUIRE(pre.finish(grp, d, h, hash.size(), &r, &s) == 0);
    mbedtls_mpi want_r, want_s;
    mbedtls_mpi_init(&want_r);
    mbedtls_mpi_init(&want_s);
    REQUIRE(mbedtls_mpi_read_string(&want_r, 16, v.r) == 0);
    REQUIRE(mbedtls_mpi_read_string(&want_s, 16, v.s) == 0);
    CHECK(mpi_hex(r) == mpi_hex(want_r));
    CHECK(mpi_hex(s) == mpi_hex(want_s));
    mbedtls_mpi_free(&want_r);
    mbedtls_mpi_free(&want_s);
    // Spent: a second use is refused and writes nothing.
    CHECK_FALSE(pre.usable_for(v.curve));
    mbedtls_mpi_lset(&r, 7);
    CHECK(pre.finish(grp, d, h, hash.size(), &r, &s) != 0);
    CHECK(mbedtls_mpi_cmp_int(&r, 7) == 0);
    mbedtls_mpi_free(&d);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_group_free(&grp);
  }
  SECTION("a nonce out of range is refused") {
    CHECK_THROWS_AS(pinniped::Presignature::with_known_nonce(MBEDTLS_ECP_DP_SECP256R1, std::string(32, '\0')),
                    pinniped::Error);
    CHECK_THROWS_AS(pinniped::Presignature::with_known_nonce(MBEDTLS_ECP_DP_SECP256R1, std::string(32, '\xff')),
                    pinniped::Error);
  }
}

TEST_CASE("signatures finished from presignatures verify, never share a nonce, and fall back when they cannot") {
  auto key = pinniped::PrivateKey::parse(pinniped::PrivateKey::generate_ec()->to_pem());
  SECTION("200 signatures: each verifies for its hash only, all r differ") {
    std::set<std::string> rs;
    int good = 0;
    for (int i = 0; i < 200; i++) {
      unsigned char hash[32];
      std::memset(hash, i, sizeof hash);
      auto pre = pinniped::Presignature::make(MBEDTLS_ECP_DP_SECP256R1);
      std::string sig = key->sign(MBEDTLS_MD_SHA256, hash, sizeof hash, &pre);
      CHECK_FALSE(pre.usable_for(MBEDTLS_ECP_DP_SECP256R1));  // spent
      if (verifies_only(*key, hash, sizeof hash, sig)) good++;
      rs.insert(signature_r(sig));
    }
    CHECK(good == 200);
    CHECK(rs.size() == 200);
  }
  SECTION("a spent one, one for another curve, and one made before a fork: the signature is made whole") {
    unsigned char hash[32] = {9};
    auto pre = pinniped::Presignature::make(MBEDTLS_ECP_DP_SECP256R1);
    std::string first = key->sign(MBEDTLS_MD_SHA256, hash, sizeof hash, &pre);
    std::string again = key->sign(MBEDTLS_MD_SHA256, hash, sizeof hash, &pre);  // spent: signs the usual way
    CHECK(verifies_only(*key, hash, sizeof hash, first));
    CHECK(verifies_only(*key, hash, sizeof hash, again));
    CHECK(signature_r(first) != signature_r(again));
    auto p384 = pinniped::Presignature::make(MBEDTLS_ECP_DP_SECP384R1);
    std::string other = key->sign(MBEDTLS_MD_SHA256, hash, sizeof hash, &p384);
    CHECK(verifies_only(*key, hash, sizeof hash, other));
    CHECK_FALSE(p384.usable_for(MBEDTLS_ECP_DP_SECP384R1));  // spent by the attempt all the same

    auto before_fork = pinniped::Presignature::make(MBEDTLS_ECP_DP_SECP256R1);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) _exit(before_fork.usable_for(MBEDTLS_ECP_DP_SECP256R1) ? 1 : 0);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);                          // refused in the child
    CHECK(before_fork.usable_for(MBEDTLS_ECP_DP_SECP256R1));  // and still good in the parent
  }
  SECTION("an RSA key ignores a presignature and leaves it unspent") {
    auto rsa = pinniped::PrivateKey::parse(pinniped::PrivateKey::generate_rsa(2048)->to_pem());
    unsigned char hash[32] = {3};
    auto pre = pinniped::Presignature::make(MBEDTLS_ECP_DP_SECP256R1);
    std::string sig = rsa->sign(MBEDTLS_MD_SHA256, hash, sizeof hash, &pre);
    auto *pk = const_cast<mbedtls_pk_context *>(rsa->get());
    CHECK(mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, hash, sizeof hash,
                            reinterpret_cast<const unsigned char *>(sig.data()), sig.size()) == 0);
    CHECK(pre.usable_for(MBEDTLS_ECP_DP_SECP256R1));
  }
  SECTION("moved: only the destination holds it") {
    auto a = pinniped::Presignature::make(MBEDTLS_ECP_DP_SECP256R1);
    pinniped::Presignature b = std::move(a);
    CHECK_FALSE(a.usable_for(MBEDTLS_ECP_DP_SECP256R1));  // NOLINT(bugprone-use-after-move): the point
    CHECK(b.usable_for(MBEDTLS_ECP_DP_SECP256R1));
    pinniped::Presignature c;
    c = std::move(b);
    CHECK_FALSE(b.usable_for(MBEDTLS_ECP_DP_SECP256R1));  // NOLINT(bugprone-use-after-move)
    CHECK(c.usable_for(MBEDTLS_ECP_DP_SECP256R1));
  }
}

TEST_CASE("the key pool keeps presignatures for the signer's curve and hands each out once") {
  int idle_before = idle_threads();
  pinniped::KeyPool pool(4);
  CHECK(pool.presignatures_ready() == 0);
  CHECK_FALSE(pool.take(MBEDTLS_ECP_DP_SECP256R1).presignature);  // none asked for yet
  pool.presign_for(MBEDTLS_ECP_DP_SECP256R1);
  REQUIRE(wait_until([&] { return pool.ready() == 4 && pool.presignatures_ready() == 4; }, 20s));
  CHECK(idle_threads() == idle_before + 1);  // the same one background thread
  CHECK_FALSE(pool.take(MBEDTLS_ECP_DP_SECP384R1).presignature);
  CHECK(pool.presignatures_ready() == 4);

  // Eight threads take at once, more than are ready: each one taken signs
  // a distinct r; the rest find none.
  auto key = pinniped::PrivateKey::parse(pinniped::PrivateKey::generate_ec()->to_pem());
  std::mutex mu;
  std::vector<std::string> rs;
  std::atomic<int> bad{0}, none{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; i++) {
        auto p = pool.take(MBEDTLS_ECP_DP_SECP256R1).presignature;
        if (!p) {
          none++;
          continue;
        }
        unsigned char hash[32];
        std::memset(hash, t * 32 + i, sizeof hash);
        std::string sig = key->sign(MBEDTLS_MD_SHA256, hash, sizeof hash, &*p);
        if (!verifies_only(*key, hash, sizeof hash, sig)) bad++;
        std::lock_guard<std::mutex> lk(mu);
        rs.push_back(signature_r(sig));
      }
    });
  for (auto &t : threads) t.join();
  CHECK(bad == 0);
  CHECK(rs.size() >= 4);
  CHECK(std::set<std::string>(rs.begin(), rs.end()).size() == rs.size());
  CHECK(rs.size() + static_cast<size_t>(none.load()) == 200);

  SECTION("an RSA signer: the presignatures are dropped and no more are made") {
    REQUIRE(wait_until([&] { return pool.presignatures_ready() == 4; }, 20s));
    pool.presign_for(MBEDTLS_ECP_DP_NONE);
    CHECK(pool.presignatures_ready() == 0);
    std::this_thread::sleep_for(100ms);
    CHECK(pool.presignatures_ready() == 0);
    CHECK_FALSE(pool.take(MBEDTLS_ECP_DP_NONE).presignature);
  }
  SECTION("a P-384 signer: those for P-256 are dropped, P-384 ones made") {
    pool.presign_for(MBEDTLS_ECP_DP_SECP384R1);
    CHECK_FALSE(pool.take(MBEDTLS_ECP_DP_SECP256R1).presignature);
    REQUIRE(wait_until([&] { return pool.presignatures_ready() == 4; }, 20s));
    auto p = pool.take(MBEDTLS_ECP_DP_SECP384R1).presignature;
    REQUIRE(p);
    CHECK(p->usable_for(MBEDTLS_ECP_DP_SECP384R1));
  }
}

TEST_CASE("the certificate authority signs with presignatures for EC signers, and certificates verify") {
  TempDir dir;
  pinniped::CertificateAuthority ca(4);
  auto ec = testing::openssl_signer(dir, "ec", "ec", "/CN=ec");
  auto rsa = testing::openssl_signer(dir, "rsa", "rsa", "/CN=rsa");
  std::string ec_pem = pinniped::read_file(ec.cert_file), rsa_pem = pinniped::read_file(rsa.cert_file);
  ca.set_signer(pinniped::Signer::from_pem(ec_pem, pinniped::read_file(ec.key_file)));
  REQUIRE(wait_until([&] { return ca.key_pool().presignatures_ready() == 4; }, 20s));
  // Whether from a presignature (the first one at least: four are ready)
  // or made whole (when the refill lags), every signature verifies with
  // mbedTLS and openssl, with its own nonce.
  size_t taken_before = ca.key_pool().presignatures_taken();
  std::set<std::string> rs;
  for (int i = 0; i < 8; i++) {
    auto c = ca.issue("alice-" + std::to_string(i), {"devs"});
    CHECK(mbed_verifies(c.cert_pem, ec_pem));
    X509 x(c.cert_pem);
    rs.insert(signature_r(raw(x.get()->sig)));
    if (i == 0) {
      dir.write("leaf.crt", c.cert_pem);
      CHECK(contains(sh("openssl verify -CAfile " + q(ec.cert_file) + " " + q(dir.file("leaf.crt"))), ": OK"));
    }
  }
  CHECK(rs.size() == 8);
  CHECK(ca.key_pool().presignatures_taken() > taken_before);
  ca.set_signer(pinniped::Signer::from_pem(rsa_pem, pinniped::read_file(rsa.key_file)));
  CHECK(ca.key_pool().presignatures_ready() == 0);
  size_t taken_rsa = ca.key_pool().presignatures_taken();
  auto r = ca.issue("bob", {});
  CHECK(mbed_verifies(r.cert_pem, rsa_pem));
  CHECK(ca.key_pool().presignatures_taken() == taken_rsa);
}
