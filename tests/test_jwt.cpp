// Section 4b: OIDC ID tokens. verify_jwt against tokens signed here with
// mbedTLS keys made here, JWK sets, discovery documents and issuer URLs as
// tables, and the JwtAuthenticator's key cache against an https issuer on
// loopback (discovery, JWKS, rotation, a flood of unknown key ids, an issuer
// that is down).
#include <catch2/catch.hpp>
#include <set>

#include "tests/jwt_keys.hpp"
#include "tests/support.hpp"

using namespace pinniped;
using testing::slow_factor;
using namespace testing::jwt_keys;

namespace {

const std::string kIssuer = "https://idp.example.com";
const std::string kAudience = "pinniped-cli";
const Clock::time_point kNow = clock_from_time_t(1900000000);

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

// Made once per run: RSA key generation takes a while.
const TestKey &rsa_a() {
  static TestKey k = make_rsa("rsa-a", 2048);
  return k;
}
const TestKey &rsa_b() {
  static TestKey k = make_rsa("rsa-b", 2048);
  return k;
}
const TestKey &rsa_small() {
  static TestKey k = make_rsa("rsa-1024", 1024);
  return k;
}
const TestKey &ec256() {
  static TestKey k = make_ec("ec-256", MBEDTLS_ECP_DP_SECP256R1);
  return k;
}
const TestKey &ec384() {
  static TestKey k = make_ec("ec-384", MBEDTLS_ECP_DP_SECP384R1);
  return k;
}

picojson::object good_claims(Clock::time_point now = kNow) {
  picojson::object c;
  c["iss"] = jv(kIssuer);
  c["aud"] = jv(kAudience);
  c["sub"] = jv("user-123");
  c["exp"] = jv(secs(now) + 300);
  c["iat"] = jv(secs(now));
  c["username"] = jv("alice");
  picojson::array g{jv("devs"), jv("ops")};
  c["groups"] = picojson::value(g);
  return c;
}

std::string header_for(const TestKey &k, const std::string &alg) { return header_for_kid(alg, k.kid); }

std::string token(const TestKey &k, const std::string &alg, const picojson::object &claims = good_claims()) {
  return token_from(k, alg, header_for(k, alg), picojson::value(claims).serialize());
}

JwtRules rules() {
  JwtRules r;
  r.issuer = kIssuer;
  r.audience = kAudience;
  return r;
}

// Every test key, usable.
std::shared_ptr<const JsonWebKeySet> all_keys() {
  static auto set = JsonWebKeySet::parse(jwks({rsa_a().jwk(), ec256().jwk(), ec384().jwk(), rsa_b().jwk()}));
  return set;
}

// The parts of a token longer than a few bytes (what a reason must never quote).
std::vector<std::string> secret_parts(const std::string &tok) {
  std::vector<std::string> out;
  if (tok.size() >= 8) out.push_back(tok);
  for (const auto &p : detail::split(tok, '.'))
    if (p.size() >= 8) out.push_back(p);
  return out;
}

void check_reason_is_clean(const std::string &reason, const std::string &tok) {
  for (const auto &p : secret_parts(tok)) {
    INFO("part " << p.substr(0, 20) << "...");
    CHECK_FALSE(contains(reason, p));
  }
}

// What `f` throws: its message, and the JwtSetupError condition ("" for
// another Error); "(nothing)" when it returns.
template <class F>
std::pair<std::string, std::string> thrown(F &&f) {
  try {
    f();
  } catch (const JwtSetupError &e) {
    return {e.what(), e.condition};
  } catch (const Error &e) {
    return {e.what(), ""};
  }
  return {"(nothing)", "(nothing)"};
}

Millis scaled(int ms) { return Millis(ms * slow_factor()); }

// An OIDC issuer over real TLS on 127.0.0.1 (support.hpp's FakeIdp, with
// GET routes): discovery at /.well-known/openid-configuration naming /jwks,
// whose JWKS a test sets. stop() takes it off the network.
class FakeIssuer {
 public:
  FakeIssuer() {
    server_ = std::make_unique<testing::FakeIdp>();
    issuer_ = "https://127.0.0.1:" + std::to_string(server_->port());
    ca_pem_ = server_->ca_pem();
    // Added before any request comes: the server reads its routes per request.
    server_->server().Get("/.well-known/openid-configuration",
                          [this](const httplib::Request &, httplib::Response &res) {
                            discovery_hits_++;
                            std::lock_guard<std::mutex> lk(mu_);
                            res.set_content(discovery_.empty() ? default_discovery() : discovery_, "application/json");
                          });
    server_->server().Get("/jwks", [this](const httplib::Request &, httplib::Response &res) {
      jwks_hits_++;
      std::string body;
      int status;
      Millis delay;
      {
        std::lock_guard<std::mutex> lk(mu_);
        body = jwks_;
        status = jwks_status_;
        delay = jwks_delay_;
      }
      if (delay.count()) std::this_thread::sleep_for(delay);
      res.status = status;
      res.set_content(body, "application/json");
    });
  }
  void stop() { server_.reset(); }

  const std::string &issuer() const { return issuer_; }
  const std::string &ca_pem() const { return ca_pem_; }
  void set_jwks(const std::string &j, int status = 200) {
    std::lock_guard<std::mutex> lk(mu_);
    jwks_ = j;
    jwks_status_ = status;
  }
  void set_jwks_delay(Millis d) {
    std::lock_guard<std::mutex> lk(mu_);
    jwks_delay_ = d;
  }
  void set_discovery(const std::string &doc) {
    std::lock_guard<std::mutex> lk(mu_);
    discovery_ = doc;
  }
  std::string default_discovery() const {
    return "{\"issuer\":\"" + issuer() + "\",\"jwks_uri\":\"" + issuer() +
           "/jwks\",\"id_token_signing_alg_values_supported\":[\"RS256\",\"ES256\"]}";
  }
  int jwks_hits() const { return jwks_hits_.load(); }
  int discovery_hits() const { return discovery_hits_.load(); }

  JwtAuthenticatorSpec spec() const {
    JwtAuthenticatorSpec s;
    s.issuer = issuer();
    s.audience = kAudience;
    s.ca_pem = ca_pem_;
    return s;
  }
  picojson::object claims(Clock::time_point now = Clock::now()) const {
    auto c = good_claims(now);
    c["iss"] = jv(issuer());
    return c;
  }

 private:
  std::string issuer_, ca_pem_;
  std::mutex mu_;
  std::string jwks_ = jwks({rsa_a().jwk()}), discovery_;
  int jwks_status_ = 200;
  Millis jwks_delay_{0};
  std::atomic<int> jwks_hits_{0}, discovery_hits_{0};
  std::unique_ptr<testing::FakeIdp> server_;  // last: stopped before the members its handlers use
};

// A Logger whose lines a test reads.
struct CapturedLog {
  std::mutex mu;
  std::string text;
  Logger log{Logger::Level::debug, [this](const std::string &line) {
               std::lock_guard<std::mutex> lk(mu);
               text += line;
             }};
  std::string get() {
    std::lock_guard<std::mutex> lk(mu);
    return text;
  }
};

JwtAuthenticatorOptions options(Millis refetch_interval) {
  JwtAuthenticatorOptions o;
  o.refetch_interval = refetch_interval;
  o.refetch_timeout = scaled(5000);
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------
// base64url

TEST_CASE("base64url encoding drops the padding and round-trips") {
  CHECK(detail::base64url_encode("") == "");
  CHECK(detail::base64url_encode("f") == "Zg");
  CHECK(detail::base64url_encode("\xfb\xff") == "-_8");
  for (size_t n = 0; n < 70; n++) {
    std::string raw = detail::random_bytes(n);
    INFO(n << " bytes");
    CHECK(detail::base64url_decode(detail::base64url_encode(raw)) == raw);
  }
}

TEST_CASE("base64url decoding takes the unpadded URL alphabet only") {
  struct Row {
    const char *in;
    std::optional<std::string> out;
  } rows[] = {
      {"", std::string()},          {"Zg", std::string("f")},         {"Zm8", std::string("fo")},
      {"Zm9v", std::string("foo")}, {"-_8", std::string("\xfb\xff")}, {"Zg==", std::nullopt},  // padding
      {"Zg=", std::nullopt},                                                                   // padding
      {"Z", std::nullopt},                                                                     // 4n+1 characters
      {"Zh", std::nullopt},     // leftover bits not zero: a second spelling of "f"
      {"Zm9", std::nullopt},    // likewise for "fo"
      {"+/8", std::nullopt},    // the standard alphabet
      {"Zm 9v", std::nullopt},  // whitespace
      {"Zm9v\n", std::nullopt},     {"Zm9v.", std::nullopt},
  };
  for (const auto &r : rows) {
    INFO("input \"" << r.in << "\"");
    CHECK(detail::base64url_decode(r.in) == r.out);
  }
}

// ---------------------------------------------------------------------------
// Accepted tokens.

TEST_CASE("a token of each supported algorithm verifies, and fails once its signature is changed") {
  struct Row {
    const char *alg;
    const TestKey &key;
  };
  std::vector<Row> rows = {{"RS256", rsa_a()}, {"RS384", rsa_a()}, {"RS512", rsa_b()},
                           {"PS256", rsa_b()}, {"ES256", ec256()}, {"ES384", ec384()}};
  auto keys = all_keys();
  for (const auto &r : rows) {
    INFO(r.alg);
    std::string tok = token(r.key, r.alg);
    JwtCheck c = verify_jwt(tok, *keys, rules(), kNow);
    INFO(c.reason);
    REQUIRE(c.ok);
    CHECK(c.reason.empty());
    CHECK(c.alg == r.alg);
    CHECK(c.kid == r.key.kid);
    CHECK(c.user.username == "alice");
    CHECK(c.user.groups == std::vector<std::string>{"devs", "ops"});
    CHECK(c.expiry == kNow + std::chrono::seconds(300));
    CHECK(json::get_string(picojson::value(c.claims), "sub", "sub") == "user-123");

    // The last signature byte changed (the first character of its last
    // quantum, so that the change is not only in padding bits).
    std::string bad = tok;
    size_t at = bad.size() - 3;
    bad[at] = bad[at] == 'A' ? 'B' : 'A';
    JwtCheck b = verify_jwt(bad, *keys, rules(), kNow);
    CHECK_FALSE(b.ok);
    CHECK(contains(b.reason, "signature does not verify"));
    CHECK(b.claims.empty());
    CHECK(b.user.username.empty());
  }
}

TEST_CASE("claims within the rules are accepted, one row each") {
  auto keys = all_keys();
  struct Row {
    const char *name;
    std::function<void(picojson::object &, JwtRules &)> change;
    std::function<void(const JwtCheck &)> expect;
  };
  using C = picojson::object;
  std::vector<Row> rows = {
      {"aud as an array with azp",
       [](C &c, JwtRules &) {
         c["aud"] = picojson::value(picojson::array{jv("other"), jv(kAudience)});
         c["azp"] = jv("other");
       },
       [](const JwtCheck &c) { CHECK(c.ok); }},
      {"exp as a float", [](C &c, JwtRules &) { c["exp"] = jv(static_cast<double>(secs(kNow)) + 300.5); },
       [](const JwtCheck &c) { CHECK(c.expiry == kNow + Millis(300500)); }},
      {"exp 30 s past, within the skew", [](C &c, JwtRules &) { c["exp"] = jv(secs(kNow) - 30); },
       [](const JwtCheck &c) { CHECK(c.ok); }},
      {"nbf 30 s ahead and iat 30 s ahead, within the skew",
       [](C &c, JwtRules &) {
         c["nbf"] = jv(secs(kNow) + 30);
         c["iat"] = jv(secs(kNow) + 30);
       },
       [](const JwtCheck &c) { CHECK(c.ok); }},
      {"no groups claim: no groups", [](C &c, JwtRules &) { c.erase("groups"); },
       [](const JwtCheck &c) { CHECK(c.user.groups.empty()); }},
      {"groups null: no groups", [](C &c, JwtRules &) { c["groups"] = picojson::value(); },
       [](const JwtCheck &c) { CHECK(c.user.groups.empty()); }},
      {"groups as one string: one group", [](C &c, JwtRules &) { c["groups"] = jv("admins"); },
       [](const JwtCheck &c) { CHECK(c.user.groups == std::vector<std::string>{"admins"}); }},
      {"username from a verified email",
       [](C &c, JwtRules &r) {
         r.username_claim = "email";
         c["email"] = jv("alice@example.com");
         c["email_verified"] = jv(true);
       },
       [](const JwtCheck &c) { CHECK(c.user.username == "alice@example.com"); }},
      {"other username and groups claims",
       [](C &c, JwtRules &r) {
         r.username_claim = "sub";
         r.groups_claim = "roles";
         c["roles"] = picojson::value(picojson::array{jv("r1")});
       },
       [](const JwtCheck &c) {
         CHECK(c.user.username == "user-123");
         CHECK(c.user.groups == std::vector<std::string>{"r1"});
       }},
      {"require_user false: no username needed",
       [](C &c, JwtRules &r) {
         r.require_user = false;
         c.erase("username");
       },
       [](const JwtCheck &c) {
         CHECK(c.ok);
         CHECK(c.user.username.empty());
       }},
      {"the nonce asked for", [](C &c, JwtRules &r) { r.nonce = c["nonce"].get<std::string>(); },
       [](const JwtCheck &c) { CHECK(c.ok); }},
  };
  for (const auto &row : rows) {
    INFO(row.name);
    auto claims = good_claims();
    claims["nonce"] = jv("n-0S6_WzA2Mj");
    JwtRules r = rules();
    row.change(claims, r);
    JwtCheck c = verify_jwt(token(rsa_a(), "RS256", claims), *keys, r, kNow);
    INFO(c.reason);
    REQUIRE(c.ok);
    row.expect(c);
  }
}

TEST_CASE("claims that break the rules are refused, one row each") {
  auto keys = all_keys();
  struct Row {
    const char *name;
    std::function<void(picojson::object &, JwtRules &)> change;
    const char *reason;
    bool invalid_user;
  };
  using C = picojson::object;
  using A = picojson::array;
  auto email = [](C &c, JwtRules &r) {
    r.username_claim = "email";
    c["email"] = jv("alice@example.com");
  };
  std::vector<Row> rows = {
      {"expired beyond the skew", [](C &c, JwtRules &) { c["exp"] = jv(secs(kNow) - 61); }, "token expired at", false},
      {"expired with no skew",
       [](C &c, JwtRules &r) {
         c["exp"] = jv(secs(kNow) - 1);
         r.clock_skew = Millis(0);
       },
       "token expired at", false},
      {"nbf in the future", [](C &c, JwtRules &) { c["nbf"] = jv(secs(kNow) + 61); }, "not valid before", false},
      {"iat in the future", [](C &c, JwtRules &) { c["iat"] = jv(secs(kNow) + 3600); }, "issued in the future", false},
      {"no exp", [](C &c, JwtRules &) { c.erase("exp"); }, "token has no exp claim", false},
      {"exp as a string", [](C &c, JwtRules &) { c["exp"] = jv(std::to_string(secs(kNow) + 300)); },
       "exp claim is a string, not a number", false},
      {"nbf as a string", [](C &c, JwtRules &) { c["nbf"] = jv("0"); }, "nbf claim is a string", false},
      {"iat as a boolean", [](C &c, JwtRules &) { c["iat"] = jv(true); }, "iat claim is a boolean", false},
      {"another issuer", [](C &c, JwtRules &) { c["iss"] = jv("https://evil.example.com"); }, "is not the issuer",
       false},
      {"the issuer with a trailing slash", [](C &c, JwtRules &) { c["iss"] = jv(kIssuer + "/"); },
       "iss claim \"https://idp.example.com/\" is not the issuer", false},
      {"no iss", [](C &c, JwtRules &) { c.erase("iss"); }, "token has no iss claim", false},
      {"iss as a number", [](C &c, JwtRules &) { c["iss"] = jv(int64_t{1}); }, "iss claim is a number", false},
      {"another audience", [](C &c, JwtRules &) { c["aud"] = jv("kubectl"); }, "does not name the audience", false},
      {"an aud array without ours",
       [](C &c, JwtRules &) {
         c["aud"] = picojson::value(A{jv("a"), jv("b")});
       },
       "does not name the audience", false},
      {"an aud array with a number",
       [](C &c, JwtRules &) {
         c["aud"] = picojson::value(A{jv(kAudience), jv(3)});
       },
       "aud claim holds a number", false},
      {"aud as an object", [](C &c, JwtRules &) { c["aud"] = picojson::value(C{}); },
       "aud claim is an object, not a string or an array", false},
      {"no aud", [](C &c, JwtRules &) { c.erase("aud"); }, "token has no aud claim", false},
      {"nonce differs",
       [](C &c, JwtRules &r) {
         r.nonce = "n-1";
         c["nonce"] = jv("n-2");
       },
       "nonce claim does not match", false},
      {"nonce missing", [](C &, JwtRules &r) { r.nonce = "n-1"; }, "token has no nonce claim", false},
      {"no username claim", [](C &c, JwtRules &) { c.erase("username"); }, "token has no \"username\" claim", true},
      {"username empty", [](C &c, JwtRules &) { c["username"] = jv(""); }, "username claim \"username\" is empty",
       true},
      {"username a number", [](C &c, JwtRules &) { c["username"] = jv(7); }, "is a number, not a string", true},
      {"username with a NUL", [](C &c, JwtRules &) { c["username"] = jv(std::string("al\0ice", 6)); },
       "username is not valid UTF-8 text or holds a NUL", true},
      {"username not UTF-8", [](C &c, JwtRules &) { c["username"] = jv("al\xff"); }, "username is not valid UTF-8 text",
       true},
      {"email without email_verified", email, "token has no email_verified claim", true},
      {"email_verified the string \"true\"",
       [&](C &c, JwtRules &r) {
         email(c, r);
         c["email_verified"] = jv("true");
       },
       "email_verified claim is a string, not true", true},
      {"email_verified false",
       [&](C &c, JwtRules &r) {
         email(c, r);
         c["email_verified"] = jv(false);
       },
       "email_verified claim is false, not true", true},
      {"groups a number", [](C &c, JwtRules &) { c["groups"] = jv(5); },
       "groups claim \"groups\" is a number, not a string or an array", true},
      {"groups an object", [](C &c, JwtRules &) { c["groups"] = picojson::value(C{}); }, "is an object", true},
      {"groups with a number",
       [](C &c, JwtRules &) {
         c["groups"] = picojson::value(A{jv("a"), jv(1)});
       },
       "groups claim \"groups\" holds a number", true},
      {"groups with an empty group",
       [](C &c, JwtRules &) {
         c["groups"] = picojson::value(A{jv("a"), jv("")});
       },
       "holds an empty group", true},
      {"no audience configured", [](C &, JwtRules &r) { r.audience.clear(); }, "no issuer or audience", false},
  };
  for (const auto &row : rows) {
    INFO(row.name);
    auto claims = good_claims();
    JwtRules r = rules();
    row.change(claims, r);
    std::string tok = token(ec256(), "ES256", claims);
    JwtCheck c = verify_jwt(tok, *keys, r, kNow);
    INFO(c.reason);
    CHECK_FALSE(c.ok);
    CHECK(contains(c.reason, row.reason));
    CHECK(c.invalid_user == row.invalid_user);
    CHECK_FALSE(c.unknown_kid);
    CHECK(c.claims.empty());
    CHECK(c.user.username.empty());
    check_reason_is_clean(c.reason, tok);
  }
}

TEST_CASE("a quoted claim is cut to 64 bytes and escaped") {
  auto claims = good_claims();
  claims["iss"] = jv(std::string(70, 'x') + "\n" + std::string(5000, 'y'));
  JwtCheck c = verify_jwt(token(rsa_a(), "RS256", claims), *all_keys(), rules(), kNow);
  CHECK_FALSE(c.ok);
  CHECK(contains(c.reason, "\"" + std::string(64, 'x') + "\"..."));
  CHECK_FALSE(contains(c.reason, std::string(65, 'x')));
  CHECK_FALSE(contains(c.reason, "\n"));
  CHECK(c.reason.size() < 200);
}

// ---------------------------------------------------------------------------
// Structure, header and signature.

TEST_CASE("malformed tokens, refused headers and bad signatures, one row each") {
  auto keys = all_keys();
  const std::string claims = picojson::value(good_claims()).serialize();
  const std::string p64 = b64url(claims);
  auto with_header = [&](const std::string &h, const TestKey &k = rsa_a(), const std::string &alg = "RS256") {
    return token_from(k, alg, h, claims);
  };
  std::string good = token(rsa_a(), "RS256");
  std::string good_es = token(ec256(), "ES256");
  auto parts = detail::split(good, '.');
  auto es_parts = detail::split(good_es, '.');
  // An ES256 signature in DER, as mbedtls_pk_sign and OpenSSL make it.
  auto der_es256 = [&] {
    std::string input = es_parts[0] + "." + es_parts[1];
    std::string raw = sign(ec256(), "ES256", input);
    namespace der = detail::der;
    std::string sig = der::seq(der::uint(raw.substr(0, 32)) + der::uint(raw.substr(32)));
    return input + "." + b64url(sig);
  };
  // A payload part that is not base64url, under a valid signature.
  auto signed_garbage = [&](const std::string &payload_part) {
    std::string input = b64url(header_for(rsa_a(), "RS256")) + "." + payload_part;
    return input + "." + b64url(sign(rsa_a(), "RS256", input));
  };
  struct Row {
    const char *name;
    std::string token;
    const char *reason;
    bool unknown_kid;
  };
  std::vector<Row> rows = {
      {"empty", "", "token is empty", false},
      {"one part", "abc", "token is not a JWT (it has no '.')", false},
      {"two parts", parts[0] + "." + parts[1], "token has 2 parts", false},
      {"four parts", good + ".x", "token has 4 parts", false},
      {"five parts (JWE)", good + ".x.y", "encrypted token (JWE) is not accepted", false},
      {"huge", parts[0] + "." + std::string(16 * 1024, 'A') + "." + parts[2], "more than the 16384 accepted", false},
      {"header with padding", b64url("{\"alg\":\"RS256\"}") + "==." + p64 + "." + parts[2],
       "token header is not base64url", false},
      {"header in the standard alphabet", "eyJ+/." + p64 + "." + parts[2], "token header is not base64url", false},
      {"signature with '+'", parts[0] + "." + parts[1] + "." + parts[2].substr(0, 10) + "+" + parts[2].substr(11),
       "token signature is not base64url", false},
      {"payload not base64url, signed", signed_garbage("e30*"), "token payload is not base64url", false},
      {"payload not an object, signed", signed_garbage(b64url("[1,2]")), "token payload is not a JSON object", false},
      {"payload not JSON, signed", signed_garbage(b64url("{nope")), "token payload is not JSON", false},
      {"header not JSON", b64url("RS256") + "." + p64 + "." + parts[2], "token header is not JSON", false},
      {"header an array", b64url("[\"RS256\"]") + "." + p64 + "." + parts[2], "token header is not a JSON object",
       false},
      {"header a string", b64url("\"RS256\"") + "." + p64 + "." + parts[2], "token header is not a JSON object", false},
      {"no alg", with_header("{\"kid\":\"rsa-a\"}"), "token header has no alg", false},
      {"alg a number", with_header("{\"alg\":256}"), "token header has no alg", false},
      {"alg none, no signature", b64url("{\"alg\":\"none\"}") + "." + p64 + ".", "alg none (an unsigned token)", false},
      {"alg NONE with a signature", b64url("{\"alg\":\"NONE\"}") + "." + p64 + "." + parts[2], "alg none", false},
      {"HS256 keyed with the RSA public key's JWK",
       [&] {
         std::string input = b64url("{\"alg\":\"HS256\",\"kid\":\"rsa-a\"}") + "." + p64;
         return input + "." + b64url(hmac_sha256(rsa_a().jwk(), input));
       }(),
       "alg \"HS256\" (a shared secret) is refused", false},
      {"HS512 keyed with the modulus",
       [&] {
         std::string input = b64url("{\"alg\":\"HS512\"}") + "." + p64;
         return input + "." + b64url(hmac_sha256(rsa_a().n, input));
       }(),
       "(a shared secret) is refused", false},
      {"alg ES512", with_header("{\"alg\":\"ES512\",\"kid\":\"rsa-a\"}"), "alg \"ES512\" is not supported", false},
      {"alg EdDSA", with_header("{\"alg\":\"EdDSA\"}"), "alg \"EdDSA\" is not supported", false},
      {"alg rs256 (case)", with_header("{\"alg\":\"rs256\",\"kid\":\"rsa-a\"}"), "alg \"rs256\" is not supported",
       false},
      {"crit", with_header("{\"alg\":\"RS256\",\"kid\":\"rsa-a\",\"crit\":[\"exp\"],\"exp\":1}"),
       "token header has crit", false},
      {"zip", with_header("{\"alg\":\"RS256\",\"kid\":\"rsa-a\",\"zip\":\"DEF\"}"), "compressed tokens", false},
      {"typ at+jwt", with_header("{\"alg\":\"RS256\",\"kid\":\"rsa-a\",\"typ\":\"at+jwt\"}"),
       "typ is \"at+jwt\", not JWT", false},
      {"typ a number", with_header("{\"alg\":\"RS256\",\"kid\":\"rsa-a\",\"typ\":1}"), "typ is a number", false},
      {"kid a number", with_header("{\"alg\":\"RS256\",\"kid\":1}"), "token header kid is a number", false},
      {"unknown kid", with_header("{\"alg\":\"RS256\",\"kid\":\"rotated-away\"}"),
       "no key with kid \"rotated-away\" in the JWKS", true},
      {"RS256 header naming the EC key", with_header("{\"alg\":\"RS256\",\"kid\":\"ec-256\"}"),
       "the key with kid \"ec-256\" is an EC P-256 key", false},
      {"ES256 header naming an RSA key", with_header("{\"alg\":\"ES256\",\"kid\":\"rsa-a\"}", ec256(), "ES256"),
       "the key with kid \"rsa-a\" is an RSA key", false},
      {"ES384 header naming the P-256 key", with_header("{\"alg\":\"ES384\",\"kid\":\"ec-256\"}", ec384(), "ES384"),
       "is an EC P-256 key", false},
      {"signed by another key than its kid", with_header("{\"alg\":\"RS256\",\"kid\":\"rsa-b\"}"),
       "signature does not verify (kid \"rsa-b\")", false},
      {"a 1024-bit signature for a 2048-bit key", with_header("{\"alg\":\"RS256\",\"kid\":\"rsa-a\"}", rsa_small()),
       "signature is 128 bytes, the key's modulus 256 (kid \"rsa-a\")", false},
      {"no kid, no key verifies", with_header("{\"alg\":\"RS256\"}", rsa_small()),
       "signature does not verify with any of the 2 keys tried for RS256", false},
      {"tampered payload",
       parts[0] + "." + b64url([&] {
         auto c = good_claims();
         c["username"] = jv("root");
         return picojson::value(c).serialize();
       }()) +
           "." + parts[2],
       "signature does not verify", false},
      {"truncated RSA signature",
       parts[0] + "." + parts[1] + "." + b64url(detail::base64url_decode(parts[2])->substr(0, 253)),
       "signature is 253 bytes, the key's modulus 256", false},
      {"no signature", parts[0] + "." + parts[1] + ".", "token has no signature", false},
      {"RS256 header over a PSS signature",
       [&] {
         std::string input = b64url(header_for(rsa_a(), "RS256")) + "." + p64;
         return input + "." + b64url(sign(rsa_a(), "PS256", input));
       }(),
       "signature does not verify", false},
      {"PS256 header over a PKCS#1 v1.5 signature",
       [&] {
         std::string input = b64url(header_for(rsa_a(), "PS256")) + "." + p64;
         return input + "." + b64url(sign(rsa_a(), "RS256", input));
       }(),
       "signature does not verify", false},
      {"PS256 with a salt of 64 bytes, not 32",
       [&] {
         std::string input = b64url(header_for(rsa_a(), "PS256")) + "." + p64;
         return input + "." + b64url(sign(rsa_a(), "PS256", input, 64));
       }(),
       "signature does not verify", false},
      {"ES256 signature in DER", der_es256(), "ES256 signature is ", false},
      {"ES256 signature one byte short", es_parts[0] + "." + es_parts[1] + "." + b64url(std::string(63, '\x01')),
       "ES256 signature is 63 bytes, JWS has exactly 64", false},
      {"ES256 signature of zeros", es_parts[0] + "." + es_parts[1] + "." + b64url(std::string(64, '\0')),
       "signature does not verify", false},
      {"ES256 r and s swapped",
       es_parts[0] + "." + es_parts[1] + "." +
           [&] {
             std::string s = *detail::base64url_decode(es_parts[2]);
             return b64url(s.substr(32) + s.substr(0, 32));
           }(),
       "signature does not verify", false},
  };
  for (const auto &row : rows) {
    INFO(row.name);
    JwtCheck c = verify_jwt(row.token, *keys, rules(), kNow);
    INFO(c.reason);
    CHECK_FALSE(c.ok);
    CHECK(contains(c.reason, row.reason));
    CHECK(c.unknown_kid == row.unknown_kid);
    CHECK(c.claims.empty());
    check_reason_is_clean(c.reason, row.token);
  }
}

TEST_CASE("a token without kid is tried against the keys of its type, a few at most") {
  // rsa-a comes first in the set and fails; rsa-b verifies.
  auto keys = all_keys();
  auto claims = picojson::value(good_claims()).serialize();
  JwtCheck c = verify_jwt(token_from(rsa_b(), "RS256", "{\"alg\":\"RS256\"}", claims), *keys, rules(), kNow);
  INFO(c.reason);
  CHECK(c.ok);
  CHECK(c.kid.empty());
  // An empty kid is no kid, as go-oidc reads it.
  c = verify_jwt(token_from(ec384(), "ES384", "{\"alg\":\"ES384\",\"kid\":\"\",\"typ\":\"jwt\"}", claims), *keys,
                 rules(), kNow);
  INFO(c.reason);
  CHECK(c.ok);

  // Six RSA keys that do not verify and then the one that does: only the
  // first PINNIPED_JWT_KEYLESS_TRIES are tried.
  std::vector<std::string> many;
  for (int i = 0; i < 6; i++) many.push_back(rsa_a().jwk_as("a" + std::to_string(i)));
  many.push_back(rsa_b().jwk());
  auto crowd = JsonWebKeySet::parse(jwks(many));
  REQUIRE(crowd->size() == 7);
  c = verify_jwt(token_from(rsa_b(), "RS256", "{\"alg\":\"RS256\"}", claims), *crowd, rules(), kNow);
  CHECK_FALSE(c.ok);
  CHECK(contains(c.reason, "does not verify with any of the 4 keys tried for RS256 (of 7)"));
  // With its kid, the same token verifies.
  c = verify_jwt(token(rsa_b(), "RS256"), *crowd, rules(), kNow);
  CHECK(c.ok);
}

TEST_CASE("the example signatures of RFC 7515 verify (another implementation's RS256 and raw ES256)") {
  auto keys = JsonWebKeySet::parse(R"({"keys":[
    {"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"},
    {"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})");
  const std::string payload =
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
  struct Row {
    const char *alg, *header, *signature;
  } rows[] = {
      {"RS256", "eyJhbGciOiJSUzI1NiJ9",
       "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_"
       "O8W2Fp5jujGbds9uJdbF9CUAr7t"
       "1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12"
       "jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_"
       "IoypGlUPQ"
       "Ge77Rw"},
      {"ES256", "eyJhbGciOiJFUzI1NiJ9",
       "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"},
  };
  for (const auto &r : rows) {
    INFO(r.alg);
    std::string input = std::string(r.header) + "." + payload;
    std::string sig = *detail::base64url_decode(r.signature);
    bool unknown = false;
    CHECK(keys->verify_signature(*detail::find_jws_algorithm(r.alg), nullptr, input, sig, &unknown) == "");
    CHECK(keys->verify_signature(*detail::find_jws_algorithm(r.alg), nullptr, input + " ", sig, &unknown) != "");
    // Through verify_jwt: the signature holds, then the example's claims
    // (iss "joe", no aud, expired in 2011) are what is refused.
    JwtRules rules;
    rules.issuer = "joe";
    rules.audience = "bob";
    JwtCheck c = verify_jwt(input + "." + r.signature, *keys, rules, clock_from_time_t(1300819000));
    CHECK(c.reason == "token has no aud claim");
  }
}

TEST_CASE("one key set verifies from several threads at once") {
  auto keys = all_keys();
  std::vector<std::string> tokens = {token(rsa_a(), "RS256"), token(rsa_b(), "PS256"), token(ec256(), "ES256"),
                                     token(ec384(), "ES384")};
  std::string forged = tokens[2];
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; i++) {
        if (verify_jwt(tokens[(t + i) % tokens.size()], *keys, rules(), kNow).ok) ok++;
        if (!verify_jwt(forged, *keys, rules(), kNow).ok) refused++;
      }
    });
  for (auto &t : threads) t.join();
  CHECK(ok == 100);
  CHECK(refused == 100);
}

// ---------------------------------------------------------------------------
// JWK sets.

TEST_CASE("a JWKS keeps the keys it can use and says why it skipped the others") {
  auto set = JsonWebKeySet::parse(jwks({
      "{\"kty\":\"oct\",\"kid\":\"hmac\",\"k\":\"c2VjcmV0\"}",
      rsa_a().jwk(",\"alg\":\"RSA-OAEP\""),
      rsa_b().jwk().replace(rsa_b().jwk().find("\"sig\""), 5, "\"enc\""),
      "{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
      "{\"kty\":\"EC\",\"kid\":\"p521\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"}",
      ec256().jwk(",\"key_ops\":[\"encrypt\"]"),
      ec256().jwk(",\"alg\":\"ES256\",\"key_ops\":[\"verify\"]"),
      "{\"kty\":\"RSA\",\"kid\":\"lead-zero\",\"n\":\"" + b64url(std::string(1, '\0') + rsa_b().n) + "\",\"e\":\"" +
          b64url(rsa_b().e) + "\"}",
  }));
  CHECK(set->size() == 2);
  CHECK(set->kids() == std::vector<std::string>{"ec-256", "lead-zero"});
  CHECK(set->has_kid("ec-256"));
  CHECK_FALSE(set->has_kid("hmac"));
  CHECK_FALSE(set->has_kid("rsa-a"));
  const auto &s = set->skipped();
  REQUIRE(s.size() == 6);
  CHECK(s[0] == "keys[0] (kid \"hmac\"): kty \"oct\" is not supported");
  CHECK(s[1] == "keys[1] (kid \"rsa-a\"): alg \"RSA-OAEP\" is not supported");
  CHECK(s[2] == "keys[2] (kid \"rsa-b\"): use is \"enc\"");
  CHECK(s[3] == "keys[3] (kid \"ed\"): kty \"OKP\" is not supported");
  CHECK(s[4] == "keys[4] (kid \"p521\"): crv \"P-521\" is not supported");
  CHECK(s[5] == "keys[5] (kid \"ec-256\"): key_ops lacks \"verify\"");

  // The kept keys work: a modulus with a leading zero byte is the same key.
  auto claims = picojson::value(good_claims()).serialize();
  CHECK(
      verify_jwt(token_from(rsa_b(), "RS256", "{\"alg\":\"RS256\",\"kid\":\"lead-zero\"}", claims), *set, rules(), kNow)
          .ok);
  CHECK(verify_jwt(token(ec256(), "ES256"), *set, rules(), kNow).ok);
}

TEST_CASE("a key marked with one alg verifies only that alg") {
  auto set = JsonWebKeySet::parse(jwks({rsa_a().jwk(",\"alg\":\"RS256\"")}));
  CHECK(verify_jwt(token(rsa_a(), "RS256"), *set, rules(), kNow).ok);
  JwtCheck c = verify_jwt(token(rsa_a(), "PS256"), *set, rules(), kNow);
  CHECK_FALSE(c.ok);
  CHECK(contains(c.reason, "the key with kid \"rsa-a\" is marked for RS256, not PS256"));
}

TEST_CASE("JWKS documents and keys that are refused, one row each") {
  std::string rsa_n = b64url(rsa_a().n), rsa_e = b64url(rsa_a().e);
  auto rsa = [&](const std::string &members) { return jwks({"{\"kty\":\"RSA\",\"kid\":\"k\"," + members + "}"}); };
  std::string off_curve_y = ec256().y;
  off_curve_y.back() = static_cast<char>(off_curve_y.back() ^ 1);
  std::string many = "{\"keys\":[";
  for (int i = 0; i <= PINNIPED_JWT_MAX_KEYS; i++) many += (i ? "," : "") + ec256().jwk();
  many += "]}";
  struct Row {
    const char *name;
    std::string doc;
    const char *reason;
  };
  std::vector<Row> rows = {
      {"not JSON", "keys", "JWKS is not JSON"},
      {"an array", "[]", "JWKS is not a JSON object"},
      {"no keys", "{}", "JWKS has no keys array"},
      {"keys an object", "{\"keys\":{}}", "JWKS has no keys array"},
      {"empty keys", "{\"keys\":[]}",
       "no key usable for RS256, RS384, RS512, PS256, ES256, ES384 (the keys array is empty)"},
      {"only unusable keys", jwks({"{\"kty\":\"oct\",\"k\":\"AA\"}", rsa_a().jwk(",\"use\":\"enc\"")}),
       "JWKS has no key usable"},
      {"a key that is not an object", "{\"keys\":[1]}", "JWKS keys[0] is not an object"},
      {"kid a number", "{\"keys\":[{\"kty\":\"RSA\",\"kid\":5}]}", "keys[0].kid: expected a string"},
      {"no kty", "{\"keys\":[{\"kid\":\"k\"}]}", "has no kty"},
      {"RSA modulus of 1024 bits", jwks({rsa_small().jwk()}), "RSA modulus is 1024 bits, outside 2048..8192"},
      {"RSA modulus not base64url", rsa("\"n\":\"" + rsa_n + "=\",\"e\":\"" + rsa_e + "\""), "n is not base64url"},
      {"RSA without e", rsa("\"n\":\"" + rsa_n + "\""), "has no e"},
      {"RSA exponent even", rsa("\"n\":\"" + rsa_n + "\",\"e\":\"AQAA\""), "RSA exponent must be odd"},
      {"RSA exponent 1", rsa("\"n\":\"" + rsa_n + "\",\"e\":\"AQ\""), "RSA exponent must be odd, at least 3"},
      {"RSA exponent of 5 bytes", rsa("\"n\":\"" + rsa_n + "\",\"e\":\"AQAAAAE\""), "at most 32 bits"},
      {"RSA modulus even", rsa("\"n\":\"" + b64url(rsa_a().n.substr(0, 255) + "\x02") + "\",\"e\":\"" + rsa_e + "\""),
       "RSA key is not valid"},
      {"RSA private key", rsa("\"n\":\"" + rsa_n + "\",\"e\":\"" + rsa_e + "\",\"d\":\"AQAB\""),
       "holds private key material (d)"},
      {"RSA key marked ES256", jwks({rsa_a().jwk(",\"alg\":\"ES256\"")}), "alg ES256 on an RSA key"},
      {"EC point not on the curve",
       jwks({"{\"kty\":\"EC\",\"kid\":\"k\",\"crv\":\"P-256\",\"x\":\"" + b64url(ec256().x) + "\",\"y\":\"" +
             b64url(off_curve_y) + "\"}"}),
       "the EC point is not on the P-256 curve"},
      {"EC x too short",
       jwks({"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + b64url(ec256().x.substr(1)) + "\",\"y\":\"" +
             b64url(ec256().y) + "\"}"}),
       "x and y of a P-256 key must be 32 bytes each"},
      {"P-384 coordinates on P-256",
       jwks({"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + b64url(ec384().x) + "\",\"y\":\"" + b64url(ec384().y) +
             "\"}"}),
       "must be 32 bytes each"},
      {"EC key without y", jwks({"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + b64url(ec256().x) + "\"}"}),
       "has no y"},
      {"EC private key", jwks({ec256().jwk(",\"d\":\"AQAB\"")}), "holds private key material (d)"},
      {"EC key marked RS256", jwks({ec256().jwk(",\"alg\":\"RS256\"")}), "alg RS256 on a P-256 key"},
      {"key_ops not a list", jwks({ec256().jwk(",\"key_ops\":\"verify\"")}), "key_ops: expected a list"},
      {"too many keys", many, "more than the 64 accepted"},
      {"too large", "{\"keys\":[],\"pad\":\"" + std::string(PINNIPED_JWT_MAX_DOCUMENT_BYTES, 'a') + "\"}",
       "JWKS is larger than"},
      {"nested too deeply", std::string(100, '[') + std::string(100, ']'), "nests too deeply"},
  };
  for (const auto &row : rows) {
    INFO(row.name);
    auto [msg, cond] = thrown([&] { JsonWebKeySet::parse(row.doc); });
    INFO(msg);
    CHECK(contains(msg, row.reason));
    CHECK(cond.empty());  // a plain Error (400), not a setup error
  }
}

// ---------------------------------------------------------------------------
// Discovery and issuer URLs.

TEST_CASE("a discovery document is read when it names the issuer and https endpoints") {
  std::string doc = R"({"issuer":"https://idp.example.com","authorization_endpoint":"https://idp.example.com/auth",
    "token_endpoint":"https://idp.example.com/token","jwks_uri":"https://keys.example.com/jwks?v=2",
    "device_authorization_endpoint":"https://idp.example.com/device","userinfo_endpoint":"https://idp.example.com/me",
    "code_challenge_methods_supported":["plain","S256"],"id_token_signing_alg_values_supported":["RS256","ES256"],
    "response_types_supported":["code"]})";
  OidcDiscovery d = parse_oidc_discovery(doc, kIssuer);
  CHECK(d.issuer == kIssuer);
  CHECK(d.authorization_endpoint == "https://idp.example.com/auth");
  CHECK(d.token_endpoint == "https://idp.example.com/token");
  CHECK(d.jwks_uri == "https://keys.example.com/jwks?v=2");
  CHECK(d.device_authorization_endpoint == "https://idp.example.com/device");
  CHECK(d.userinfo_endpoint == "https://idp.example.com/me");
  CHECK(d.code_challenge_methods == std::vector<std::string>{"plain", "S256"});
  CHECK(d.id_token_algs == std::vector<std::string>{"RS256", "ES256"});
  // kube-apiserver's own service-account issuer publishes no endpoints but jwks_uri.
  CHECK(parse_oidc_discovery(R"({"issuer":"https://idp.example.com","jwks_uri":"https://idp.example.com/k"})", kIssuer)
            .token_endpoint.empty());
}

TEST_CASE("discovery documents that are refused, one row each") {
  auto doc = [](const std::string &more, const std::string &jwks_uri = "\"https://idp.example.com/keys\"") {
    return "{\"issuer\":\"https://idp.example.com\",\"jwks_uri\":" + jwks_uri + more + "}";
  };
  struct Row {
    const char *name;
    std::string doc;
    const char *condition;
    const char *reason;
  };
  std::vector<Row> rows = {
      {"not JSON", "<html>", "DiscoveryURLValid", "discovery document is not JSON"},
      {"an array", "[]", "DiscoveryURLValid", "is not a JSON object"},
      {"another issuer", R"({"issuer":"https://evil.example.com","jwks_uri":"https://idp.example.com/keys"})",
       "DiscoveryURLValid", "names issuer \"https://evil.example.com\", not \"https://idp.example.com\""},
      {"the issuer with a trailing slash", R"({"issuer":"https://idp.example.com/","jwks_uri":"https://x/k"})",
       "DiscoveryURLValid", "names issuer \"https://idp.example.com/\""},
      {"no issuer", R"({"jwks_uri":"https://idp.example.com/keys"})", "DiscoveryURLValid", "names issuer \"\""},
      {"issuer a number", R"({"issuer":1})", "DiscoveryURLValid", "has a bad field: issuer: expected a string"},
      {"no jwks_uri", R"({"issuer":"https://idp.example.com"})", "JWKSURLValid", "has no jwks_uri"},
      {"http jwks_uri", doc("", "\"http://idp.example.com/keys\""), "JWKSURLValid",
       "jwks_uri \"http://idp.example.com/keys\" is not an https:// URL"},
      {"jwks_uri without host", doc("", "\"https:///keys\""), "JWKSURLValid", "URL has no host"},
      {"jwks_uri with a fragment", doc("", "\"https://idp.example.com/keys#a\""), "JWKSURLValid", "has a fragment"},
      {"jwks_uri a list", doc("", "[\"https://idp.example.com/keys\"]"), "DiscoveryURLValid",
       "jwks_uri: expected a string"},
      {"http token_endpoint", doc(",\"token_endpoint\":\"http://idp.example.com/token\""), "DiscoveryURLValid",
       "token_endpoint \"http://idp.example.com/token\" is not an https:// URL"},
      {"http authorization_endpoint", doc(",\"authorization_endpoint\":\"http://idp.example.com/a\""),
       "DiscoveryURLValid", "authorization_endpoint"},
      {"device endpoint with a space", doc(",\"device_authorization_endpoint\":\"https://idp.example.com/a b\""),
       "DiscoveryURLValid", "contains a space"},
      {"code_challenge_methods_supported a string", doc(",\"code_challenge_methods_supported\":\"S256\""),
       "DiscoveryURLValid", "expected a list of strings"},
  };
  for (const auto &row : rows) {
    INFO(row.name);
    auto [msg, cond] = thrown([&] { parse_oidc_discovery(row.doc, kIssuer); });
    INFO(msg);
    CHECK(cond == row.condition);
    CHECK(contains(msg, row.reason));
  }
}

TEST_CASE("issuer URLs, one row each") {
  struct Row {
    std::string issuer;
    const char *problem;  // "" when valid
  };
  std::vector<Row> rows = {
      {"https://idp.example.com", ""},
      {"https://idp.example.com/", ""},
      {"https://idp.example.com:8443/realms/dev", ""},
      {"https://127.0.0.1:9443", ""},
      {"https://[fd00::1]:8443/oidc", ""},
      {"https://idp.example.com/.well-known/openid-configuration-not", ""},
      {"", "issuer is empty"},
      {"http://idp.example.com", "issuer is not an https:// URL"},
      {"idp.example.com", "issuer is not a valid URL: URL must start with https://"},
      {"https://idp.example.com?tenant=1", "issuer must not have a query"},
      {"https://idp.example.com/#x", "issuer has a fragment"},
      {"https://idp.example.com/.well-known/openid-configuration", "must not end in /.well-known/openid-configuration"},
      {"https://idp.example.com/x/.well-known/openid-configuration/", "must not end in /.well-known"},
      {"https://user:pw@idp.example.com", "URL must not carry user information"},
      {"https:///realms/dev", "URL has no host"},
      {"https://idp.example.com:99999", "URL has an invalid port"},
      {"https://idp example.com", "contains a space"},
      {"https://idp.example.com/\x01", "control character"},
      {"https://idp.ex\xc3\xa4mple.com", "non-ASCII byte"},
      {"https://idp.example.com/" + std::string(2048, 'a'), "longer than 2048 bytes"},
  };
  for (const auto &row : rows) {
    INFO("issuer " << row.issuer);
    std::string got = validate_issuer_url(row.issuer);
    if (*row.problem)
      CHECK(contains(got, row.problem));
    else
      CHECK(got == "");
  }
}

// ---------------------------------------------------------------------------
// The JWTAuthenticator against an https issuer.

TEST_CASE("the JwtAuthenticator constructor refuses a bad spec, naming the condition") {
  CapturedLog log;
  JwtAuthenticatorSpec good;
  good.issuer = kIssuer;
  good.audience = kAudience;
  struct Row {
    const char *name;
    std::function<void(JwtAuthenticatorSpec &)> change;
    const char *condition;
    const char *reason;
  };
  std::vector<Row> rows = {
      {"http issuer", [](JwtAuthenticatorSpec &s) { s.issuer = "http://idp"; }, "IssuerURLValid",
       "spec.issuer: issuer is not an https:// URL"},
      {"issuer with a query", [](JwtAuthenticatorSpec &s) { s.issuer += "?a=b"; }, "IssuerURLValid", "query"},
      {"no audience", [](JwtAuthenticatorSpec &s) { s.audience.clear(); }, "AuthenticatorValid",
       "spec.audience is required"},
      {"a CA that is not PEM", [](JwtAuthenticatorSpec &s) { s.ca_pem = "not a certificate"; }, "TLSConfigurationValid",
       "spec.tls.certificateAuthorityData"},
  };
  for (const auto &row : rows) {
    INFO(row.name);
    JwtAuthenticatorSpec s = good;
    row.change(s);
    auto [msg, cond] = thrown([&] { JwtAuthenticator a("idp", s, log.log); });
    INFO(msg);
    CHECK(cond == row.condition);
    CHECK(contains(msg, row.reason));
  }
  // Empty claim names fall back to upstream's defaults; nothing is fetched.
  good.username_claim = good.groups_claim = "";
  JwtAuthenticator a("idp", good, log.log);
  CHECK(a.spec().username_claim == "username");
  CHECK(a.spec().groups_claim == "groups");
  CHECK_FALSE(a.has_keys());
  CHECK(a.fetches() == 0);
  // It goes in the registry beside the webhooks.
  AuthenticatorRegistry registry;
  registry.put(std::make_shared<JwtAuthenticator>("idp", good, log.log));
  auto found = registry.find("JWTAuthenticator", "idp");
  REQUIRE(found);
  CHECK(std::string(found->kind()) == JwtAuthenticator::kKind);
  CHECK_FALSE(registry.find(AuthenticatorRegistry::webhook_kind, "idp"));
}

TEST_CASE("a JwtAuthenticator fetches discovery and keys, then authenticates tokens") {
  FakeIssuer idp;
  idp.set_jwks(jwks({rsa_a().jwk(), ec256().jwk()}));
  CapturedLog log;
  JwtAuthenticator a("my-oidc", idp.spec(), log.log, options(std::chrono::seconds(60)));
  a.fetch_keys(scaled(5000));
  REQUIRE(a.has_keys());
  CHECK(a.keys()->size() == 2);
  CHECK(idp.discovery_hits() == 1);
  CHECK(idp.jwks_hits() == 1);
  CHECK(a.fetches() == 1);

  std::string tok = token(ec256(), "ES256", idp.claims());
  AuthResult r = a.authenticate(tok, "10.0.0.7");
  INFO(r.reason);
  REQUIRE(r.authenticated);
  CHECK(r.user.username == "alice");
  CHECK(r.user.groups == std::vector<std::string>{"devs", "ops"});
  CHECK(r.reason_class.empty());

  auto c = idp.claims();
  c.erase("username");
  r = a.authenticate(token(rsa_a(), "RS256", c));
  CHECK_FALSE(r.authenticated);
  CHECK(r.reason_class == "invalid_user");
  c = idp.claims();
  c["aud"] = jv("someone-else");
  r = a.authenticate(token(rsa_a(), "RS256", c));
  CHECK_FALSE(r.authenticated);
  CHECK(r.reason_class == "rejected");
  CHECK(contains(r.reason, "does not name the audience"));
  CHECK(idp.jwks_hits() == 1);  // no kid was unknown: nothing fetched again
  CHECK_FALSE(contains(log.get(), tok));
  CHECK(contains(log.get(), "JWKS fetched"));
}

TEST_CASE("a rotated JWKS is fetched on an unknown kid; the old key stops working") {
  FakeIssuer idp;
  idp.set_jwks(jwks({rsa_a().jwk()}));
  CapturedLog log;
  Millis interval = scaled(300);
  JwtAuthenticator a("my-oidc", idp.spec(), log.log, options(interval));
  a.fetch_keys(scaled(5000));
  std::string old_tok = token(rsa_a(), "RS256", idp.claims()), new_tok = token(rsa_b(), "RS256", idp.claims());
  REQUIRE(a.authenticate(old_tok).authenticated);

  idp.set_jwks(jwks({rsa_b().jwk()}));
  std::this_thread::sleep_for(interval + Millis(50));
  AuthResult r = a.authenticate(new_tok);
  INFO(r.reason);
  CHECK(r.authenticated);
  CHECK(idp.jwks_hits() == 2);
  CHECK(a.keys()->has_kid("rsa-b"));
  CHECK_FALSE(a.keys()->has_kid("rsa-a"));

  // The old token's kid is gone now; within the interval no fetch is made.
  r = a.authenticate(old_tok);
  CHECK_FALSE(r.authenticated);
  CHECK(r.reason_class == "rejected");
  CHECK(contains(r.reason, "no key with kid \"rsa-a\""));
  // The interval as the code says it: "300ms", or "2.4s" when scaled past a second.
  std::string said =
      interval.count() < 1000 ? std::to_string(interval.count()) + "ms" : detail::describe_duration(interval);
  CHECK(contains(r.reason, "(not fetched again: the JWKS was fetched less than " + said + " ago)"));
  CHECK(idp.jwks_hits() == 2);
  // After it, one fetch, and the key is still gone.
  std::this_thread::sleep_for(interval + Millis(50));
  r = a.authenticate(old_tok);
  CHECK_FALSE(r.authenticated);
  CHECK(r.reason_class == "rejected");
  CHECK(idp.jwks_hits() == 3);
  CHECK(idp.discovery_hits() == 1);  // the jwks_uri is known: no second discovery
  CHECK(a.authenticate(new_tok).authenticated);
}

TEST_CASE("a flood of random kids makes one JWKS fetch, and the others fail at once") {
  FakeIssuer idp;
  CapturedLog log;
  Millis interval = scaled(3000);
  JwtAuthenticator a("my-oidc", idp.spec(), log.log, options(interval));
  a.fetch_keys(scaled(5000));
  REQUIRE(idp.jwks_hits() == 1);
  std::this_thread::sleep_for(interval + Millis(50));  // a refetch is allowed again
  idp.set_jwks_delay(Millis(300));                     // the one refetch is still running while the flood goes on

  std::vector<std::string> tokens;
  auto claims = picojson::value(idp.claims()).serialize();
  for (int i = 0; i < 200; i++) {
    std::string kid = b64url(detail::random_bytes(12));
    tokens.push_back(token_from(rsa_a(), "RS256", "{\"alg\":\"RS256\",\"kid\":\"" + kid + "\"}", claims));
  }
  std::atomic<int> in_progress{0}, too_soon{0}, rejected{0}, other{0};
  std::mutex mu;
  std::vector<double> fast_ms;
  auto start = Steady::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++)
    threads.emplace_back([&, t] {
      for (int i = t; i < 200; i += 8) {
        auto t0 = Steady::now();
        AuthResult r = a.authenticate(tokens[static_cast<size_t>(i)]);
        double ms = std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
        if (r.authenticated || r.reason_class != "rejected") other++;
        if (r.reason_class == "rejected") rejected++;
        if (contains(r.reason, "a JWKS fetch is in progress")) {
          in_progress++;
          std::lock_guard<std::mutex> lk(mu);
          fast_ms.push_back(ms);
        }
        if (contains(r.reason, "fetched less than")) too_soon++;
      }
    });
  for (auto &t : threads) t.join();
  double total_ms = std::chrono::duration<double, std::milli>(Steady::now() - start).count();
  CHECK(idp.jwks_hits() == 2);  // the first fetch and exactly one refetch
  CHECK(a.fetches() == 2);
  CHECK(rejected == 200);
  CHECK(other == 0);
  CHECK(in_progress + too_soon == 199);  // every caller but the one that fetched
  CHECK(in_progress > 0);
  // Those refused while the fetch ran did not wait for it.
  std::sort(fast_ms.begin(), fast_ms.end());
  if (!fast_ms.empty()) CHECK(fast_ms[fast_ms.size() / 2] < 100.0 * slow_factor());
  CHECK(total_ms < 3000.0 * slow_factor());
  CHECK(idp.discovery_hits() == 1);
}

TEST_CASE("an issuer that is down gives idp_error; keys fetched before keep working") {
  CapturedLog log;
  FakeIssuer gone;  // an issuer's address where nothing listens any more
  gone.stop();
  SECTION("never reached: no keys") {
    JwtAuthenticatorSpec s;
    s.issuer = gone.issuer();
    s.audience = kAudience;
    JwtAuthenticator a("down", s, log.log, options(std::chrono::seconds(60)));
    auto [msg, cond] = thrown([&] { a.fetch_keys(scaled(2000)); });
    CHECK(cond == "DiscoveryURLValid");
    CHECK(contains(msg, "cannot connect"));
    std::string tok = token(rsa_a(), "RS256");
    AuthResult r = a.authenticate(tok);
    CHECK_FALSE(r.authenticated);
    CHECK(r.reason_class == "idp_error");
    // fetch_keys just ran: the request path does not try again at once.
    CHECK(contains(r.reason, "authenticator has no keys yet (the JWKS was fetched less than"));
    CHECK(a.fetches() == 1);
  }
  SECTION("never reached, first try on the request path") {
    JwtAuthenticatorSpec s;
    s.issuer = gone.issuer();
    s.audience = kAudience;
    JwtAuthenticator a("down", s, log.log, options(std::chrono::seconds(60)));
    AuthResult r = a.authenticate(token(rsa_a(), "RS256"));
    CHECK_FALSE(r.authenticated);
    CHECK(r.reason_class == "idp_error");
    CHECK(contains(r.reason, "authenticator has no keys yet (GET \"https://127.0.0.1:"));
    CHECK(contains(r.reason, "cannot connect"));
    CHECK(contains(log.get(), "JWKS refetch failed"));
  }
  SECTION("gone after the first fetch") {
    FakeIssuer idp;
    Millis interval = scaled(200);
    JwtAuthenticator a("my-oidc", idp.spec(), log.log, options(interval));
    a.fetch_keys(scaled(5000));
    idp.stop();
    std::this_thread::sleep_for(interval + Millis(50));
    AuthResult r = a.authenticate(token(rsa_b(), "RS256", idp.claims()));
    CHECK_FALSE(r.authenticated);
    CHECK(r.reason_class == "idp_error");
    CHECK(contains(r.reason, "no key with kid \"rsa-b\" in the JWKS; fetching the JWKS again failed: GET"));
    r = a.authenticate(token(rsa_a(), "RS256", idp.claims()));
    INFO(r.reason);
    CHECK(r.authenticated);
  }
}

TEST_CASE("fetch_keys names the step that failed") {
  CapturedLog log;
  FakeIssuer idp;
  struct Row {
    const char *name;
    std::function<void(FakeIssuer &, JwtAuthenticatorSpec &)> setup;
    const char *condition;
    const char *reason;
  };
  std::vector<Row> rows = {
      {"discovery answers 404", [](FakeIssuer &, JwtAuthenticatorSpec &s) { s.issuer += "/nowhere"; },
       "DiscoveryURLValid", "/nowhere/.well-known/openid-configuration\" answered HTTP 404"},
      {"discovery names another issuer",
       [](FakeIssuer &i, JwtAuthenticatorSpec &) {
         i.set_discovery("{\"issuer\":\"https://other\",\"jwks_uri\":\"" + i.issuer() + "/jwks\"}");
       },
       "DiscoveryURLValid", "names issuer \"https://other\""},
      {"an http jwks_uri",
       [](FakeIssuer &i, JwtAuthenticatorSpec &) {
         i.set_discovery("{\"issuer\":\"" + i.issuer() + "\",\"jwks_uri\":\"http://127.0.0.1/jwks\"}");
       },
       "JWKSURLValid", "is not an https:// URL"},
      {"the JWKS answers 500", [](FakeIssuer &i, JwtAuthenticatorSpec &) { i.set_jwks("oops", 500); }, "JWKSFetchValid",
       "/jwks\" answered HTTP 500"},
      {"a JWKS without a usable key",
       [](FakeIssuer &i, JwtAuthenticatorSpec &) { i.set_jwks("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\"}]}"); },
       "JWKSFetchValid", "JWKS has no key usable"},
      {"another CA",
       [](FakeIssuer &, JwtAuthenticatorSpec &s) {
         s.ca_pem = make_self_signed_ca("other-ca", std::chrono::hours(1)).cert_pem;
       },
       "DiscoveryURLValid", "certificate verification failed"},
      {"a JWKS over the size limit",
       [](FakeIssuer &i, JwtAuthenticatorSpec &) { i.set_jwks(std::string(PINNIPED_JWT_MAX_DOCUMENT_BYTES + 1, ' ')); },
       "JWKSFetchValid", "is too large"},
  };
  for (const auto &row : rows) {
    INFO(row.name);
    idp.set_discovery("");
    idp.set_jwks(jwks({rsa_a().jwk()}));
    JwtAuthenticatorSpec s = idp.spec();
    row.setup(idp, s);
    JwtAuthenticator a("my-oidc", s, log.log);
    auto [msg, cond] = thrown([&] { a.fetch_keys(scaled(5000)); });
    INFO(msg);
    CHECK(cond == row.condition);
    CHECK(contains(msg, row.reason));
    CHECK_FALSE(a.has_keys());
  }
}
