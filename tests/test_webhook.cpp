// Section 4: TokenReview webhooks (WebhookAuthenticator) against a scripted
// FakeIdp, the authenticators file format, and the same failures seen
// through the real `pinniped concierge` binary.
#include <catch2/catch.hpp>
#include <set>

#include "tests/support.hpp"

using namespace pinniped;
using testing::eventually;
using testing::slow_factor;

namespace {

using Handler = testing::FakeIdp::Handler;

const std::string kToken = "s3cret-T0ken-4f9a2c";
const std::string kAuthVersion = "authentication.concierge.pinniped.dev/v1alpha1";

Millis scaled(int ms) { return Millis(ms * slow_factor()); }

double elapsed_ms(Steady::time_point since) {
  return std::chrono::duration<double, std::milli>(Steady::now() - since).count();
}

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

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

// Holds slow handlers until the test is done with them (declare it after
// the FakeIdp, so that it opens before the IDP waits for its handlers).
struct Gate {
  std::shared_ptr<std::atomic<bool>> open = std::make_shared<std::atomic<bool>>(false);
  ~Gate() { release(); }
  void release() const { *open = true; }
  Handler stall() const {
    auto o = open;
    return [o](const httplib::Request &, httplib::Response &res) {
      auto until = Steady::now() + std::chrono::seconds(30);
      while (!*o && Steady::now() < until) std::this_thread::sleep_for(Millis(5));
      res.status = 200;
      res.set_content("{}", "application/json");
    };
  }
};

// --- scripted IDP answers ---------------------------------------------------

std::string request_api_version(const httplib::Request &req) {
  try {
    return json::get_string(json::parse(req.body), "apiVersion", "apiVersion");
  } catch (const Error &) {
    return "";
  }
}

// A raw JSON TokenReview answer; `status` is the JSON of the status object.
Handler answer_status(const std::string &status_json) {
  return [status_json](const httplib::Request &req, httplib::Response &res) {
    res.status = 200;
    res.set_content(
        "{\"apiVersion\":\"" + request_api_version(req) + "\",\"kind\":\"TokenReview\",\"status\":" + status_json + "}",
        "application/json");
  };
}

Handler answer_http(int code, const std::string &body = "") {
  return [code, body](const httplib::Request &, httplib::Response &res) {
    res.status = code;
    res.set_content(body, "text/plain");
  };
}

Handler answer_body(const std::string &body) { return answer_http(200, body); }

std::string user_json(const std::string &username, const std::string &more = "") {
  return "{\"authenticated\":true,\"user\":{\"username\":\"" + username + "\",\"groups\":[\"devs\"]" + more + "}}";
}

WebhookAuthenticatorSpec spec_for(const testing::FakeIdp &idp, const std::string &version = "v1beta1") {
  WebhookAuthenticatorSpec s;
  s.endpoint = idp.url();
  s.certificate_authority_data = idp.ca_data();
  s.token_review_version = version;
  return s;
}

WebhookOptions quick_options(Millis timeout) {
  WebhookOptions o;
  o.timeout = timeout;
  o.attempts = 3;
  o.backoff = Millis(50);
  return o;
}

// Parses authenticators and builds each, as the concierge does on load.
std::vector<std::shared_ptr<WebhookAuthenticator>> load(const std::string &text,
                                                        const std::string &suffix = "pinniped.dev") {
  std::vector<std::shared_ptr<WebhookAuthenticator>> out;
  for (auto &o : parse_authenticators(text, suffix))
    out.push_back(std::make_shared<WebhookAuthenticator>(o.metadata.name, o.spec));
  return out;
}

std::string indent(const std::string &text, int n) {
  std::string pad(static_cast<size_t>(n), ' '), out = pad;
  for (size_t i = 0; i < text.size(); i++) {
    out += text[i];
    if (text[i] == '\n' && i + 1 < text.size()) out += pad;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Success.

TEST_CASE("a webhook authenticates a token with TokenReview v1beta1 and v1") {
  testing::FakeIdp idp;
  std::string version = GENERATE(as<std::string>{}, "v1beta1", "v1");
  INFO("tokenReviewVersion " << version);

  std::mutex mu;
  std::string seen_body, seen_content_type, seen_accept, seen_method, seen_path;
  idp.add_user(kToken, {"alice", "", {"zeta", "alpha", "system:authenticated", "mid"}, {}});
  idp.set_handler([&](const httplib::Request &req, httplib::Response &res) {
    {
      std::lock_guard<std::mutex> lk(mu);
      seen_body = req.body;
      seen_content_type = req.get_header_value("Content-Type");
      seen_accept = req.get_header_value("Accept");
      seen_method = req.method;
      seen_path = req.path;
    }
    idp.default_handler(req, res);
  });

  WebhookAuthenticator a("my-idp", spec_for(idp, version), quick_options(scaled(5000)));
  AuthResult r = a.authenticate(kToken);
  INFO(r.reason);
  REQUIRE(r.authenticated);
  CHECK(r.reason_class.empty());
  CHECK(r.user.username == "alice");
  CHECK(r.user.groups == std::vector<std::string>{"zeta", "alpha", "system:authenticated", "mid"});
  CHECK(idp.requests() == 1);

  std::lock_guard<std::mutex> lk(mu);
  CHECK(seen_method == "POST");
  CHECK(seen_path == "/authenticate");
  CHECK(seen_content_type == "application/json");
  CHECK(seen_accept == "application/json");
  auto sent = TokenReview::from_json(json::parse(seen_body));
  CHECK(sent.api_version == "authentication.k8s.io/" + version);
  CHECK(sent.token == kToken);
  CHECK(sent.audiences.empty());
}

TEST_CASE("a webhook that does not know the token rejects it") {
  testing::FakeIdp idp;
  idp.add_user("someone-else", {"bob", "", {}, {}});
  WebhookAuthenticator a("my-idp", spec_for(idp), quick_options(scaled(5000)));
  AuthResult r = a.authenticate(kToken);
  CHECK_FALSE(r.authenticated);
  CHECK(r.reason_class == "rejected");
  CHECK_FALSE(contains(r.reason, kToken));
}

TEST_CASE("a webhook authenticator reuses its connection and is safe across threads") {
  testing::FakeIdp idp;
  idp.add_user(kToken, {"alice", "", {"devs"}, {}});
  std::mutex mu;
  std::set<int> ports;
  idp.set_handler([&](const httplib::Request &req, httplib::Response &res) {
    {
      std::lock_guard<std::mutex> lk(mu);
      ports.insert(req.remote_port);
    }
    idp.default_handler(req, res);
  });
  WebhookAuthenticator a("my-idp", spec_for(idp), quick_options(scaled(5000)));

  for (int i = 0; i < 10; i++) REQUIRE(a.authenticate(kToken).authenticated);
  {
    std::lock_guard<std::mutex> lk(mu);
    CHECK(ports.size() == 1);
  }

  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; i++)
        if (a.authenticate(kToken).authenticated) ok++;
    });
  for (auto &t : threads) t.join();
  CHECK(ok == 40);
  std::lock_guard<std::mutex> lk(mu);
  CHECK(ports.size() <= 5);  // at most one more connection per concurrent caller
}

// ---------------------------------------------------------------------------
// Retries.

TEST_CASE("HTTP 5xx is retried up to `attempts` times") {
  testing::FakeIdp idp;
  idp.add_user(kToken, {"alice", "", {"devs"}, {}});

  SECTION("always 500: every attempt is used, then webhook_error") {
    idp.set_handler(answer_http(500, "boom"));
    WebhookAuthenticator a("my-idp", spec_for(idp), quick_options(scaled(5000)));
    AuthResult r = a.authenticate(kToken);
    CHECK_FALSE(r.authenticated);
    CHECK(r.reason_class == "webhook_error");
    CHECK(contains(r.reason, "500"));
    CHECK(idp.requests() == 3);
  }
  SECTION("500 then 200: the second attempt succeeds") {
    std::atomic<int> calls{0};
    idp.set_handler([&](const httplib::Request &req, httplib::Response &res) {
      if (calls++ == 0) return answer_http(500)(req, res);
      idp.default_handler(req, res);
    });
    WebhookAuthenticator a("my-idp", spec_for(idp), quick_options(scaled(5000)));
    AuthResult r = a.authenticate(kToken);
    INFO(r.reason);
    CHECK(r.authenticated);
    CHECK(r.user.username == "alice");
    CHECK(idp.requests() == 2);
  }
  SECTION("503 twice then 200 within three attempts") {
    std::atomic<int> calls{0};
    idp.set_handler([&](const httplib::Request &req, httplib::Response &res) {
      if (calls++ < 2) return answer_http(503)(req, res);
      idp.default_handler(req, res);
    });
    WebhookAuthenticator a("my-idp", spec_for(idp), quick_options(scaled(5000)));
    CHECK(a.authenticate(kToken).authenticated);
    CHECK(idp.requests() == 3);
  }
  SECTION("no backoff after the last attempt") {
    idp.set_handler(answer_http(500, "boom"));
    WebhookOptions o = quick_options(scaled(10000));
    o.attempts = 2;
    o.backoff = Millis(300);
    WebhookAuthenticator a("my-idp", spec_for(idp), o);
    auto t0 = Steady::now();
    CHECK(a.authenticate(kToken).reason_class == "webhook_error");
    auto took = std::chrono::duration_cast<Millis>(Steady::now() - t0);
    CHECK(idp.requests() == 2);
    // One pause of 300 ms between the two tries; a second one (600 ms)
    // after the last try would make it 900 ms.
    CHECK(took >= Millis(300));
    CHECK(took < Millis(600) + scaled(150));
  }
  SECTION("attempts = 1 means no retry") {
    idp.set_handler(answer_http(502));
    WebhookOptions o = quick_options(scaled(5000));
    o.attempts = 1;
    WebhookAuthenticator a("my-idp", spec_for(idp), o);
    CHECK(a.authenticate(kToken).reason_class == "webhook_error");
    CHECK(idp.requests() == 1);
  }
}

// ---------------------------------------------------------------------------
// Failures: each one fails closed, quickly, with a reason class.

TEST_CASE("every webhook failure gives authenticated=false with a reason class") {
  enum class Target { idp, nothing_listening, untrusted_ca };
  struct Row {
    std::string name;
    Handler handler;
    std::string reason_class;
    int requests;  // the IDP must see exactly this many; -1: not checked
    Target target;
  };
  Gate gate;
  const Millis timeout = scaled(1000);
  const std::string big(2 * 1024 * 1024, ' ');

  std::vector<Row> rows = {
      {"webhook down (nothing listening)", nullptr, "webhook_error", -1, Target::nothing_listening},
      {"slow past the timeout", gate.stall(), "webhook_error", 1, Target::idp},
      {"HTTP 500", answer_http(500), "webhook_error", 3, Target::idp},
      {"HTTP 401", answer_http(401), "webhook_error", 1, Target::idp},
      {"HTTP 404", answer_http(404), "webhook_error", 1, Target::idp},
      {"HTTP 302", answer_http(302), "webhook_error", 1, Target::idp},
      {"garbage body echoing the token", answer_body("<html>bad token " + kToken + "</html>"), "webhook_error", 1,
       Target::idp},
      {"empty body", answer_body(""), "webhook_error", 1, Target::idp},
      {"JSON that is not a TokenReview", answer_body("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"code\":200}"),
       "webhook_error", 1, Target::idp},
      {"JSON array", answer_body("[1,2,3]"), "webhook_error", 1, Target::idp},
      {"wrong apiVersion",
       answer_body("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"status\":" +
                   user_json("alice") + "}"),
       "webhook_error", 1, Target::idp},
      {"missing apiVersion", answer_body("{\"kind\":\"TokenReview\",\"status\":" + user_json("alice") + "}"),
       "webhook_error", 1, Target::idp},
      {"answer larger than the limit", answer_body(big), "webhook_error", -1, Target::idp},
      {"TLS server with a CA other than the configured one", nullptr, "webhook_error", 0, Target::untrusted_ca},
      {"authenticated:false with status.error echoing the token",
       answer_status("{\"authenticated\":false,\"error\":\"token " + kToken + " is unknown\"}"), "rejected", 1,
       Target::idp},
      {"authenticated:false without an error", answer_status("{\"authenticated\":false}"), "rejected", 1, Target::idp},
      {"no status at all", answer_body("{\"apiVersion\":\"authentication.k8s.io/v1beta1\",\"kind\":\"TokenReview\"}"),
       "rejected", 1, Target::idp},
      {"authenticated:\"true\" as a string", answer_status("{\"authenticated\":\"true\"}"), "webhook_error", 1,
       Target::idp},
      {"user that is not an object", answer_status("{\"authenticated\":true,\"user\":\"alice\"}"), "webhook_error", 1,
       Target::idp},
      {"groups that are not strings",
       answer_status("{\"authenticated\":true,\"user\":{\"username\":\"alice\","
                     "\"groups\":[1]}}"),
       "webhook_error", 1, Target::idp},
      {"authenticated:true without a user", answer_status("{\"authenticated\":true}"), "invalid_user", 1, Target::idp},
      {"empty username", answer_status(user_json("")), "invalid_user", 1, Target::idp},
      {"a uid", answer_status(user_json("alice", ",\"uid\":\"1234\"")), "invalid_user", 1, Target::idp},
      {"an extra map", answer_status(user_json("alice", ",\"extra\":{\"scopes\":[\"read\"]}")), "invalid_user", 1,
       Target::idp},
      {"invalid UTF-8 username", answer_status(user_json("al\xff\xfeice")), "invalid_user", 1, Target::idp},
      {"NUL in a group",
       answer_status("{\"authenticated\":true,\"user\":{\"username\":\"alice\",\"groups\":[\"devs\\u0000admins\"]}}"),
       "invalid_user", 1, Target::idp},
  };

  for (const auto &row : rows) {
    SECTION(row.name) {
      testing::FakeIdp idp;
      struct ReleaseOnExit {
        const Gate &g;
        ~ReleaseOnExit() { g.release(); }
      } release_before_idp_stops{gate};
      idp.add_user(kToken, {"alice", "", {"devs"}, {}});
      if (row.handler) idp.set_handler(row.handler);
      WebhookAuthenticatorSpec spec = spec_for(idp);
      if (row.target == Target::nothing_listening)
        spec.endpoint = "https://127.0.0.1:" + std::to_string(closed_port()) + "/authenticate";
      if (row.target == Target::untrusted_ca)
        spec.certificate_authority_data =
            detail::base64_encode(make_self_signed_ca("not-the-idp-ca", std::chrono::hours(1)).cert_pem);
      WebhookAuthenticator a("my-idp", spec, quick_options(timeout));

      auto started = Steady::now();
      AuthResult r = a.authenticate(kToken);
      double ms = elapsed_ms(started);
      INFO("reason: " << r.reason << " (" << ms << " ms)");
      CHECK_FALSE(r.authenticated);
      CHECK(r.reason_class == row.reason_class);
      CHECK_FALSE(r.reason.empty());
      CHECK_FALSE(contains(r.reason, kToken));
      CHECK(r.user.username.empty());
      CHECK(ms < timeout.count() + 1000.0 * slow_factor());
      if (row.requests >= 0) CHECK(idp.requests() == row.requests);
      if (row.target == Target::untrusted_ca) CHECK(contains(r.reason, "verification failed"));
      if (row.handler && row.target == Target::idp && row.requests == 1 && row.name.find("slow") == std::string::npos)
        CHECK(ms < 1000.0 * slow_factor());  // no retry, no waiting
    }
  }
}

TEST_CASE("a spec.timeout overrides the authenticator-wide timeout") {
  testing::FakeIdp idp;
  Gate gate;
  idp.set_handler(gate.stall());
  WebhookAuthenticatorSpec spec = spec_for(idp);
  spec.timeout = Millis(500 * slow_factor());
  WebhookAuthenticator a("my-idp", spec, quick_options(std::chrono::seconds(30)));
  auto started = Steady::now();
  AuthResult r = a.authenticate(kToken);
  double ms = elapsed_ms(started);
  CHECK_FALSE(r.authenticated);
  CHECK(r.reason_class == "webhook_error");
  CHECK(ms < 500.0 * slow_factor() + 1000.0 * slow_factor());
}

TEST_CASE("the WebhookAuthenticator constructor refuses a bad spec") {
  auto refuses = [](WebhookAuthenticatorSpec s, const std::string &message) {
    INFO(s.endpoint << " " << message);
    try {
      WebhookAuthenticator a("x", s);
      FAIL_CHECK("accepted");
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(contains(e.what(), message));
    }
  };
  WebhookAuthenticatorSpec s;
  s.endpoint = "http://127.0.0.1:8080/authenticate";
  refuses(s, "https://");
  s.endpoint = "127.0.0.1:8443/authenticate";
  refuses(s, "https://");
  s.endpoint = "https://127.0.0.1:8443/authenticate";
  s.token_review_version = "v2";
  refuses(s, "tokenReviewVersion");
  s.token_review_version = "v1";
  s.certificate_authority_data = "%%% not base64 %%%";
  refuses(s, "base64");
  s.certificate_authority_data = detail::base64_encode("just some text, not a certificate");
  refuses(s, "certificateAuthorityData");
}

// ---------------------------------------------------------------------------
// The authenticators file.

namespace {

std::string authenticator_doc(const std::string &name,
                              const std::string &endpoint = "https://127.0.0.1:8443/authenticate",
                              const std::string &extra_spec = "") {
  return "apiVersion: " + kAuthVersion + "\nkind: WebhookAuthenticator\nmetadata:\n  name: " + name +
         "\nspec:\n  endpoint: " + endpoint + "\n" + extra_spec;
}

}  // namespace

TEST_CASE("parse_authenticators reads YAML and JSON in several shapes") {
  auto ca = make_self_signed_ca("idp-ca", std::chrono::hours(1));
  std::string ca_data = detail::base64_encode(ca.cert_pem);

  SECTION("a single YAML document with every field") {
    auto objs = parse_authenticators(authenticator_doc("one", "https://idp.example:8443/authenticate?x=1",
                                                       "  tls:\n    certificateAuthorityData: " + ca_data +
                                                           "\n  tokenReviewVersion: v1\n  timeout: 2500ms\n"),
                                     "pinniped.dev");
    REQUIRE(objs.size() == 1);
    CHECK(objs[0].metadata.name == "one");
    CHECK(objs[0].spec.endpoint == "https://idp.example:8443/authenticate?x=1");
    CHECK(objs[0].spec.certificate_authority_data == ca_data);
    CHECK(objs[0].spec.token_review_version == "v1");
    REQUIRE(objs[0].spec.timeout);
    CHECK(objs[0].spec.timeout->count() == 2500);
    WebhookAuthenticator a(objs[0].metadata.name, objs[0].spec);
    CHECK(a.name() == "one");
  }
  SECTION("a multi-document stream, in order, empty documents skipped") {
    std::string text =
        "# authenticators\n---\n" + authenticator_doc("first") + "---\n---\n" + authenticator_doc("second") + "...\n";
    auto list = load(text);
    REQUIRE(list.size() == 2);
    CHECK(list[0]->name() == "first");
    CHECK(list[1]->name() == "second");
    CHECK(list[0]->spec().token_review_version == "v1beta1");
    CHECK_FALSE(list[0]->spec().timeout);
  }
  SECTION("a List with items (and a WebhookAuthenticatorList)") {
    for (std::string kind : {"List", "WebhookAuthenticatorList"}) {
      std::string text = "apiVersion: v1\nkind: " + kind + "\nitems:\n- " +
                         indent(authenticator_doc("a"), 2).substr(2) + "- " +
                         indent(authenticator_doc("b"), 2).substr(2);
      INFO(text);
      auto list = load(text);
      REQUIRE(list.size() == 2);
      CHECK(list[0]->name() == "a");
      CHECK(list[1]->name() == "b");
    }
  }
  SECTION("JSON, one object and a List") {
    std::string one = "{\"apiVersion\":\"" + kAuthVersion +
                      "\",\"kind\":\"WebhookAuthenticator\",\"metadata\":{\"name\":\"json-idp\"},"
                      "\"spec\":{\"endpoint\":\"https://127.0.0.1:8443/authenticate\",\"tls\":"
                      "{\"certificateAuthorityData\":\"" +
                      ca_data + "\"}}}";
    auto list = load(one);
    REQUIRE(list.size() == 1);
    CHECK(list[0]->name() == "json-idp");
    CHECK(list[0]->spec().certificate_authority_data == ca_data);

    list = load("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[" + one + "]}");
    REQUIRE(list.size() == 1);
    CHECK(list[0]->name() == "json-idp");
  }
  SECTION("an empty file has no authenticators") {
    CHECK(parse_authenticators("", "pinniped.dev").empty());
    CHECK(parse_authenticators("# nothing here\n", "pinniped.dev").empty());
  }
  SECTION("another API group suffix") {
    std::string doc =
        "apiVersion: authentication.concierge.example.org/v1alpha1\nkind: WebhookAuthenticator\n"
        "metadata:\n  name: x\nspec:\n  endpoint: https://127.0.0.1:8443/\n";
    CHECK(load(doc, "example.org").size() == 1);
    CHECK_THROWS_AS(load(doc, "pinniped.dev"), Error);
    CHECK_THROWS_AS(load(authenticator_doc("x"), "example.org"), Error);
  }
}

TEST_CASE("parse_authenticators refuses bad input with Error 400 naming the problem") {
  struct Row {
    std::string name, text, message;
  };
  std::string good_ca = detail::base64_encode(make_self_signed_ca("idp-ca", std::chrono::hours(1)).cert_pem);
  std::vector<Row> rows = {
      {"missing name",
       "apiVersion: " + kAuthVersion + "\nkind: WebhookAuthenticator\nmetadata: {}\nspec:\n  endpoint: https://a/\n",
       "metadata.name"},
      {"missing metadata",
       "apiVersion: " + kAuthVersion + "\nkind: WebhookAuthenticator\nspec:\n  endpoint: https://a/\n",
       "metadata.name"},
      {"missing endpoint",
       "apiVersion: " + kAuthVersion + "\nkind: WebhookAuthenticator\nmetadata:\n  name: x\nspec: {}\n",
       "spec.endpoint"},
      {"http:// endpoint", authenticator_doc("x", "http://127.0.0.1:8080/authenticate"), "https://"},
      {"endpoint with user information", authenticator_doc("x", "https://user:pw@127.0.0.1/"), "user information"},
      {"duplicate names", authenticator_doc("twin") + "---\n" + authenticator_doc("twin"), "duplicate name \"twin\""},
      {"wrong kind", authenticator_doc("x") + "---\napiVersion: " + kAuthVersion + "\nkind: JWTAuthenticator\n",
       "JWTAuthenticator"},
      {"missing kind", "apiVersion: " + kAuthVersion + "\nmetadata:\n  name: x\n", "kind"},
      {"wrong apiVersion",
       "apiVersion: authentication.concierge.pinniped.dev/v1beta1\nkind: WebhookAuthenticator\nmetadata:\n  name: x\n"
       "spec:\n  endpoint: https://a/\n",
       "apiVersion"},
      {"billion laughs (aliases)",
       "a: &a [\"lol\", \"lol\", \"lol\"]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\nd: [*c, *c, *c]\n", "alias"},
      {"anchor and merge key",
       "base: &base\n  endpoint: https://a/\nx:\n  apiVersion: " + kAuthVersion + "\n  spec:\n    <<: *base\n",
       "alias"},
      {"alias inside an authenticator", authenticator_doc("x", "&e https://a/") + "  tokenReviewVersion: *e\n",
       "alias"},
      {"CA data that is not base64",
       authenticator_doc("x", "https://a/", "  tls:\n    certificateAuthorityData: '%%% nope %%%'\n"), "base64"},
      {"CA data that is not a certificate",
       authenticator_doc("x", "https://a/",
                         "  tls:\n    certificateAuthorityData: " + detail::base64_encode("hello, not a cert") + "\n"),
       "certificateAuthorityData"},
      {"CA bundle with one broken certificate",
       authenticator_doc("x", "https://a/",
                         "  tls:\n    certificateAuthorityData: " +
                             detail::base64_encode(detail::base64_decode(good_ca).value() +
                                                   "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") +
                             "\n"),
       "certificateAuthorityData"},
      {"unknown tokenReviewVersion", authenticator_doc("x", "https://a/", "  tokenReviewVersion: v2\n"),
       "tokenReviewVersion"},
      {"timeout that is not a duration", authenticator_doc("x", "https://a/", "  timeout: soon\n"), "spec.timeout"},
      {"name that is not a string",
       "apiVersion: " + kAuthVersion + "\nkind: WebhookAuthenticator\nmetadata:\n  name: [a, b]\n", "metadata.name"},
      {"document that is not an object", "- a\n- b\n", "object"},
      {"items that are not a list", "apiVersion: v1\nkind: List\nitems: 3\n", "items"},
      {"malformed YAML, with its line",
       "apiVersion: " + kAuthVersion + "\nkind: WebhookAuthenticator\nmetadata:\n  name: a: b\n", "line 4"},
      {"unterminated flow sequence", "apiVersion: v1\nkind: List\nitems: [\n", "line"},
      {"malformed JSON", "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [}", "YAML"},
  };
  for (const auto &row : rows) {
    SECTION(row.name) {
      INFO(row.text);
      try {
        load(row.text);
        FAIL_CHECK("accepted");
      } catch (const Error &e) {
        INFO(e.what());
        CHECK(e.code == 400);
        CHECK(contains(e.what(), row.message));
      }
    }
  }
}

TEST_CASE("the YAML reader refuses absurd nesting") {
  std::string deep(200, '[');
  CHECK_THROWS_AS(parse_yaml_documents(deep + std::string(200, ']')), Error);
  std::string nested;
  for (int i = 0; i < 100; i++) nested += std::string(static_cast<size_t>(i) * 2, ' ') + "k:\n";
  CHECK_THROWS_AS(parse_yaml_documents(nested), Error);
}

// ---------------------------------------------------------------------------
// Through the real binary.

namespace {

// The TokenCredentialRequest answer for `token` at authenticator `name`.
struct Exchange {
  int status = 0;
  std::string body;
  TokenCredentialRequest tcr;
  double ms = 0;
};

Exchange exchange(const testing::ConciergeProcess &c, const std::string &token, const std::string &name) {
  Exchange e;
  auto started = Steady::now();
  auto res = c.request("POST", testing::kTcrPath, testing::tcr_body(token, name));
  e.ms = elapsed_ms(started);
  e.status = res.status;
  e.body = res.body;
  if (res.status == 201) e.tcr = TokenCredentialRequest::from_json(json::parse(res.body));
  return e;
}

bool gets_certificate(const testing::ConciergeProcess &c, const std::string &token, const std::string &name) {
  Exchange e = exchange(c, token, name);
  return e.status == 201 && e.tcr.credential &&
         contains(e.tcr.credential->client_certificate_data, "BEGIN CERTIFICATE");
}

size_t count(const std::string &haystack, const std::string &needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) n++;
  return n;
}

}  // namespace

TEST_CASE("concierge: webhook failures answer 'authentication failed' in bounded time and serving goes on") {
  testing::TempDir dir;
  testing::FakeIdp idp;
  Gate gate;
  idp.add_user(kToken, {"alice", "", {"devs"}, {}});
  idp.set_handler([&idp, stall = gate.stall()](const httplib::Request &req, httplib::Response &res) {
    if (req.path == "/slow") return stall(req, res);
    if (req.path == "/500") return answer_http(500)(req, res);
    if (req.path == "/garbage") return answer_body("<html>" + kToken + "</html>")(req, res);
    if (req.path == "/wrong-version")
      return answer_body("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"status\":" +
                         user_json("alice") + "}")(req, res);
    idp.default_handler(req, res);
  });
  std::string base = "https://127.0.0.1:" + std::to_string(idp.port());
  std::string other_ca = detail::base64_encode(make_self_signed_ca("other", std::chrono::hours(1)).cert_pem);
  std::string yaml =
      testing::authenticator_yaml("good", base + "/authenticate", idp.ca_data()) + "---\n" +
      testing::authenticator_yaml("down", "https://127.0.0.1:" + std::to_string(closed_port()) + "/", idp.ca_data()) +
      "---\n" + testing::authenticator_yaml("slow", base + "/slow", idp.ca_data()) + "---\n" +
      testing::authenticator_yaml("err500", base + "/500", idp.ca_data()) + "---\n" +
      testing::authenticator_yaml("garbage", base + "/garbage", idp.ca_data()) + "---\n" +
      testing::authenticator_yaml("wrong-version", base + "/wrong-version", idp.ca_data()) + "---\n" +
      testing::authenticator_yaml("bad-tls", base + "/authenticate", other_ca);
  dir.write("auth.yaml", yaml);
  auto signer = testing::openssl_signer(dir, "signer", "ec", "/CN=k3s-client-ca");
  testing::ConciergeProcess c(dir, {"--signer-cert", signer.cert_file, "--signer-key", signer.key_file,
                                    "--authenticators", dir.file("auth.yaml"), "--webhook-timeout", "1s"});
  REQUIRE(gets_certificate(c, kToken, "good"));

  for (std::string name : {"down", "slow", "err500", "garbage", "wrong-version", "bad-tls", "no-such-idp"}) {
    INFO("authenticator " << name);
    Exchange e = exchange(c, kToken, name);
    INFO(e.body << " (" << e.ms << " ms)");
    CHECK(e.status == 201);
    CHECK(e.tcr.message == "authentication failed");
    CHECK_FALSE(e.tcr.credential);
    CHECK_FALSE(contains(e.body, kToken));
    CHECK(e.ms < 1000.0 + 2000.0 * slow_factor());
    CHECK(gets_certificate(c, kToken, "good"));
  }
  CHECK(c.process().running());
  std::string log = c.log();
  CHECK(count(log, "\"outcome\":\"failed\"") == 7);
  CHECK_FALSE(contains(log, kToken));
}

TEST_CASE("concierge: the authenticators file is reloaded while running") {
  testing::TempDir dir;
  testing::FakeIdp idp;
  idp.add_user(kToken, {"alice", "", {"devs"}, {}});
  auto signer = testing::openssl_signer(dir, "signer", "ec", "/CN=k3s-client-ca");
  dir.write("auth.yaml", testing::authenticator_yaml("idp-a", idp.url(), idp.ca_data()));
  testing::ConciergeProcess c(dir, {"--signer-cert", signer.cert_file, "--signer-key", signer.key_file,
                                    "--authenticators", dir.file("auth.yaml"), "--reload-interval", "200ms"});
  REQUIRE(gets_certificate(c, kToken, "idp-a"));
  CHECK_FALSE(gets_certificate(c, kToken, "idp-b"));

  // Rename idp-a to idp-b.
  dir.write("auth.yaml", testing::authenticator_yaml("idp-b", idp.url(), idp.ca_data()));
  CHECK(eventually([&] { return gets_certificate(c, kToken, "idp-b"); }, scaled(5000)));
  Exchange gone = exchange(c, kToken, "idp-a");
  CHECK(gone.status == 201);
  CHECK(gone.tcr.message == "authentication failed");

  // Broken rewrites keep the previous set: bad YAML, then a bad authenticator.
  const std::string kept = "authenticators not reloaded";
  dir.write("auth.yaml", "kind: [unclosed\n");
  CHECK(eventually([&] { return count(c.log(), kept) >= 1; }, scaled(5000)));
  CHECK(gets_certificate(c, kToken, "idp-b"));

  dir.write("auth.yaml", testing::authenticator_yaml("idp-c", "http://127.0.0.1:1/", ""));
  CHECK(eventually([&] { return count(c.log(), kept) >= 2; }, scaled(5000)));
  CHECK(gets_certificate(c, kToken, "idp-b"));
  CHECK_FALSE(gets_certificate(c, kToken, "idp-c"));

  // A good rewrite after the broken ones is taken again.
  dir.write("auth.yaml", testing::authenticator_yaml("idp-a", idp.url(), idp.ca_data()) + "---\n" +
                             testing::authenticator_yaml("idp-b", idp.url(), idp.ca_data()));
  CHECK(eventually([&] { return gets_certificate(c, kToken, "idp-a"); }, scaled(5000)));
  CHECK(gets_certificate(c, kToken, "idp-b"));
  CHECK(c.process().running());
}
