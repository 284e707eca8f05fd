// The client side: `pinniped login static` (the kubectl exec plugin), its
// credential cache, `pinniped get kubeconfig`, `pinniped whoami`, and real
// kubectl binaries logging in through the plugin against a TLS server on
// 127.0.0.1 that plays kube-apiserver (no cluster needed).
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include "tests/support.hpp"

using namespace testing;

namespace {

std::string pin() { return shell_quote(pinniped_bin()); }

// kube-apiserver as far as kubectl and our client need it: discovery, a
// namespace list that records the verified client certificate's CN, the
// aggregated TokenCredentialRequest (answered with certificates from a
// Signer), WhoAmIRequest, and the concierge's objects for get kubeconfig.
class FakeApiServer {
 public:
  FakeApiServer() {
    signer_ca_ = make_self_signed_ca("fake-cluster-signer", std::chrono::hours(24));
    signer_ = Signer::from_pem(signer_ca_.cert_pem, signer_ca_.key_pem);
    serving_ca_ = make_self_signed_ca("fake-apiserver-ca", std::chrono::hours(24));
    auto leaf = serving_cert(serving_ca_, {"127.0.0.1"});
    TlsServerOptions o;
    o.threads = 8;
    o.idle_timeout = std::chrono::seconds(5);
    server_ = std::make_unique<TlsServer>(o);
    server_->set_credentials({leaf.cert_pem, leaf.key_pem, signer_ca_.cert_pem});
    auto json = [](httplib::Response &res, int status, const std::string &body) {
      res.status = status;
      res.set_content(body, "application/json");
    };
    server_->Get("/version", [=](const httplib::Request &, httplib::Response &res) {
      json(res, 200, R"({"major":"1","minor":"32","gitVersion":"v1.32.0","platform":"linux/amd64"})");
    });
    server_->Get("/api", [=](const httplib::Request &, httplib::Response &res) {
      json(
          res, 200,
          R"({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":")" +
              std::string("127.0.0.1:") + std::to_string(port_) + "\"}]}");
    });
    server_->Get("/apis", [=](const httplib::Request &, httplib::Response &res) {
      json(res, 200, R"({"kind":"APIGroupList","apiVersion":"v1","groups":[]})");
    });
    server_->Get("/api/v1", [=](const httplib::Request &, httplib::Response &res) {
      json(
          res, 200,
          R"({"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"namespaces","singularName":"namespace","namespaced":false,"kind":"Namespace","verbs":["get","list"]}]})");
    });
    server_->Get("/api/v1/namespaces", [=](const httplib::Request &, httplib::Response &res) {
      const auto &peer = TlsServer::peer();
      {
        std::lock_guard<std::mutex> lk(mu_);
        seen_.push_back(peer.verified ? peer.common_name : "");
      }
      if (!peer.verified)
        return json(res, 401, Status::from_error(Error(401, "Unauthorized", "Unauthorized")).to_json().serialize());
      json(
          res, 200,
          R"({"kind":"NamespaceList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"default","creationTimestamp":"2026-01-01T00:00:00Z"},"status":{"phase":"Active"}}]})");
    });
    server_->Post(kTcrPath, [=](const httplib::Request &req, httplib::Response &res) {
      exchanges_++;
      TokenCredentialRequest in;
      try {
        in = TokenCredentialRequest::from_json(json::parse(req.body));
      } catch (const Error &e) {
        return json(res, 400, Status::from_error(e).to_json().serialize());
      }
      TokenCredentialRequest out;
      out.api_version = in.api_version;
      std::optional<UserInfo> u;
      {
        std::lock_guard<std::mutex> lk(mu_);
        auto it = users_.find(in.token);
        if (it != users_.end() && in.authenticator.name == authenticator_) u = it->second;
      }
      if (u) {
        auto c = signer_->issue(u->username, u->groups, ttl_, ClientKey::generate());
        out.credential = ClusterCredential{format_rfc3339(c.not_after), "", c.cert_pem, c.key_pem};
      } else {
        out.message = "authentication failed";
      }
      json(res, 201, out.to_json(false).serialize());
    });
    server_->Post("/apis/identity.concierge.pinniped.dev/v1alpha1/whoamirequests",
                  [=](const httplib::Request &, httplib::Response &res) {
                    const auto &peer = TlsServer::peer();
                    UserInfo u = peer.verified ? UserInfo{peer.common_name, "", peer.organizations, {}}
                                               : UserInfo{"system:anonymous", "", {"system:unauthenticated"}, {}};
                    if (peer.verified) u.groups.push_back("system:authenticated");
                    picojson::object o, st, ki;
                    ki["user"] = u.to_json();
                    st["kubernetesUserInfo"] = picojson::value(ki);
                    o["apiVersion"] = jv("identity.concierge.pinniped.dev/v1alpha1");
                    o["kind"] = jv("WhoAmIRequest");
                    o["status"] = picojson::value(st);
                    json(res, 201, picojson::value(o).serialize());
                  });
    server_->Get("/apis/authentication.concierge.pinniped.dev/v1alpha1/webhookauthenticators",
                 [=](const httplib::Request &, httplib::Response &res) {
                   if (!TlsServer::peer().verified) return json(res, 401, "{}");
                   picojson::array items;
                   std::lock_guard<std::mutex> lk(mu_);
                   for (const auto &n : authenticators_) {
                     picojson::object m, i;
                     m["name"] = jv(n);
                     i["metadata"] = picojson::value(m);
                     items.push_back(picojson::value(i));
                   }
                   picojson::object l;
                   l["kind"] = jv("WebhookAuthenticatorList");
                   l["items"] = picojson::value(items);
                   json(res, 200, picojson::value(l).serialize());
                 });
    server_->Get("/apis/config.concierge.pinniped.dev/v1alpha1/credentialissuers", [=](const httplib::Request &,
                                                                                       httplib::Response &res) {
      if (!TlsServer::peer().verified) return json(res, 401, "{}");
      json(
          res, 200,
          R"({"kind":"CredentialIssuerList","items":[{"metadata":{"name":"pinniped-concierge-config"},"status":{"strategies":[{"type":"KubeClusterSigningCertificate","status":"Success","frontend":{"type":"TokenCredentialRequestAPI","tokenCredentialRequestInfo":{"server":")" +
              published_server() + R"(","certificateAuthorityData":")" + published_ca_data() + R"("}}}]}}]})");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(Millis(1));
  }
  ~FakeApiServer() {
    server_->shutdown();
    thread_.join();
  }
  void add_user(const std::string &token, UserInfo u) {
    std::lock_guard<std::mutex> lk(mu_);
    users_[token] = std::move(u);
  }
  void set_authenticators(std::vector<std::string> names) {
    std::lock_guard<std::mutex> lk(mu_);
    authenticators_ = std::move(names);
  }
  void set_ttl(Millis ttl) { ttl_ = ttl; }
  std::string base() const { return "https://127.0.0.1:" + std::to_string(port_); }
  // What the CredentialIssuer publishes: by default this server and its CA.
  void publish(const std::string &server, const std::string &ca_pem) {
    std::lock_guard<std::mutex> lk(mu_);
    published_ = {server, ca_pem};
  }
  std::string published_server() const {
    std::lock_guard<std::mutex> lk(mu_);
    return published_.first.empty() ? base() : published_.first;
  }
  std::string published_ca_data() const {
    std::lock_guard<std::mutex> lk(mu_);
    return detail::base64_encode(published_.second.empty() ? serving_ca_.cert_pem : published_.second);
  }
  const std::string &ca_pem() const { return serving_ca_.cert_pem; }
  int exchanges() const { return exchanges_.load(); }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> lk(mu_);
    return seen_;
  }
  // An admin kubeconfig (client certificate from the signer).
  std::string admin_kubeconfig(const TempDir &dir) const {
    auto admin = client_cert(signer_ca_, "admin", {"system:masters"});
    return dir.write(
        "admin.kubeconfig",
        "apiVersion: v1\nkind: Config\ncurrent-context: admin\nclusters:\n- name: fake\n  cluster:\n"
        "    server: " +
            base() + "\n    certificate-authority-data: " + detail::base64_encode(serving_ca_.cert_pem) +
            "\nusers:\n- name: admin\n  user:\n    client-certificate-data: " + detail::base64_encode(admin.cert_pem) +
            "\n    client-key-data: " + detail::base64_encode(admin.key_pem) +
            "\ncontexts:\n- name: admin\n  context: {cluster: fake, user: admin}\n");
  }

 private:
  CertificateAndKey signer_ca_, serving_ca_;
  std::pair<std::string, std::string> published_;
  std::shared_ptr<const Signer> signer_;
  std::unique_ptr<TlsServer> server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::map<std::string, UserInfo> users_;
  std::vector<std::string> authenticators_{"my-idp"};
  std::string authenticator_ = "my-idp";
  std::vector<std::string> seen_;
  std::atomic<int> exchanges_{0};
  Millis ttl_ = std::chrono::minutes(5);
};

std::string exec_info(const std::string &version, const std::string &server = "", const std::string &ca_pem = "") {
  std::string s = R"({"apiVersion":")" + version + R"(","kind":"ExecCredential","spec":{"interactive":false)";
  if (!server.empty())
    s += R"(,"cluster":{"server":")" + server + R"(","certificate-authority-data":")" + detail::base64_encode(ca_pem) +
         R"("})";
  return s + "}}";
}

// `pinniped login static` against `api` with the given extra flags and env.
std::string login_cmd(const FakeApiServer &api, const TempDir &dir, const std::string &flags) {
  return "XDG_CONFIG_HOME=" + shell_quote(dir.file("config")) + " " + pin() +
         " login static --concierge-authenticator-name my-idp --concierge-endpoint " + api.base() +
         " --concierge-ca-bundle-data " + detail::base64_encode(api.ca_pem()) + " " + flags;
}

ClusterCredential cred_expiring_in(std::chrono::seconds s) {
  return {format_rfc3339(Clock::now() + s), "", "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
          "-----BEGIN PRIVATE KEY-----\ny\n-----END PRIVATE KEY-----\n"};
}

mode_t mode_of(const std::string &p) {
  struct stat st;
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("login static flags: upstream names parse, and each mistake is a usage error naming it") {
  auto env = [](const std::string &n) -> std::optional<std::string> {
    if (n == "MY_TOKEN") return std::string("tok-from-env");
    return std::nullopt;
  };
  auto o = StaticLoginOptions::from_args(
      {"--enable-concierge", "--concierge-authenticator-type=webhook", "--concierge-authenticator-name", "my-idp",
       "--concierge-endpoint=https://10.0.0.1:6443", "--concierge-ca-bundle-data",
       detail::base64_encode("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"),
       "--concierge-api-group-suffix", "example.org", "--credential-cache=", "--token-env", "MY_TOKEN"},
      env);
  CHECK(o.token == "tok-from-env");
  CHECK(o.authenticator_name == "my-idp");
  CHECK(o.endpoint == "https://10.0.0.1:6443");
  CHECK(o.ca_pem.find("BEGIN CERTIFICATE") != std::string::npos);
  CHECK(o.api_group_suffix == "example.org");
  REQUIRE(o.credential_cache);
  CHECK(o.credential_cache->empty());
  // to_args reproduces the options.
  auto args = o.to_args();
  REQUIRE(args.size() > 2);
  auto again = StaticLoginOptions::from_args(std::vector<std::string>(args.begin() + 2, args.end()), env);
  CHECK(again.to_args() == args);

  struct Row {
    std::vector<std::string> args;
    std::string says;
  };
  std::vector<Row> rows = {
      {{}, "one of --token or --token-env is required"},
      {{"--token"}, "needs a value"},
      {{"--token", "secret-1", "--bogus"}, "unknown flag --bogus"},
      {{"secret-1"}, "unexpected argument"},
      {{"--token-env", "NOPE", "--concierge-authenticator-name", "x"}, "NOPE is not set"},
      {{"--token", "secret-1", "--token-env", "MY_TOKEN", "--concierge-authenticator-name", "x"}, "not both"},
      {{"--token", "secret-1"}, "--concierge-authenticator-name is required"},
      {{"--token", "secret-1", "--concierge-authenticator-name", "x", "--concierge-authenticator-type", "ldap"},
       "must be webhook or jwt"},
      {{"--token", "secret-1", "--concierge-authenticator-name", "x", "--concierge-ca-bundle-data", "!!!"}, "base64"},
      {{"--token", "secret-1", "--concierge-authenticator-name", "x", "--concierge-api-group-suffix", ""},
       "DNS suffix"},
      {{"--token=", "--concierge-authenticator-name", "x"}, "must not be empty"},
      {{"--token", "secret-1", "--concierge-authenticator-name", "x", "--enable-concierge=false"}, "only true"},
  };
  for (const auto &r : rows) {
    std::string all;
    for (const auto &a : r.args) all += a + " ";
    INFO(all);
    try {
      StaticLoginOptions::from_args(r.args, env);
      FAIL("accepted");
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(std::string(e.what()).find(r.says) != std::string::npos);
      CHECK(std::string(e.what()).find("secret-1") == std::string::npos);
    }
  }
}

TEST_CASE("the CLI: usage errors are one line with exit 2, help has examples") {
  struct Row {
    std::string args;
    std::string says;
  };
  std::vector<Row> rows = {
      {"login static", "one of --token or --token-env"},
      {"login static --token", "needs a value"},
      {"login static --token=secret-1 --bogus", "unknown flag --bogus"},
      {"login static secret-1", "unexpected argument"},
      {"login frobnicate", "unknown login method"},
      {"login", "missing login method"},
      {"get", "missing resource"},
      {"get pods", "unknown resource"},
      {"get kubeconfig --concierge-authenticator-type webhook", "exactly one of --static-token"},
      {"get kubeconfig --static-token t --static-token-env T", "exactly one of --static-token"},
      {"get kubeconfig --static-token t --nope", "unknown flag --nope"},
      {"get kubeconfig --static-token", "needs a value"},
      {"get kubeconfig --static-token t --concierge-authenticator-type ldap", "must be webhook or jwt"},
      {"get kubeconfig --oidc-flow smoke", "must be browser or device"},
      {"whoami --output xml", "text, json or yaml"},
      {"whoami -o", "needs a value"},
      {"whoami --kubeconfig", "needs a value"},
      {"whoami --bogus", "unknown flag --bogus"},
      {"whoami --timeout soon", "not a duration"},
  };
  for (const auto &r : rows) {
    int rc = 0;
    std::string out = run(pin() + " " + r.args + " 2>&1 >/dev/null", &rc);
    INFO(r.args << " -> " << out);
    CHECK(rc == 2);
    CHECK(out.find(r.says) != std::string::npos);
    CHECK(out.find("secret-1") == std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  }
  int rc = 0;
  std::string help = run(pin() + " --help", &rc);
  CHECK(rc == 0);
  for (const char *c : {"login static", "get kubeconfig", "whoami", "version"})
    CHECK(help.find(c) != std::string::npos);
  for (const char *cmd : {"login static --help", "get kubeconfig --help", "whoami --help", "help login", "help get",
                          "help whoami", "login --help"}) {
    INFO(cmd);
    std::string h = run(pin() + " " + cmd, &rc);
    CHECK(rc == 0);
    CHECK(h.find("Example:") != std::string::npos);
  }
  CHECK(run(pin() + " version", &rc).find("pinniped 0.1.0") != std::string::npos);
}

TEST_CASE("KUBERNETES_EXEC_INFO: both versions parse, spec.cluster is read, malformed input is refused") {
  auto none = ExecCredentialRequest::parse("");
  CHECK(none.api_version == kExecCredentialV1beta1);
  CHECK(!none.cluster);
  auto v1 = ExecCredentialRequest::parse(exec_info(kExecCredentialV1, "https://1.2.3.4:6443", "PEM-CA"));
  CHECK(v1.api_version == kExecCredentialV1);
  REQUIRE(v1.cluster);
  CHECK(v1.cluster->server == "https://1.2.3.4:6443");
  CHECK(v1.cluster->ca_pem == "PEM-CA");
  auto b1 = ExecCredentialRequest::parse(
      R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":true,"cluster":{"server":"https://h","tls-server-name":"k","insecure-skip-tls-verify":true,"config":{"x":1}}}})");
  CHECK(b1.api_version == kExecCredentialV1beta1);
  CHECK(b1.interactive);
  REQUIRE(b1.cluster);
  CHECK(b1.cluster->tls_server_name == "k");
  CHECK(b1.cluster->insecure_skip_tls_verify);

  struct Row {
    std::string text, says;
  };
  std::vector<Row> rows = {
      {"{", "malformed JSON"},
      {"[]", "not a JSON object"},
      {"\"x\"", "not a JSON object"},
      {R"({"kind":"ExecCredential"})", "unsupported apiVersion"},
      {R"({"apiVersion":"client.authentication.k8s.io/v1alpha1","kind":"ExecCredential"})", "unsupported apiVersion"},
      {R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"Pod"})", "kind must be ExecCredential"},
      {R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":[]})",
       "spec: expected an object"},
      {R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":"no"}})",
       "spec.interactive"},
      {R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"cluster":{"server":5}}})",
       "spec.cluster.server"},
      {R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"cluster":{"certificate-authority-data":"%%%"}}})",
       "not valid base64"},
  };
  for (const auto &r : rows) {
    INFO(r.text);
    try {
      ExecCredentialRequest::parse(r.text);
      FAIL("accepted");
    } catch (const Error &e) {
      CHECK(e.code == 400);
      CHECK(std::string(e.what()).rfind("KUBERNETES_EXEC_INFO: ", 0) == 0);
      CHECK(std::string(e.what()).find(r.says) != std::string::npos);
    }
  }
}

TEST_CASE("the ExecCredential answer repeats the apiVersion and carries the credential") {
  auto c = cred_expiring_in(std::chrono::seconds(300));
  for (const auto &v : {kExecCredentialV1, kExecCredentialV1beta1}) {
    std::string out = exec_credential_json(v, c);
    auto j = json::parse(out);
    CHECK(json::get_string(j, "apiVersion", "") == v);
    CHECK(json::get_string(j, "kind", "") == "ExecCredential");
    CHECK(!json::get_bool(*json::field(j, "spec"), "interactive", ""));
    auto back = parse_exec_credential(out);
    CHECK(back.client_certificate_data == c.client_certificate_data);
    CHECK(back.client_key_data == c.client_key_data);
    CHECK(back.expiration_timestamp == c.expiration_timestamp);
    CHECK(out.find("\\/") == std::string::npos);
  }
}

TEST_CASE("the plugin answers in the asked apiVersion with a certificate for the user; refusals are one line") {
  FakeApiServer api;
  api.add_user("alice-token", {"alice", "", {"devs"}, {}});
  TempDir dir;
  for (const auto &v : {kExecCredentialV1, kExecCredentialV1beta1, std::string()}) {
    INFO(v);
    int rc = 0;
    std::string env = v.empty() ? "" : "KUBERNETES_EXEC_INFO=" + shell_quote(exec_info(v)) + " ";
    // The token comes from the environment, as kubeconfigs do it.
    std::string out = run("T=alice-token " + env + login_cmd(api, dir, "--credential-cache '' --token-env T"), &rc);
    REQUIRE(rc == 0);
    auto j = json::parse(out);
    CHECK(json::get_string(j, "apiVersion", "") == (v.empty() ? kExecCredentialV1beta1 : v));
    auto c = parse_exec_credential(out);
    auto chain = CertificateChain::parse(c.client_certificate_data);
    CHECK(detail::common_name(&chain->get()->subject) == "alice");
    auto exp = parse_rfc3339(c.expiration_timestamp);
    REQUIRE(exp);
    CHECK(std::abs(std::chrono::duration_cast<std::chrono::seconds>(*exp - Clock::now()).count() - 300) <= 10);
  }
  int rc = 0;
  std::string err = run(login_cmd(api, dir, "--credential-cache '' --token wrong-token-xyz") + " 2>&1 >/dev/null", &rc);
  CHECK(rc == 1);
  CHECK(err == "pinniped: login failed: authentication failed\n");
  err = run("KUBERNETES_EXEC_INFO='{' " + login_cmd(api, dir, "--token alice-token") + " 2>&1 >/dev/null", &rc);
  CHECK(rc == 1);
  CHECK(err.find("KUBERNETES_EXEC_INFO: malformed JSON") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  // Nothing listening: a clear line, and never the token.
  err = run(pin() +
                " login static --credential-cache '' --token secret-tok-1 --concierge-authenticator-name my-idp "
                "--concierge-endpoint https://127.0.0.1:1 2>&1 >/dev/null",
            &rc);
  CHECK(rc == 1);
  CHECK(err.find("pinniped: login failed: ") == 0);
  CHECK(err.find("secret-tok-1") == std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

TEST_CASE("without endpoint flags the plugin uses spec.cluster from provideClusterInfo") {
  FakeApiServer api;
  api.add_user("alice-token", {"alice", "", {}, {}});
  TempDir dir;
  int rc = 0;
  std::string out =
      run("KUBERNETES_EXEC_INFO=" + shell_quote(exec_info(kExecCredentialV1, api.base(), api.ca_pem())) + " " + pin() +
              " login static --credential-cache '' --token alice-token "
              "--concierge-authenticator-name my-idp 2>&1",
          &rc);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(json::get_string(json::parse(out), "apiVersion", "") == kExecCredentialV1);
  // No cluster info and no flag: says what to do.
  out =
      run(pin() + " login static --credential-cache '' --token alice-token --concierge-authenticator-name my-idp 2>&1",
          &rc);
  CHECK(rc == 1);
  CHECK(out.find("provideClusterInfo") != std::string::npos);
}

TEST_CASE("the credential cache: reuse until a minute before expiry, pruning, corruption, permissions") {
  TempDir dir;
  std::string path = dir.file("cfg/pinniped/credentials.yaml");
  CredentialCache cache(path);
  CHECK(!cache.get("k1"));
  cache.put("k1", cred_expiring_in(std::chrono::seconds(300)));
  CHECK(mode_of(dir.file("cfg/pinniped")) == 0700);
  CHECK(mode_of(path) == 0600);
  REQUIRE(cache.get("k1"));
  CHECK(!cache.get("k2"));
  // Within the margin: not reused.
  CHECK(!cache.get("k1", Clock::now() + std::chrono::seconds(250)));
  cache.put("short", cred_expiring_in(std::chrono::seconds(30)));
  CHECK(!cache.get("short"));
  // Expired entries are dropped on the next write.
  cache.put("old", cred_expiring_in(std::chrono::seconds(2)));
  cache.put("k3", cred_expiring_in(std::chrono::seconds(300)), Clock::now() + std::chrono::seconds(5));
  std::vector<std::string> keys;
  for (const auto &e : cache.load()) keys.push_back(e.key);
  CHECK(std::find(keys.begin(), keys.end(), "old") == keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "k1") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "k3") != keys.end());
  // Replacing a key keeps one entry for it.
  cache.put("k1", cred_expiring_in(std::chrono::seconds(400)));
  int k1 = 0;
  for (const auto &e : cache.load()) k1 += e.key == "k1";
  CHECK(k1 == 1);

  // Corrupt, foreign, empty, or a directory in the way: read as empty, replaced on write.
  for (const std::string &bad :
       {std::string("{{{ not yaml"), std::string("kind: Pod\napiVersion: v1\n"), std::string(""),
        std::string("\x01\x02garbage"), std::string("kind: CredentialCache\ncredentials: 5\n"),
        std::string("kind: CredentialCache\ncredentials:\n- key: k1\n  credential: 7\n")}) {
    INFO(bad);
    dir.write("cfg/pinniped/credentials.yaml", bad);
    CHECK(!cache.get("k1"));
    cache.put("k1", cred_expiring_in(std::chrono::seconds(300)));
    CHECK(cache.get("k1"));
    CHECK(mode_of(path) == 0600);
  }
  // YAML (upstream's format) is read too.
  dir.write("cfg/pinniped/credentials.yaml",
            "apiVersion: config.supervisor.pinniped.dev/v1alpha1\nkind: CredentialCache\ncredentials:\n"
            "- key: yk\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n  credential:\n    expirationTimestamp: \"" +
                format_rfc3339(Clock::now() + std::chrono::minutes(10)) +
                "\"\n    clientCertificateData: |\n      CERT\n    clientKeyData: KEY\n");
  auto y = cache.get("yk");
  REQUIRE(y);
  CHECK(y->client_certificate_data == "CERT\n");
  // A cache that cannot be written does not fail the login.
  CredentialCache blocked(dir.file("cfg/pinniped/credentials.yaml/below"));
  int calls = 0;
  auto c = blocked.get_or_exchange("k", [&] {
    calls++;
    return cred_expiring_in(std::chrono::seconds(300));
  });
  CHECK(calls == 1);
  CHECK(!c.client_certificate_data.empty());
}

TEST_CASE("the plugin's cache: second run reuses, the token is not stored, \"\" disables, default path") {
  FakeApiServer api;
  api.add_user("alice-token", {"alice", "", {}, {}});
  TempDir dir;
  int rc = 0;
  std::string first = run(login_cmd(api, dir, "--token alice-token"), &rc);
  REQUIRE(rc == 0);
  CHECK(api.exchanges() == 1);
  std::string second = run(login_cmd(api, dir, "--token alice-token"), &rc);
  REQUIRE(rc == 0);
  CHECK(api.exchanges() == 1);
  CHECK(parse_exec_credential(first).client_certificate_data == parse_exec_credential(second).client_certificate_data);
  std::string file = dir.file("config/pinniped/credentials.yaml");
  CHECK(mode_of(dir.file("config/pinniped")) == 0700);
  CHECK(mode_of(file) == 0600);
  CHECK(dir.read("config/pinniped/credentials.yaml").find("alice-token") == std::string::npos);
  // Another token, another entry; a disabled cache always exchanges.
  api.add_user("bob-token", {"bob", "", {}, {}});
  run(login_cmd(api, dir, "--token bob-token"), &rc);
  CHECK(api.exchanges() == 2);
  CHECK(CredentialCache(file).load().size() == 2);
  run(login_cmd(api, dir, "--token alice-token --credential-cache ''"), &rc);
  run(login_cmd(api, dir, "--token alice-token --credential-cache ''"), &rc);
  CHECK(api.exchanges() == 4);
  // Without XDG_CONFIG_HOME: ~/.config/pinniped.
  run("HOME=" + shell_quote(dir.file("home")) + " XDG_CONFIG_HOME= " + pin() +
          " login static --token alice-token --concierge-authenticator-name my-idp --concierge-endpoint " + api.base() +
          " --concierge-ca-bundle-data " + detail::base64_encode(api.ca_pem()),
      &rc);
  CHECK(rc == 0);
  CHECK(access(dir.file("home/.config/pinniped/credentials.yaml").c_str(), R_OK) == 0);
  // A credential close to expiry is not reused.
  api.set_ttl(std::chrono::seconds(30));
  std::string explicit_cache = "--credential-cache " + shell_quote(dir.file("short.yaml"));
  run(login_cmd(api, dir, "--token alice-token " + explicit_cache), &rc);
  int before = api.exchanges();
  run(login_cmd(api, dir, "--token alice-token " + explicit_cache), &rc);
  CHECK(api.exchanges() == before + 1);
}

TEST_CASE("20 plugin processes at once: one exchange per key and one valid cache file") {
  FakeApiServer api;
  TempDir dir;
  for (int i = 0; i < 20; i++) api.add_user("tok-" + std::to_string(i), {"user" + std::to_string(i), "", {}, {}});
  for (bool same_token : {true, false}) {
    INFO((same_token ? "same token" : "20 tokens"));
    std::string cache = dir.file(same_token ? "same/credentials.yaml" : "many/credentials.yaml");
    int before = api.exchanges();
    std::string script;
    for (int i = 0; i < 20; i++)
      script +=
          login_cmd(api, dir,
                    "--credential-cache " + shell_quote(cache) + " --token tok-" + std::to_string(same_token ? 0 : i)) +
          " > " + shell_quote(dir.file("out-" + std::to_string(i))) + " 2>&1 &\n";
    script += "wait\n";
    dir.write("run.sh", script);
    int rc = 0;
    run("sh " + shell_quote(dir.file("run.sh")), &rc);
    for (int i = 0; i < 20; i++) {
      std::string out = dir.read("out-" + std::to_string(i));
      INFO(out);
      auto c = parse_exec_credential(out);
      auto chain = CertificateChain::parse(c.client_certificate_data);
      CHECK(detail::common_name(&chain->get()->subject) == "user" + std::to_string(same_token ? 0 : i));
    }
    CHECK(api.exchanges() - before == (same_token ? 1 : 20));
    auto entries = CredentialCache(cache).load();
    CHECK(entries.size() == (same_token ? 1u : 20u));
    // No temp files left behind.
    std::string ls = run("ls -a " + shell_quote(detail::parent_dir(cache)));
    CHECK(ls.find(".tmp.") == std::string::npos);
  }
}

TEST_CASE("get kubeconfig discovers authenticator, endpoint and CA; the result parses and runs our plugin") {
  FakeApiServer api;
  TempDir dir;
  std::string admin = api.admin_kubeconfig(dir);
  char real[4096];  // the program itself (under qemu-user too, not its wrapper)
  REQUIRE(realpath(pinniped_elf().c_str(), real));
  int rc = 0;
  std::string out =
      run(pin() + " get kubeconfig --kubeconfig " + shell_quote(admin) + " --static-token-env MY_TOKEN -o " +
              shell_quote(dir.file("user.kubeconfig")) + " --pinniped-cli-path " + shell_quote(real) + " 2>&1",
          &rc);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(mode_of(dir.file("user.kubeconfig")) == 0600);
  auto docs = parse_yaml_documents(dir.read("user.kubeconfig"));
  REQUIRE(docs.size() == 1);
  const auto &user = *json::field(json::field(docs[0], "users")->get<picojson::array>().at(0), "user");
  const auto &exec = *json::field(user, "exec");
  // v1beta1, as upstream writes it: every kubectl reads it, Debian 12's own
  // kubectl 1.20 included, which refuses v1 (added in 1.22).
  CHECK(json::get_string(exec, "apiVersion", "") == kExecCredentialV1beta1);
  CHECK(json::get_string(exec, "interactiveMode", "") == "");
  CHECK(json::get_bool(exec, "provideClusterInfo", ""));
  CHECK(!json::get_string(exec, "installHint", "").empty());
  std::string cmd = json::get_string(exec, "command", "");
  CHECK(cmd[0] == '/');
  CHECK(cmd == real);
  auto args = json::get_string_list(exec, "args", "");
  auto has = [&](const std::string &a) { return std::find(args.begin(), args.end(), a) != args.end(); };
  CHECK(has("--concierge-authenticator-name=my-idp"));
  CHECK(has("--concierge-endpoint=" + api.base()));
  CHECK(has("--concierge-ca-bundle-data=" + detail::base64_encode(api.ca_pem())));
  CHECK(has("--token-env=MY_TOKEN"));
  const auto &cluster = *json::field(json::field(docs[0], "clusters")->get<picojson::array>().at(0), "cluster");
  CHECK(json::get_string(cluster, "server", "") == api.base());
  // A static token lands in the args; stdout without -o.
  out = run(pin() + " get kubeconfig --kubeconfig " + shell_quote(admin) + " --static-token tok-1", &rc);
  CHECK(rc == 0);
  CHECK(out.find("--token=tok-1") != std::string::npos);
  // Several authenticators: an error naming them; none: says so; a flag picks one.
  api.set_authenticators({"idp-a", "idp-b"});
  out = run(pin() + " get kubeconfig --kubeconfig " + shell_quote(admin) + " --static-token t 2>&1", &rc);
  CHECK(rc == 1);
  CHECK(out.find("several WebhookAuthenticators found (idp-a, idp-b)") != std::string::npos);
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  out = run(pin() + " get kubeconfig --kubeconfig " + shell_quote(admin) +
                " --static-token t --concierge-authenticator-name idp-b --concierge-endpoint https://other:6443",
            &rc);
  CHECK(rc == 0);
  CHECK(out.find("--concierge-authenticator-name=idp-b") != std::string::npos);
  CHECK(out.find("--concierge-endpoint=https://other:6443") != std::string::npos);
  api.set_authenticators({});
  out = run(pin() + " get kubeconfig --kubeconfig " + shell_quote(admin) + " --static-token t 2>&1", &rc);
  CHECK(rc == 1);
  CHECK(out.find("no WebhookAuthenticator found") != std::string::npos);
  out = run(pin() + " get kubeconfig --kubeconfig " + shell_quote(dir.file("missing")) + " --static-token t 2>&1", &rc);
  CHECK(rc == 1);
  CHECK(out.find("cannot read") != std::string::npos);
}

TEST_CASE("get kubeconfig: an in-cluster address in the CredentialIssuer gives way to the kubeconfig's server") {
  FakeApiServer api;
  TempDir dir;
  std::string admin = api.admin_kubeconfig(dir);
  auto other_ca = make_self_signed_ca("in-cluster-ca", std::chrono::hours(1));
  struct Row {
    std::string published;
    bool replaced;
  };
  for (const auto &r : std::vector<Row>{{"https://kubernetes.default.svc", true},
                                        {"https://kubernetes.default.svc.cluster.local:443", true},
                                        {"https://kubernetes", true},
                                        {"https://api.pinniped.svc.k3s.internal", true},
                                        {"https://203.0.113.7:6443", false},
                                        {"https://k3s.example.test:6443", false}}) {
    INFO(r.published);
    api.publish(r.published, other_ca.cert_pem);
    int rc = 0;
    std::string out = run(pin() + " get kubeconfig --kubeconfig " + shell_quote(admin) + " --static-token t 2>&1", &rc);
    INFO(out);
    REQUIRE(rc == 0);
    std::string endpoint = r.replaced ? api.base() : r.published;
    std::string ca = r.replaced ? api.ca_pem() : other_ca.cert_pem;
    CHECK(out.find("\"--concierge-endpoint=" + endpoint + "\"") != std::string::npos);
    CHECK(out.find("--concierge-ca-bundle-data=" + detail::base64_encode(ca)) != std::string::npos);
  }
}

TEST_CASE("PluginKubeconfig YAML round-trips through the YAML reader and KubeConfig") {
  PluginKubeconfig k;
  k.server = "https://10.0.0.1:6443";
  k.ca_pem = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n";
  k.command = "/usr/local/bin/pinniped";
  k.args = {"login", "static", "--token=a:b \"c\" #d"};
  for (const auto &v : {kExecCredentialV1, kExecCredentialV1beta1}) {
    k.exec_api_version = v;
    auto docs = parse_yaml_documents(k.to_yaml());
    REQUIRE(docs.size() == 1);
    CHECK(docs[0].serialize() == k.to_json().serialize());
    CHECK((k.to_yaml().find("interactiveMode") != std::string::npos) == (v == kExecCredentialV1));
  }
}

TEST_CASE("whoami: an exec user of ours is logged in in-process and shown") {
  FakeApiServer api;
  api.add_user("alice-token", {"alice", "", {"devs", "ops"}, {}});
  TempDir dir;
  int rc = 0;
  run(pin() + " get kubeconfig --kubeconfig " + shell_quote(api.admin_kubeconfig(dir)) +
          " --static-token-env MY_TOKEN -o " + shell_quote(dir.file("alice.kubeconfig")),
      &rc);
  REQUIRE(rc == 0);
  std::string env = "MY_TOKEN=alice-token XDG_CONFIG_HOME=" + shell_quote(dir.file("cfg")) + " ";
  std::string out =
      run(env + pin() + " whoami --kubeconfig " + shell_quote(dir.file("alice.kubeconfig")) + " 2>&1", &rc);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("Username: alice\n") != std::string::npos);
  CHECK(out.find("Groups: devs, ops, system:authenticated\n") != std::string::npos);
  CHECK(out.find("URL: " + api.base()) != std::string::npos);
  out = run(env + pin() + " whoami -o json --kubeconfig " + shell_quote(dir.file("alice.kubeconfig")), &rc);
  REQUIRE(rc == 0);
  auto j = json::parse(out);
  CHECK(json::get_string(j, "kind", "") == "WhoAmIRequest");
  // The admin kubeconfig (a client certificate) works as is.
  out = run(pin() + " whoami --kubeconfig " + shell_quote(dir.file("admin.kubeconfig")), &rc);
  CHECK(rc == 0);
  CHECK(out.find("Username: admin\n") != std::string::npos);
  // A wrong token: a readable failure.
  out = run("MY_TOKEN=nope XDG_CONFIG_HOME=" + shell_quote(dir.file("cfg")) + " " + pin() + " whoami --kubeconfig " +
                shell_quote(dir.file("alice.kubeconfig")) + " 2>&1",
            &rc);
  CHECK(rc == 1);
  CHECK(out == "pinniped: whoami failed: authentication failed\n");
}

TEST_CASE("every kubectl on the machine logs in through the plugin and presents our certificate") {
  std::vector<std::string> kubectls;
  if (access("/usr/bin/kubectl", X_OK) == 0) kubectls.push_back("/usr/bin/kubectl");
  std::string listed = run("ls /usr/lib/google-cloud-sdk/bin/kubectl.1.* 2>/dev/null");
  std::istringstream in(listed);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) kubectls.push_back(l);
  if (kubectls.empty()) {
    WARN("no kubectl on this machine");
    return;
  }
  FakeApiServer api;
  api.add_user("carol-token", {"carol", "", {"devs"}, {}});
  TempDir dir;
  char real[4096];
  REQUIRE(realpath(pinniped_bin().c_str(), real));
  for (const auto &version : {kExecCredentialV1, kExecCredentialV1beta1}) {
    PluginKubeconfig k;
    k.server = api.base();
    k.ca_pem = api.ca_pem();
    k.command = real;
    StaticLoginOptions lo;
    lo.token_env = "CAROL_TOKEN";
    lo.authenticator_name = "my-idp";
    lo.credential_cache = dir.file("cache-" + version.substr(version.rfind('/') + 1) + ".yaml");
    k.args = lo.to_args();  // endpoint and CA come from provideClusterInfo
    k.exec_api_version = version;
    std::string kc = dir.write("carol-" + version.substr(version.rfind('/') + 1) + ".kubeconfig", k.to_yaml());
    for (const auto &kubectl : kubectls) {
      INFO(kubectl << " " << version);
      size_t before = api.seen().size();
      int rc = 0;
      std::string out =
          run("HOME=" + shell_quote(dir.path) + " CAROL_TOKEN=carol-token " + shell_quote(kubectl) + " --kubeconfig " +
                  shell_quote(kc) + " --cache-dir " + shell_quote(dir.file("kcache")) + " get namespaces -o name 2>&1",
              &rc);
      INFO(out);
      CHECK(rc == 0);
      CHECK(out.find("namespace/default") != std::string::npos);
      auto seen = api.seen();
      REQUIRE(seen.size() > before);
      CHECK(seen.back() == "carol");
    }
  }
  // One exchange per cache: every later kubectl reused the cached certificate.
  CHECK(api.exchanges() == 2);
}

TEST_CASE("the README's login example logs in once and then answers from its cache") {
  // Beside the pinniped binary under test (build/), else build/ itself (asan runs).
  std::string bin = pinniped_bin();
  std::string example = bin.substr(0, bin.rfind('/') + 1) + "readme-login-example";
  if (access(example.c_str(), X_OK) != 0) example = "build/readme-login-example";
  if (access(example.c_str(), X_OK) != 0) {
    int rc = 0;
    run("make -s build/readme-login-example >/dev/null 2>&1", &rc);
  }
  REQUIRE(access(example.c_str(), X_OK) == 0);
  FakeApiServer api;
  api.add_user("ex-token", {"erin", "", {}, {}});
  TempDir dir;
  dir.write("ca.pem", api.ca_pem());
  std::string cmd = "EX_TOKEN=ex-token " + shell_quote(example) + " " + api.base() + " " +
                    shell_quote(dir.file("ca.pem")) + " my-idp EX_TOKEN " + shell_quote(dir.file("cache.yaml"));
  int rc = 0;
  for (int i = 0; i < 2; i++) {
    std::string out = run(cmd + " 2>&1", &rc);
    INFO(out);
    REQUIRE(rc == 0);
    auto c = parse_exec_credential(out);
    CHECK(detail::common_name(&CertificateChain::parse(c.client_certificate_data)->get()->subject) == "erin");
  }
  CHECK(api.exchanges() == 1);
  std::string out = run("EX_TOKEN=bad " + cmd.substr(cmd.find(' ') + 1) + " 2>&1", &rc);
  CHECK(rc == 1);
  CHECK(out == "login failed: authentication failed\n");
}

TEST_CASE("found by fuzzing: cache entries dated before 1678 or centuries ahead are never reused") {
  TempDir dir;
  std::string path = dir.write("credentials.yaml",
                               "kind: CredentialCache\ncredentials:\n"
                               "- key: ancient\n  credential: {expirationTimestamp: \"1000-01-01T00:00:00Z\"}\n"
                               "- key: far\n  credential: {expirationTimestamp: \"2700-01-01T00:00:00Z\"}\n");
  CredentialCache cache(path);
  CHECK(!cache.get("ancient"));
  CHECK(!cache.get("far"));
}

// --- the command line: one flag table per command (parser, help, completion)

namespace {

// What a command printed on stderr and how it exited.
struct CliRun {
  int rc = 0;
  std::string err;
};
CliRun cli_run(const std::string &args) {
  CliRun r;
  r.err = run(pin() + " " + args + " 2>&1 >/dev/null", &r.rc);
  return r;
}

// A kubeconfig like `admin` whose cluster CA is `ca_pem` instead.
std::string kubeconfig_with_ca(const TempDir &dir, const FakeApiServer &api, const std::string &admin,
                               const std::string &ca_pem, const std::string &name) {
  std::string text = read_file(admin);
  std::string from = detail::base64_encode(api.ca_pem());
  text.replace(text.find(from), from.size(), detail::base64_encode(ca_pem));
  return dir.write(name, text);
}

const picojson::value &first_of(const picojson::value &kc, const std::string &list) {
  return json::field(kc, list)->get<picojson::array>().at(0);
}

}  // namespace

TEST_CASE("the flag parser: every spelling of a flag, switches, \"--\", and each mistake as a UsageError") {
  std::string out, files;
  bool sw = false;
  std::vector<Flag> flags = {
      {"--output", 'o', "FORMAT", "", [&](const std::string &v) { out = v; }, {"text", "json"}},
      {"--file", 0, "FILE", "", [&](const std::string &v) { files += v + ";"; }, {}, true},
      switch_flag("--switch", "", sw),
      {"--refuses", 0, "X", "", [](const std::string &) { throw bad_request("refused in its own words"); }},
  };
  struct Row {
    std::vector<std::string> args;
    std::string out;
  };
  for (const auto &r : std::vector<Row>{{{"--output", "json"}, "json"},
                                        {{"--output=json"}, "json"},
                                        {{"-o", "json"}, "json"},
                                        {{"-ojson"}, "json"},
                                        {{"-o=json"}, "json"},
                                        {{"-o", "text", "--output=json"}, "json"}}) {
    INFO(r.args.back());
    out.clear();
    auto p = parse_flags(r.args, flags, "pinniped x");
    CHECK(out == r.out);
    CHECK(!p.help);
    CHECK(p.args.empty());
  }
  auto p = parse_flags({"--file", "a", "--file=b", "--switch", "pos", "--", "--file"}, flags, "pinniped x", 2);
  CHECK(files == "a;b;");
  CHECK(sw);
  CHECK(p.args == std::vector<std::string>{"pos", "--file"});
  parse_flags({"--switch=false"}, flags, "pinniped x");
  CHECK(!sw);
  // -h/--help stop the parse wherever they come.
  CHECK(parse_flags({"-h", "--bogus"}, flags, "pinniped x").help);
  CHECK(parse_flags({"-o", "json", "--help"}, flags, "pinniped x").help);

  struct Bad {
    std::vector<std::string> args;
    std::string says;
  };
  for (const auto &r : std::vector<Bad>{
           {{"--bogus=secret-1"}, "unknown flag --bogus (see pinniped x --help)"},
           {{"-x"}, "unknown flag -x (see pinniped x --help)"},
           {{"secret-1"}, "unexpected argument at position 1 (see pinniped x --help)"},
           {{"--file", "a", "secret-1"}, "unexpected argument at position 3"},
           {{"--output"}, "flag --output needs a value"},
           {{"-o"}, "flag --output needs a value"},
           {{"-o", "yaml"}, "--output must be text or json, not \"yaml\""},
           {{"--switch=secret-1"}, "flag --switch takes no value"},
           {{"--refuses", "secret-1"}, "refused in its own words"},
       }) {
    INFO(r.args.front());
    try {
      parse_flags(r.args, flags, "pinniped x");
      FAIL("accepted");
    } catch (const UsageError &e) {
      CHECK(std::string(e.what()).find(r.says) != std::string::npos);
      CHECK(std::string(e.what()).find("secret-1") == std::string::npos);
    }
  }
}

TEST_CASE("durations are strict: Go's forms parse, anything else is refused") {
  struct Row {
    std::string text;
    long long ms;
  };
  for (const auto &r : std::vector<Row>{{"0", 0},
                                        {"0s", 0},
                                        {"10s", 10000},
                                        {"1.5h", 5400000},
                                        {".5s", 500},
                                        {"1.s", 1000},
                                        {"1h30m", 5400000},
                                        {"2m3.5s", 123500},
                                        {"500ms", 500},
                                        {"0.3s", 300},
                                        {"1500us", 1},
                                        {"1500\xC2\xB5s", 1},
                                        {"2000000ns", 2},
                                        {"1h1m1s1ms", 3661001}}) {
    INFO(r.text);
    auto d = parse_duration(r.text);
    REQUIRE(d);
    CHECK(d->count() == r.ms);
  }
  for (const char *bad : {"", "1.2.3s", "1..5s", ".s", "s", "5", "1e3s", "10s ", " 10s", "10sx", "-5s", "+5s", "1h-5m",
                          "10S", "1.5", "h1", "00", "99999999999999999999s", "400000d"}) {
    INFO(bad);
    CHECK(!parse_duration(bad));
  }
  // Zero where it makes sense (a timeout of 0: no limit), refused elsewhere.
  CliRun r = cli_run("local-user-authenticator --brake-refill 0");
  CHECK(r.rc == 2);
  CHECK(r.err == "pinniped: flag --brake-refill: \"0\" is not a duration like 10s (it must be more than 0)\n");
  for (const char *flag : {"--credential-ttl", "--webhook-timeout", "--reload-interval", "--request-timeout"}) {
    INFO(flag);
    r = cli_run(std::string("concierge ") + flag + " 0s");
    CHECK(r.rc == 2);
    CHECK(r.err.find("must be more than 0") != std::string::npos);
  }
  r = cli_run("concierge --csr-timeout 1..5s");
  CHECK(r.rc == 2);
  CHECK(r.err == "pinniped: flag --csr-timeout: \"1..5s\" is not a duration like 10s\n");
  TempDir dir;
  // Accepted, so the command goes on to fail at run time on the missing file.
  r = cli_run("whoami --timeout 0 --kubeconfig " + shell_quote(dir.file("missing")));
  CHECK(r.rc == 1);
  CHECK(r.err.find("pinniped: whoami failed: cannot read") == 0);
  r = cli_run("get kubeconfig --timeout 0 --static-token t --kubeconfig " + shell_quote(dir.file("missing")));
  CHECK(r.rc == 1);
  CHECK(r.err.find("pinniped: get kubeconfig failed: cannot read") == 0);
  r = cli_run("get kubeconfig --timeout 1.2.3s --static-token t");
  CHECK(r.rc == 2);
  CHECK(r.err.find("not a duration like 10s") != std::string::npos);
}

TEST_CASE("help: -h and --help on every command, and help CMD [SUB] prints the same") {
  for (const std::string cmd :
       {"", "concierge", "login", "login static", "get", "get kubeconfig", "whoami", "local-user-authenticator",
        "local-user-authenticator add-user", "version", "completion", "help"}) {
    INFO(cmd);
    int rc = 0;
    std::string h = run(pin() + " " + cmd + " --help", &rc);
    CHECK(rc == 0);
    CHECK(h.rfind("Usage:\n  pinniped" + (cmd.empty() ? "" : " " + cmd) + " ", 0) == 0);
    CHECK(h.find("\nFlags:\n  -h, --help ") != std::string::npos);
    CHECK(h.find("\nExample:\n  ") != std::string::npos);
    CHECK(run(pin() + " " + cmd + " -h", &rc) == h);
    CHECK(rc == 0);
    CHECK(run(pin() + " help " + cmd, &rc) == h);
    CHECK(rc == 0);
    std::istringstream lines(h);
    for (std::string line; std::getline(lines, line);) CHECK(line.size() <= 100);
  }
  int rc = 0;
  CHECK(run(pin(), &rc) == run(pin() + " --help"));
  CHECK(rc == 0);
  // The flags table comes from the flag definitions: login static's are here.
  std::string h = run(pin() + " login static --help");
  StaticLoginOptions o;
  bool have_token = false;
  for (const auto &f : o.flags(have_token)) {
    INFO(f.name);
    CHECK(h.find("      " + f.name + (f.value.empty() ? "" : " ")) != std::string::npos);
  }
  CHECK(h.find("--concierge-authenticator-type webhook|jwt\n") != std::string::npos);
  // Fixed values show as a|b|c, short names beside long ones.
  h = run(pin() + " concierge --help");
  CHECK(h.find("      --strategy auto|signer-files|csr") != std::string::npos);
  CHECK(h.find("      --log-level debug|info|warn|error") != std::string::npos);
  CHECK(h.find("--tls-san NAME ") != std::string::npos);
  CHECK(h.find("(repeatable)") != std::string::npos);
  CHECK(run(pin() + " whoami --help").find("  -o, --output text|json|yaml ") != std::string::npos);
  CHECK(run(pin() + " get kubeconfig --help").find("  -o, --output FILE ") != std::string::npos);
  // The root lists every command.
  h = run(pin() + " help");
  for (const char *c : {"concierge", "login static", "get kubeconfig", "whoami", "local-user-authenticator add-user",
                        "version", "completion", "help"})
    CHECK(h.find("\n  " + std::string(c) + " ") != std::string::npos);
  CliRun r = cli_run("help frobnicate");
  CHECK(r.rc == 2);
  CHECK(r.err == "pinniped: unknown command \"frobnicate\" (see pinniped help)\n");
  r = cli_run("help get pods");
  CHECK(r.rc == 2);
}

TEST_CASE("completion: the bash script passes bash -n and completes commands, flags and fixed values") {
  TempDir dir;
  int rc = 0;
  std::string script = dir.write("pinniped.bash", run(pin() + " completion bash", &rc));
  REQUIRE(rc == 0);
  run("bash -n " + shell_quote(script) + " 2>&1", &rc);
  CHECK(rc == 0);
  // COMPREPLY for the words so far (the last one is being completed).
  auto complete = [&](const std::string &words) {
    std::string sh =
        "source " + shell_quote(script) + "; COMP_WORDS=(" + words +
        "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _pinniped; for c in \"${COMPREPLY[@]}\"; do echo \"$c\"; done";
    return run("bash -c " + shell_quote(sh) + " 2>&1");
  };
  CHECK(complete("pinniped get kubeconfig --conc") ==
        "--concierge-authenticator-name\n--concierge-authenticator-type\n--concierge-endpoint\n"
        "--concierge-ca-bundle\n--concierge-api-group-suffix\n");
  CHECK(complete("pinniped g") == "get\n");
  CHECK(complete("pinniped get ''") == "kubeconfig\n");
  CHECK(complete("pinniped login s") == "static\n");
  CHECK(complete("pinniped concierge --strategy ''") == "auto\nsigner-files\ncsr\n");
  CHECK(complete("pinniped concierge --strategy = s") == "signer-files\n");  // --strategy=s, as bash splits it
  CHECK(complete("pinniped whoami -o j") == "json\n");
  CHECK(complete("pinniped --bogus whoami --output y") == "yaml\n");
  CHECK(complete("pinniped completion ''") == "bash\nzsh\nfish\n");
  CHECK(complete("pinniped local-user-authenticator add-user alice --out") == "--output\n");
  CHECK(complete("pinniped local-user-authenticator --log-level w") == "warn\n");
  // A flag's value is not taken for a command: "get" here is a token.
  CHECK(complete("pinniped login static --token get --concierge-e") == "--concierge-endpoint\n");
  // FILE values complete to files.
  dir.write("admin.kubeconfig", "x");
  CHECK(complete("pinniped get kubeconfig --kubeconfig " + shell_quote(dir.file("adm"))) ==
        dir.file("admin.kubeconfig") + "\n");
  CHECK(complete("pinniped get kubeconfig --static-token ''") == "");
  // zsh and fish, where installed: at least they parse.
  for (const char *sh : {"zsh", "fish"}) {
    std::string text = run(pin() + " completion " + sh, &rc);
    CHECK(rc == 0);
    CHECK(text.find("concierge-ca-bundle") != std::string::npos);
    CHECK(text.find("signer-files") != std::string::npos);
    if (run(std::string("command -v ") + sh).empty()) {
      WARN(sh << " is not installed: its script is not parsed");
      continue;
    }
    std::string f = dir.write(std::string("completion.") + sh, text);
    std::string why = run(std::string(sh) + " -n " + shell_quote(f) + " 2>&1", &rc);
    INFO(why);
    CHECK(rc == 0);
  }
  CliRun r = cli_run("completion tcsh");
  CHECK(r.rc == 2);
  CHECK(r.err == "pinniped: completion: unknown shell \"tcsh\" (bash, zsh or fish)\n");
  r = cli_run("completion");
  CHECK(r.rc == 2);
  CHECK(r.err.find("completion needs a shell") != std::string::npos);
}

TEST_CASE("exit codes: 2 for usage errors from parsing only, 1 for every failure at run time") {
  TempDir dir;
  std::string bad = shell_quote(dir.write("bad.kubeconfig", "clusters: [\n"));
  std::string empty_ctx = shell_quote(dir.write("noctx.kubeconfig", "apiVersion: v1\nkind: Config\n"));
  struct Row {
    std::string args;
    int rc;
    std::string says;
  };
  for (const auto &r : std::vector<Row>{
           {"frobnicate", 2, "pinniped: unknown command \"frobnicate\""},
           {"get kubeconfig --static-token secret-1 --bogus", 2, "pinniped: unknown flag --bogus"},
           {"whoami --timeout", 2, "pinniped: flag --timeout needs a value"},
           {"whoami --timeout 10", 2, "is not a duration"},
           {"concierge --threads lots", 2, "is not a number from 1 to 1024"},
           {"concierge --strategy sometimes", 2, "--strategy must be auto, signer-files or csr, not \"sometimes\""},
           {"concierge --strategy csr --standalone", 2, "--strategy csr needs a cluster"},
           {"concierge --direct-endpoint http://x", 2, "--direct-endpoint must be an https:// URL"},
           {"get kubeconfig --static-token secret-1 --static-token-env T", 2, "exactly one of"},
           {"version -o xml", 2, "--output must be text, json or yaml"},
           {"whoami --standalone", 2, "unknown flag --standalone"},
           // Bad kubeconfig content is a failure of the run, not of the call.
           {"whoami --kubeconfig " + bad, 1, "pinniped: whoami failed: YAML: "},
           {"get kubeconfig --static-token secret-1 --kubeconfig " + bad, 1, "pinniped: get kubeconfig failed: YAML: "},
           {"get kubeconfig --static-token secret-1 --kubeconfig " + empty_ctx, 1, "no current-context"},
           {"concierge --listen 127.0.0.1:0 --kubeconfig " + bad, 1, "pinniped: YAML: "},
           {"local-user-authenticator --listen 127.0.0.1:0 --kubeconfig " + bad, 1, "pinniped: YAML: "},
       }) {
    INFO(r.args);
    CliRun got = cli_run(r.args);
    INFO(got.err);
    CHECK(got.rc == r.rc);
    CHECK(got.err.rfind("pinniped: ", 0) == 0);
    CHECK(got.err.find(r.says) != std::string::npos);
    CHECK(std::count(got.err.begin(), got.err.end(), '\n') == 1);
    CHECK(got.err.find("secret-1") == std::string::npos);
  }
}

TEST_CASE("whoami and version print json and yaml with -o, -ojson and --output=yaml") {
  FakeApiServer api;
  TempDir dir;
  std::string admin = shell_quote(api.admin_kubeconfig(dir));
  int rc = 0;
  for (const std::string o : {"-o json", "-ojson", "--output=json"}) {
    INFO(o);
    auto j = json::parse(run(pin() + " whoami " + o + " --kubeconfig " + admin, &rc));
    CHECK(rc == 0);
    CHECK(json::get_string(j, "kind", "") == "WhoAmIRequest");
  }
  std::string yaml = run(pin() + " whoami --output=yaml --kubeconfig " + admin, &rc);
  CHECK(rc == 0);
  auto docs = parse_yaml_documents(yaml);
  REQUIRE(docs.size() == 1);
  CHECK(json::get_string(docs[0], "kind", "") == "WhoAmIRequest");
  const auto *user = json::field(*json::field(*json::field(docs[0], "status"), "kubernetesUserInfo"), "user");
  REQUIRE(user);
  CHECK(json::get_string(*user, "username", "") == "admin");
  CHECK(run(pin() + " whoami -o text --kubeconfig " + admin, &rc).find("Username: admin\n") != std::string::npos);
  auto v = json::parse(run(pin() + " version -ojson", &rc));
  CHECK(rc == 0);
  CHECK(json::get_string(v, "version", "") == "0.1.0");
  auto vy = parse_yaml_documents(run(pin() + " version -o=yaml", &rc));
  CHECK(rc == 0);
  REQUIRE(vy.size() == 1);
  CHECK(vy[0].serialize() == v.serialize());
  CHECK(run(pin() + " --version") == run(pin() + " version"));
}

TEST_CASE("get kubeconfig: names from the source cluster plus the suffix, install hint, command pinniped by default") {
  FakeApiServer api;
  TempDir dir;
  std::string admin = api.admin_kubeconfig(dir);
  int rc = 0;
  // No pinniped on PATH: written all the same, with a warning that says what to do.
  std::string err = run("PATH=/usr/bin:/bin " + pin() + " get kubeconfig --kubeconfig " + shell_quote(admin) +
                            " --static-token t -o " + shell_quote(dir.file("a.kubeconfig")) + " 2>&1",
                        &rc);
  REQUIRE(rc == 0);
  CHECK(err ==
        "pinniped: warning: \"pinniped\" is not on PATH here, and kubectl runs the kubeconfig's exec command by that "
        "name; give --pinniped-cli-path with the path its users have pinniped at\n");
  auto kc = parse_yaml_documents(dir.read("a.kubeconfig")).at(0);
  CHECK(json::get_string(kc, "current-context", "") == "fake-pinniped");
  CHECK(json::get_string(first_of(kc, "clusters"), "name", "") == "fake-pinniped");
  CHECK(json::get_string(first_of(kc, "users"), "name", "") == "fake-pinniped");
  CHECK(json::get_string(first_of(kc, "contexts"), "name", "") == "fake-pinniped");
  const auto &ctx = *json::field(first_of(kc, "contexts"), "context");
  CHECK(json::get_string(ctx, "cluster", "") == "fake-pinniped");
  CHECK(json::get_string(ctx, "user", "") == "fake-pinniped");
  const auto &exec = *json::field(*json::field(first_of(kc, "users"), "user"), "exec");
  CHECK(json::get_string(exec, "command", "") == "pinniped");
  CHECK(json::get_string(exec, "installHint", "") == kDefaultInstallHint);
  // pinniped on PATH: no warning. The other flags land where they say.
  std::string bin_dir = dir.file("bin");
  detail::make_dirs(bin_dir, 0755);
  char real[4096];
  REQUIRE(realpath(pinniped_bin().c_str(), real));
  REQUIRE(symlink(real, (bin_dir + "/pinniped").c_str()) == 0);
  err = run("PATH=" + shell_quote(bin_dir) + ":/usr/bin:/bin " + pin() + " get kubeconfig --kubeconfig " +
                shell_quote(admin) +
                " --static-token t --generated-name-suffix -edge --install-hint 'ask ops for it' -o " +
                shell_quote(dir.file("b.kubeconfig")) + " 2>&1",
            &rc);
  REQUIRE(rc == 0);
  CHECK(err == "");
  kc = parse_yaml_documents(dir.read("b.kubeconfig")).at(0);
  CHECK(json::get_string(kc, "current-context", "") == "fake-edge");
  CHECK(json::get_string(first_of(kc, "users"), "name", "") == "fake-edge");
  const auto &exec2 = *json::field(*json::field(first_of(kc, "users"), "user"), "exec");
  CHECK(json::get_string(exec2, "installHint", "") == "ask ops for it");
  CHECK(json::get_string(exec2, "command", "") == "pinniped");
  // A path that is not there: a warning naming it.
  err = run(pin() + " get kubeconfig --kubeconfig " + shell_quote(admin) +
                " --static-token t --pinniped-cli-path /nonexistent/pinniped 2>&1 >/dev/null",
            &rc);
  CHECK(rc == 0);
  CHECK(err.find("pinniped: warning: /nonexistent/pinniped is not an executable file here") == 0);
  // Merged with the admin's kubeconfig, kubectl sees both contexts.
  if (access("/usr/bin/kubectl", X_OK) == 0) {
    std::string view = run("KUBECONFIG=" + shell_quote(admin + ":" + dir.file("a.kubeconfig")) +
                               " kubectl config view --flatten -o jsonpath='{.contexts[*].name}' 2>&1",
                           &rc);
    INFO(view);
    CHECK(rc == 0);
    CHECK(view == "admin fake-pinniped");
  }
}

TEST_CASE("get kubeconfig: repeated --concierge-ca-bundle files are joined; one that is not PEM is refused at once") {
  FakeApiServer api;
  TempDir dir;
  std::string admin = api.admin_kubeconfig(dir);
  auto a = make_self_signed_ca("bundle-a", std::chrono::hours(1)),
       b = make_self_signed_ca("bundle-b", std::chrono::hours(1));
  dir.write("a.pem", a.cert_pem);
  dir.write("b.pem", b.cert_pem);
  int rc = 0;
  std::string out =
      run(pin() + " get kubeconfig --kubeconfig " + shell_quote(admin) + " --static-token t --concierge-ca-bundle " +
              shell_quote(dir.file("a.pem")) + " --concierge-ca-bundle=" + shell_quote(dir.file("b.pem")),
          &rc);
  REQUIRE(rc == 0);
  auto kc = parse_yaml_documents(out).at(0);
  auto args = json::get_string_list(*json::field(*json::field(first_of(kc, "users"), "user"), "exec"), "args", "");
  std::string data;
  for (const auto &x : args)
    if (x.rfind("--concierge-ca-bundle-data=", 0) == 0) data = x.substr(x.find('=') + 1);
  CHECK(detail::base64_decode(data) == a.cert_pem + b.cert_pem);
  // The endpoint still comes from the CredentialIssuer when only the CA is given.
  CHECK(std::find(args.begin(), args.end(), "--concierge-endpoint=" + api.base()) != args.end());
  struct Row {
    std::string name, content;
  };
  for (const auto &r :
       std::vector<Row>{{"key.pem", a.key_pem},
                        {"text.pem", "not a certificate\n"},
                        {"broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
                        {"empty.pem", ""}}) {
    INFO(r.name);
    std::string f = dir.write(r.name, r.content);
    CliRun got =
        cli_run("get kubeconfig --kubeconfig " + shell_quote(admin) + " --static-token t --concierge-ca-bundle " +
                shell_quote(dir.file("a.pem")) + " --concierge-ca-bundle " + shell_quote(f) + " -o " +
                shell_quote(dir.file("never.kubeconfig")));
    CHECK(got.rc == 2);
    CHECK(got.err == "pinniped: --concierge-ca-bundle: " + f + " is not PEM certificates\n");
    CHECK(access(dir.file("never.kubeconfig").c_str(), F_OK) != 0);
  }
  CliRun got = cli_run("get kubeconfig --static-token t --concierge-ca-bundle " + shell_quote(dir.file("missing.pem")));
  CHECK(got.rc == 2);
  CHECK(got.err.find("pinniped: cannot read " + dir.file("missing.pem")) == 0);
}

TEST_CASE("get kubeconfig tries the kubeconfig before writing it: a wrong CA fails and writes nothing") {
  FakeApiServer api;
  TempDir dir;
  std::string admin = api.admin_kubeconfig(dir);
  auto other = make_self_signed_ca("not-the-apiserver-ca", std::chrono::hours(1));
  std::string wrong = kubeconfig_with_ca(dir, api, admin, other.cert_pem, "wrong-ca.kubeconfig");
  dir.write("ca.pem", api.ca_pem());
  // Everything given, so nothing is discovered: only the validation meets the server.
  std::string cmd = pin() + " get kubeconfig --kubeconfig " + shell_quote(wrong) +
                    " --static-token t --concierge-authenticator-name my-idp --concierge-endpoint " + api.base() +
                    " --concierge-ca-bundle " + shell_quote(dir.file("ca.pem")) + " -o " +
                    shell_quote(dir.file("out.kubeconfig"));
  int rc = 0;
  std::string err = run(cmd + " 2>&1", &rc);
  INFO(err);
  CHECK(rc == 1);
  CHECK(err.rfind("pinniped: get kubeconfig failed: the new kubeconfig does not reach its cluster " + api.base() +
                      " with its CA: ",
                  0) == 0);
  CHECK(err.find("(nothing written; --skip-validation writes it all the same)\n") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(access(dir.file("out.kubeconfig").c_str(), F_OK) != 0);
  // Nothing listening: the same, and why.
  std::string closed = dir.write("closed.kubeconfig", [&] {
    std::string t = read_file(admin);
    t.replace(t.find(api.base()), api.base().size(), "https://127.0.0.1:1");
    return t;
  }());
  err = run(pin() + " get kubeconfig --kubeconfig " + shell_quote(closed) +
                " --static-token t --concierge-authenticator-name my-idp --concierge-endpoint " + api.base() +
                " --concierge-ca-bundle " + shell_quote(dir.file("ca.pem")) + " 2>&1 >/dev/null",
            &rc);
  CHECK(rc == 1);
  CHECK(err.find("does not reach its cluster https://127.0.0.1:1 with its CA: ") != std::string::npos);
  CHECK(err.find("refused") != std::string::npos);
  // --skip-validation writes it as it is.
  err = run(cmd + " --skip-validation 2>&1", &rc);
  INFO(err);
  CHECK(rc == 0);
  auto kc = parse_yaml_documents(dir.read("out.kubeconfig")).at(0);
  CHECK(json::get_string(*json::field(first_of(kc, "clusters"), "cluster"), "certificate-authority-data", "") ==
        detail::base64_encode(other.cert_pem));
}

TEST_CASE("get kubeconfig --timeout bounds the whole command") {
  // A server that takes connections and never answers.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0);
  std::string server = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  FakeApiServer api;
  TempDir dir;
  std::string text = read_file(api.admin_kubeconfig(dir));
  text.replace(text.find(api.base()), api.base().size(), server);
  std::string kc = dir.write("silent.kubeconfig", text);
  auto start = Steady::now();
  CliRun r = cli_run("get kubeconfig --kubeconfig " + shell_quote(kc) + " --static-token t --timeout 1500ms");
  auto took = std::chrono::duration_cast<Millis>(Steady::now() - start);
  ::close(fd);
  INFO(r.err);
  CHECK(r.rc == 1);
  CHECK(r.err.rfind("pinniped: get kubeconfig failed: ", 0) == 0);
  CHECK(took < std::chrono::seconds(6 * slow_factor()));
  CHECK(took >= Millis(1400));
}
