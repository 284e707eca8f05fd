// The real-cluster e2e: etcd + kube-apiserver (tests/e2e/cluster.sh) in a
// private network namespace, the manifests applied with kubectl, and the
// concierge as a host process with its own ServiceAccount's token (so the
// manifests' RBAC is what is exercised). Runs inside the namespace; needs
// E2E_DIR (the cluster's folder, with its env file). The same cases run on
// each control-plane profile: k3s (anonymous requests refused, so logins go
// through the concierge's direct frontend) and kubeadm (anonymous logins
// through kube-apiserver).
#include <catch2/catch.hpp>

#include "tests/support.hpp"

using namespace testing;

namespace {

// A member of a JSON object; throws (never a null dereference) when absent,
// so a poll retries and an assertion fails cleanly.
const picojson::value &at(const picojson::value &v, const std::string &key) {
  const auto *f = json::field(v, key);
  if (!f) throw std::runtime_error("no field \"" + key + "\" in " + v.serialize().substr(0, 200));
  return *f;
}

// The cluster, the concierge and a webhook IDP, set up once for all cases.
class E2E {
 public:
  static E2E &get() {
    static E2E e;
    return e;
  }

  std::map<std::string, std::string> env;
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<FakeIdp> idp;
  std::unique_ptr<Process> concierge;
  std::string kube_ca_pem;
  int concierge_port = 10250;

  // kubectl as the admin; output (stdout+stderr) and exit code.
  std::string kubectl(const std::string &args, int *rc = nullptr) const {
    return run("kubectl --kubeconfig " + shell_quote(env.at("KUBECONFIG")) + " " + args + " 2>&1", rc);
  }
  // stdout only: kubectl 1.32 against this 1.20 server prints discovery
  // warnings on stderr while an APIService has no backend.
  std::string kubectl_ok(const std::string &args) const {
    int rc = 0;
    std::string err = dir->file("kubectl.err");
    std::string out = run("kubectl --kubeconfig " + shell_quote(env.at("KUBECONFIG")) + " " + args + " 2>" + err, &rc);
    if (rc != 0) throw std::runtime_error("kubectl " + args + " failed: " + out + pinniped::read_file(err));
    return out;
  }
  picojson::value kubectl_json(const std::string &args) const { return json::parse(kubectl_ok(args + " -o json")); }
  // kubectl applying a document given inline.
  std::string apply(const std::string &yaml, int *rc = nullptr) const {
    std::string f = dir->write("apply-" + std::to_string(counter_++) + ".yaml", yaml);
    return kubectl("apply -f " + shell_quote(f), rc);
  }
  std::string server() const { return env.at("SERVER"); }
  std::string concierge_base() const { return "https://" + env.at("ADDR") + ":" + std::to_string(concierge_port); }
  std::string log() const { return concierge ? concierge->log() : ""; }
  std::string profile() const { return env.count("PROFILE") ? env.at("PROFILE") : "kubeadm"; }
  // kube-apiserver lets anonymous requests through (kubeadm's default; not k3s's).
  bool anonymous_auth() const { return !env.count("ANONYMOUS_AUTH") || env.at("ANONYMOUS_AUTH") == "true"; }
  // The direct frontend, at the namespace's address: standing in for the
  // node address that k3s's ServiceLB gives the LoadBalancer Service.
  static constexpr int kDirectPort = 10444;
  std::string direct_base() const { return "https://" + env.at("ADDR") + ":" + std::to_string(kDirectPort); }
  // Where logins should go on this profile.
  std::string expected_login_endpoint() const { return anonymous_auth() ? server() : direct_base(); }

  // What the CredentialIssuer publishes for clients (as get kubeconfig reads it).
  std::optional<PublishedFrontend> published() const {
    KubeClient k(KubeConfig::from_kubeconfig_file(env.at("KUBECONFIG")), std::chrono::seconds(10));
    return discover_concierge_endpoint(k, "pinniped.dev");
  }
  // The concierge's command line; `direct` adds the direct frontend.
  std::vector<std::string> concierge_argv(bool direct = true) const {
    std::vector<std::string> a = {pinniped_bin(),      "concierge",
                                  "--listen",          env.at("ADDR") + ":" + std::to_string(concierge_port),
                                  "--kubeconfig",      dir->file("concierge.kubeconfig"),
                                  "--signer-root",     env.at("SIGNER_ROOT"),
                                  "--reload-interval", "1s",
                                  "--log-level",       "debug"};
    // A generous failure limit: the suite's own wrong tokens all come from
    // this one address; the limit itself is tested with a replica.
    if (direct)
      a.insert(a.end(),
               {"--direct-listen", "0.0.0.0:" + std::to_string(kDirectPort), "--direct-failure-limit", "1000"});
    return a;
  }
  void start_concierge(bool direct = true) {
    concierge = std::make_unique<Process>(concierge_argv(direct), dir->file("concierge.log"));
  }
  void stop_concierge() {
    if (!concierge) return;
    concierge->signal(SIGTERM);
    concierge->wait(std::chrono::seconds(10));
    run("cat " + shell_quote(dir->file("concierge.log")) + " >> " + shell_quote(dir->file("concierge-all.log")));
    // Gone before the next concierge starts: its child truncates the file
    // only after fork, and a wait on the log must not read the last one's.
    std::remove(dir->file("concierge.log").c_str());
    concierge.reset();
  }
  // A ServiceAccount token from the TokenRequest API (what `kubectl create
  // token` sends; Debian 12's kubectl 1.20 has no such command).
  std::string service_account_token(const std::string &ns, const std::string &sa, int64_t seconds) const {
    KubeClient k(KubeConfig::from_kubeconfig_file(env.at("KUBECONFIG")), std::chrono::seconds(10));
    picojson::object spec{{"expirationSeconds", jv(seconds)}};
    picojson::object req{
        {"apiVersion", jv("authentication.k8s.io/v1")}, {"kind", jv("TokenRequest")}, {"spec", picojson::value(spec)}};
    auto res = k.create("/api/v1/namespaces/" + ns + "/serviceaccounts/" + sa + "/token", picojson::value(req));
    return json::get_string(at(res, "status"), "token", "status.token");
  }
  // Writes the direct Service's load-balancer status, as ServiceLB does.
  void set_direct_ingress(const std::vector<std::string> &ips) const {
    KubeClient k(KubeConfig::from_kubeconfig_file(env.at("KUBECONFIG")), std::chrono::seconds(10));
    std::string path = "/api/v1/namespaces/pinniped-concierge/services/pinniped-concierge-direct";
    k.update_with_retry(
        path,
        [&](picojson::value &svc) {
          picojson::array ingress;
          for (const auto &ip : ips) ingress.push_back(picojson::value(picojson::object{{"ip", jv(ip)}}));
          picojson::object lb{{"ingress", picojson::value(ingress)}};
          svc.get<picojson::object>()["status"] =
              picojson::value(picojson::object{{"loadBalancer", picojson::value(lb)}});
          return true;
        },
        true);
  }

  // Polls `pred` until true or the (scaled) timeout passes.
  static bool eventually(const std::function<bool()> &pred, int seconds = 60) {
    return testing::eventually(pred, std::chrono::seconds(seconds * slow_factor()), Millis(250));
  }

  bool api_service_available(const std::string &name) const {
    auto v = kubectl_json("get apiservice " + name);
    const auto *st = json::field(v, "status");
    const auto *conds = st ? json::field(*st, "conditions") : nullptr;
    if (!conds || !conds->is<picojson::array>()) return false;
    for (const auto &c : conds->get<picojson::array>())
      if (json::get_string(c, "type", "") == "Available") return json::get_string(c, "status", "") == "True";
    return false;
  }

  // An exchange the way the plugin makes it: to what the CredentialIssuer
  // publishes (kube-apiserver, or the direct frontend where kube-apiserver
  // refuses anonymous requests).
  ExchangeOptions exchange_options(const std::string &authenticator) const {
    ExchangeOptions o;
    auto f = published();
    o.endpoint = f ? f->server : server();
    o.tls.ca_pem = f ? f->ca_pem : kube_ca_pem;
    o.authenticator_name = authenticator;
    return o;
  }
  // An exchange sent to kube-apiserver whatever is published.
  ExchangeOptions via_kube_apiserver(const std::string &authenticator) const {
    ExchangeOptions o;
    o.endpoint = server();
    o.tls.ca_pem = kube_ca_pem;
    o.authenticator_name = authenticator;
    return o;
  }

  std::string webhook_authenticator_yaml(const std::string &name, const std::string &endpoint,
                                         const std::string &ca_data) const {
    return "apiVersion: authentication.concierge.pinniped.dev/v1alpha1\nkind: WebhookAuthenticator\n"
           "metadata:\n  name: " +
           name + "\nspec:\n  endpoint: " + endpoint + "\n" +
           (ca_data.empty() ? "" : "  tls:\n    certificateAuthorityData: " + ca_data + "\n");
  }

 private:
  E2E() {
    // A stray SIGTERM reached this process four times while the last case
    // restarted the concierge (cause not found; see the closing notes of
    // 2026-12-01): blocked here, for this thread and every thread it starts;
    // the processes the suite starts get a clean mask (support.hpp).
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, nullptr);
    const char *d = std::getenv("E2E_DIR");
    if (!d) throw std::runtime_error("E2E_DIR is not set: run through make e2e");
    env = read_env_file(std::string(d) + "/env");
    dir = std::make_unique<TempDir>();
    auto admin = KubeConfig::from_kubeconfig_file(env.at("KUBECONFIG"));
    kube_ca_pem = admin.tls.ca_pem;

    // CRDs and the objects of their kinds in one apply can race the CRDs
    // becoming established: apply again until everything is accepted.
    apply_kustomization(env.at("KUBECONFIG"), "manifests/concierge");
    // No kubelet (and a controller manager only in the CSR cases): the
    // concierge runs as a process at the namespace's address, reached
    // through hand-made Endpoints.
    apply(
        "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: pinniped-concierge-api\n"
        "  namespace: pinniped-concierge\nsubsets:\n- addresses:\n  - ip: " +
        env.at("ADDR") + "\n  ports:\n  - name: https\n    port: " + std::to_string(concierge_port) + "\n");
    std::string token = service_account_token("pinniped-concierge", "pinniped-concierge", 7200);
    dir->write("ca.crt", kube_ca_pem);
    dir->write("concierge.kubeconfig",
               "apiVersion: v1\nkind: Config\ncurrent-context: sa\nclusters:\n- name: e2e\n  cluster:\n"
               "    server: " +
                   server() + "\n    certificate-authority: ca.crt\nusers:\n- name: sa\n  user:\n    token: " + token +
                   "\ncontexts:\n- name: sa\n  context: {cluster: e2e, user: sa}\n");

    idp = std::make_unique<FakeIdp>();
    idp->add_user("alice-token", {"alice", "", {"e2e-devs", "e2e-all"}, {}});
    idp->add_user("bob-token", {"bob", "", {"e2e-all"}, {}});

    // No ServiceLB here: the direct Service gets the address it would give.
    set_direct_ingress({env.at("ADDR")});
    start_concierge();
    if (!eventually([&] { return api_service_available("v1alpha1.login.concierge.pinniped.dev"); }, 90))
      throw std::runtime_error("APIService never became Available; concierge log:\n" + log() + "\napiservice:\n" +
                               kubectl("get apiservice v1alpha1.login.concierge.pinniped.dev -o yaml"));
  }
  ~E2E() {
    // Everything is done: no graceful stop needed (the lease is left to expire).
    if (concierge) {
      concierge->signal(SIGKILL);
      concierge->wait(std::chrono::seconds(10));
    }
    stop_concierge();
    // Keep the logs with the cluster's for a look after a failure.
    for (const char *f : {"concierge-all.log", "replica.log", "limited.log"})
      run("cp " + shell_quote(dir->file(f)) + " " + shell_quote(env.at("LOGS")) + "/ 2>/dev/null");
  }
  mutable int counter_ = 0;
};

std::string secret_field(const E2E &e, const std::string &key) {
  auto s = e.kubectl_json("get secret -n pinniped-concierge pinniped-concierge-api-tls-serving-certificate");
  return json::get_string(at(s, "data"), key, "");
}
std::string secret_ca(const E2E &e) { return secret_field(e, "caCertificate"); }
// alice's token buys a certificate through kube-apiserver (e2e-idp).
bool alice_can_exchange(const E2E &e) {
  try {
    return !exchange_token(e.exchange_options("e2e-idp"), "alice-token").client_certificate_data.empty();
  } catch (const std::exception &) {
    return false;
  }
}
// The caBundle kube-apiserver should hold: the CA, then any previous CA.
std::string secret_bundle(const E2E &e) {
  return detail::base64_encode(*detail::base64_decode(secret_ca(e)) +
                               *detail::base64_decode(secret_field(e, "previousCaCertificate")));
}
std::string api_service_ca(const E2E &e, const std::string &name) {
  auto v = e.kubectl_json("get apiservice " + name);
  return json::get_string(at(v, "spec"), "caBundle", "");
}

}  // namespace

TEST_CASE("the manifests apply, the CRDs validate, and the APIServices carry the managed CA") {
  auto &e = E2E::get();
  CHECK(e.kubectl_ok("get crd webhookauthenticators.authentication.concierge.pinniped.dev -o name") != "");
  CHECK(e.kubectl_ok("get crd credentialissuers.config.concierge.pinniped.dev -o name") != "");
  int rc = 0;
  std::string out = e.apply(e.webhook_authenticator_yaml("plain-http", "http://idp.example/authenticate", ""), &rc);
  CHECK(rc != 0);  // the CRD schema requires https
  CHECK(out.find("spec.endpoint") != std::string::npos);
  for (const char *name : {"v1alpha1.login.concierge.pinniped.dev", "v1alpha1.identity.concierge.pinniped.dev"}) {
    INFO(name);
    CHECK(E2E::eventually([&] { return e.api_service_available(name); }));
    std::string bundle = api_service_ca(e, name);
    CHECK(!bundle.empty());
    CHECK(bundle == secret_bundle(e));
  }
}

TEST_CASE("the k3s single-file manifest passes kube-apiserver's own validation") {
  auto &e = E2E::get();
  // A server-side dry run: every object through admission and its schema,
  // the CRDs and the objects that use them in one request stream, as k3s's
  // deploy controller applies the file. Nothing is changed.
  int rc = 0;
  std::string out =
      e.kubectl("apply --dry-run=server -f " + shell_quote(std::string("manifests/k3s/pinniped.yaml")), &rc);
  INFO(out);
  CHECK(rc == 0);
  for (const char *kind : {"namespace/", "customresourcedefinition.apiextensions.k8s.io/", "serviceaccount/",
                           "clusterrole.rbac.authorization.k8s.io/", "deployment.apps/pinniped-concierge",
                           "service/pinniped-concierge-api", "apiservice.apiregistration.k8s.io/"})
    CHECK(out.find(kind) != std::string::npos);
  CHECK(out.find("(server dry run)") != std::string::npos);
  // The deployment in the cluster is still the one the e2e applied.
  auto d = e.kubectl_json("get deployment -n pinniped-concierge pinniped-concierge");
  std::string image = json::get_string(
      at(at(at(at(d, "spec"), "template"), "spec"), "containers").get<picojson::array>().at(0), "image", "");
  CHECK(image != "localhost/pinniped:0.1.0");
}

TEST_CASE("discovery and OpenAPI reach the concierge through kube-apiserver") {
  auto &e = E2E::get();
  // The aggregator serves a group a moment after the APIService is Available.
  std::string raw;
  REQUIRE(E2E::eventually(
      [&] {
        raw = e.kubectl_ok("get --raw /apis/login.concierge.pinniped.dev/v1alpha1");
        return true;
      },
      30));
  auto rl = json::parse(raw);
  CHECK(json::get_string(rl, "kind", "") == "APIResourceList");
  const auto &res = at(rl, "resources").get<picojson::array>().at(0);
  CHECK(json::get_string(res, "name", "") == "tokencredentialrequests");
  std::string resources = e.kubectl_ok("api-resources --api-group=login.concierge.pinniped.dev");
  CHECK(resources.find("tokencredentialrequests") != std::string::npos);
  CHECK(E2E::eventually([&] {
    return e.kubectl("explain tokencredentialrequests.spec").find("Bearer token supplied") != std::string::npos;
  }));
}

TEST_CASE(
    "a WebhookAuthenticator becomes Ready and an anonymous exchange yields a certificate kube-apiserver "
    "accepts") {
  auto &e = E2E::get();
  int rc = 0;
  e.apply(e.webhook_authenticator_yaml("e2e-idp", e.idp->url(), e.idp->ca_data()), &rc);
  REQUIRE(rc == 0);
  REQUIRE(E2E::eventually([&] {
    auto v = e.kubectl_json("get webhookauthenticator e2e-idp");
    return json::get_string(at(v, "status"), "phase", "") == "Ready";
  }));
  auto wa = e.kubectl_json("get webhookauthenticator e2e-idp");
  std::map<std::string, std::string> conds;
  for (const auto &c : at(at(wa, "status"), "conditions").get<picojson::array>())
    conds[json::get_string(c, "type", "")] = json::get_string(c, "status", "");
  for (const char *t :
       {"Ready", "EndpointURLValid", "TLSConfigurationValid", "WebhookConnectionValid", "AuthenticatorValid"})
    CHECK(conds[t] == "True");

  // Anonymous: no client credentials at all, only kube-apiserver's CA.
  auto cred = exchange_token(e.exchange_options("e2e-idp"), "alice-token");
  REQUIRE(!cred.client_certificate_data.empty());
  e.dir->write("alice.crt", cred.client_certificate_data);
  e.dir->write("alice.key", cred.client_key_data);
  std::string as_alice = "kubectl --server " + e.server() + " --certificate-authority " + e.dir->file("ca.crt") +
                         " --client-certificate " + e.dir->file("alice.crt") + " --client-key " +
                         e.dir->file("alice.key") + " ";
  std::string out = run(as_alice + "get namespaces 2>&1", &rc);
  CHECK(rc != 0);
  CHECK(out.find("User \"alice\" cannot list resource \"namespaces\"") != std::string::npos);

  e.kubectl_ok("create clusterrole e2e-ns-reader --verb=get,list --resource=namespaces");
  e.kubectl_ok("create clusterrolebinding e2e-devs-read-ns --clusterrole=e2e-ns-reader --group=e2e-devs");
  CHECK(E2E::eventually(
      [&] {
        int r = 0;
        std::string o = run(as_alice + "get namespaces 2>&1", &r);
        return r == 0 && o.find("pinniped-concierge") != std::string::npos;
      },
      20));
  // bob is not in e2e-devs: still forbidden.
  auto bob = exchange_token(e.exchange_options("e2e-idp"), "bob-token");
  e.dir->write("bob.crt", bob.client_certificate_data);
  e.dir->write("bob.key", bob.client_key_data);
  out = run("kubectl --server " + e.server() + " --certificate-authority " + e.dir->file("ca.crt") +
                " --client-certificate " + e.dir->file("bob.crt") + " --client-key " + e.dir->file("bob.key") +
                " get namespaces 2>&1",
            &rc);
  CHECK(rc != 0);
  CHECK(out.find("User \"bob\" cannot list") != std::string::npos);
}

TEST_CASE("a bad token gets authentication failed through the published frontend") {
  auto &e = E2E::get();
  try {
    exchange_token(e.exchange_options("e2e-idp"), "wrong-token");
    FAIL("a wrong token was accepted");
  } catch (const Error &err) {
    CHECK(err.code == 401);
    CHECK(std::string(err.what()) == "authentication failed");
  }
  CHECK(e.log().find("wrong-token") == std::string::npos);
}

TEST_CASE("WhoAmIRequest returns the identity kube-apiserver vouched for") {
  auto &e = E2E::get();
  std::string body = e.dir->write(
      "whoami.json", R"({"apiVersion":"identity.concierge.pinniped.dev/v1alpha1","kind":"WhoAmIRequest","spec":{}})");
  auto v = json::parse(
      e.kubectl_ok("create --raw /apis/identity.concierge.pinniped.dev/v1alpha1/whoamirequests -f " + body));
  const auto &user = at(at(at(v, "status"), "kubernetesUserInfo"), "user");
  CHECK(json::get_string(user, "username", "") == (e.env.count("ADMIN_USER") ? e.env.at("ADMIN_USER") : "admin"));
  auto groups = json::get_string_list(user, "groups", "");
  CHECK(std::find(groups.begin(), groups.end(), "system:masters") != groups.end());
  CHECK(std::find(groups.begin(), groups.end(), "system:authenticated") != groups.end());
}

TEST_CASE("X-Remote-User sent straight to the concierge without the front-proxy certificate is anonymous") {
  auto &e = E2E::get();
  auto serving_ca = pinniped::detail::base64_decode(secret_ca(e));
  REQUIRE(serving_ca);
  std::string body = R"({"apiVersion":"identity.concierge.pinniped.dev/v1alpha1","kind":"WhoAmIRequest","spec":{}})";
  httplib::Headers forged{
      {"Content-Type", "application/json"}, {"X-Remote-User", "system:admin"}, {"X-Remote-Group", "system:masters"}};
  auto who = [&](const ClientTlsOptions &tls) {
    HttpsClient c(e.concierge_base(), tls);
    auto res = c.request("POST", "/apis/identity.concierge.pinniped.dev/v1alpha1/whoamirequests", forged, body,
                         std::chrono::seconds(10));
    REQUIRE(res.status == 201);
    auto v = json::parse(res.body);
    return at(at(at(v, "status"), "kubernetesUserInfo"), "user");
  };
  ClientTlsOptions tls;
  tls.ca_pem = *serving_ca;
  tls.server_name = "pinniped-concierge-api.pinniped-concierge.svc";
  auto anon = who(tls);
  CHECK(json::get_string(anon, "username", "") == "system:anonymous");
  CHECK(json::get_string_list(anon, "groups", "") == std::vector<std::string>{"system:unauthenticated"});
  // A client certificate from another CA (here: the cluster signer's user
  // cert of alice) is not the front proxy either.
  tls.client_cert_pem = e.dir->read("alice.crt");
  tls.client_key_pem = e.dir->read("alice.key");
  CHECK(json::get_string(who(tls), "username", "") == "system:anonymous");
  // The real front-proxy client certificate is trusted.
  tls.client_cert_pem = pinniped::read_file(e.env.at("FRONT_PROXY_CLIENT_CERT"));
  tls.client_key_pem = pinniped::read_file(e.env.at("FRONT_PROXY_CLIENT_KEY"));
  CHECK(json::get_string(who(tls), "username", "") == "system:admin");
}

TEST_CASE("the CredentialIssuer publishes the signer strategy and the frontend") {
  auto &e = E2E::get();
  picojson::value strategy;
  REQUIRE(E2E::eventually([&] {
    auto ci = e.kubectl_json("get credentialissuer pinniped-concierge-config");
    const auto *st = json::field(ci, "status");
    const auto *ss = st ? json::field(*st, "strategies") : nullptr;
    if (!ss || ss->get<picojson::array>().empty()) return false;
    strategy = ss->get<picojson::array>()[0];
    return true;
  }));
  CHECK(json::get_string(strategy, "type", "") == "KubeClusterSigningCertificate");
  CHECK(json::get_string(strategy, "status", "") == "Success");
  CHECK(json::get_string(strategy, "reason", "") == "FetchedKey");
  const auto &info = at(at(strategy, "frontend"), "tokenCredentialRequestInfo");
  CHECK(json::get_string(at(strategy, "frontend"), "type", "") == "TokenCredentialRequestAPI");
  CHECK(json::get_string(info, "server", "") == e.expected_login_endpoint());
  auto ca = pinniped::detail::base64_decode(json::get_string(info, "certificateAuthorityData", ""));
  REQUIRE(ca);
  CHECK(ca->find("BEGIN CERTIFICATE") != std::string::npos);
  std::string message = json::get_string(strategy, "message", "");
  INFO(message);
  if (e.anonymous_auth()) {
    CHECK(*ca == e.kube_ca_pem);
    CHECK(message.find("logins go through kube-apiserver") != std::string::npos);
  } else {
    // The direct frontend, verified with the serving CA of the Secret.
    CHECK(*ca == *detail::base64_decode(secret_bundle(e)));
    CHECK(message.find("kube-apiserver refuses anonymous requests") != std::string::npos);
    CHECK(message.find("direct frontend at " + e.direct_base()) != std::string::npos);
  }
}

TEST_CASE("deleting the serving-certificate Secret rotates the caBundle and the API comes back") {
  auto &e = E2E::get();
  std::string before = secret_ca(e);
  e.kubectl_ok("delete secret -n pinniped-concierge pinniped-concierge-api-tls-serving-certificate");
  REQUIRE(E2E::eventually([&] {
    std::string now = secret_ca(e);
    return !now.empty() && now != before;
  }));
  std::string after = secret_ca(e);
  CHECK(E2E::eventually([&] { return api_service_ca(e, "v1alpha1.login.concierge.pinniped.dev") == after; }));
  CHECK(E2E::eventually([&] { return e.api_service_available("v1alpha1.login.concierge.pinniped.dev"); }));
  // And the exchange works again through the aggregator with the new CA.
  CHECK(E2E::eventually(
      [&] { return !exchange_token(e.exchange_options("e2e-idp"), "alice-token").client_certificate_data.empty(); }));
}

TEST_CASE("WebhookAuthenticator changes and deletion are followed, with status") {
  auto &e = E2E::get();
  int rc = 0;
  // Point it at a port where nothing listens: connection condition false.
  e.apply(e.webhook_authenticator_yaml("e2e-idp", "https://127.0.0.1:1/authenticate", e.idp->ca_data()), &rc);
  REQUIRE(rc == 0);
  REQUIRE(E2E::eventually([&] {
    auto v = e.kubectl_json("get webhookauthenticator e2e-idp");
    return json::get_string(at(v, "status"), "phase", "") == "Error";
  }));
  auto v = e.kubectl_json("get webhookauthenticator e2e-idp");
  bool conn_false = false;
  for (const auto &c : at(at(v, "status"), "conditions").get<picojson::array>())
    if (json::get_string(c, "type", "") == "WebhookConnectionValid")
      conn_false = json::get_string(c, "status", "") == "False";
  CHECK(conn_false);
  // A CA that is not a certificate: TLSConfigurationValid is False, and the
  // conditions that depend on it are Unknown, with upstream's reason and
  // message.
  e.apply(e.webhook_authenticator_yaml("e2e-idp", e.idp->url(), detail::base64_encode("not a certificate")), &rc);
  REQUIRE(rc == 0);
  std::map<std::string, std::string> seen;
  REQUIRE(E2E::eventually([&] {
    seen.clear();
    auto wa = e.kubectl_json("get webhookauthenticator e2e-idp");
    const auto *cs = json::field(at(wa, "status"), "conditions");
    if (cs && cs->is<picojson::array>())
      for (const auto &c : cs->get<picojson::array>())
        seen[json::get_string(c, "type", "")] = json::get_string(c, "status", "") + "/" +
                                                json::get_string(c, "reason", "") + "/" +
                                                json::get_string(c, "message", "");
    return seen["TLSConfigurationValid"].rfind("False/", 0) == 0;
  }));
  CHECK(seen["TLSConfigurationValid"].rfind("False/InvalidTLSConfiguration/", 0) == 0);
  CHECK(seen["EndpointURLValid"] == "True/Success/spec.endpoint is a valid URL");
  CHECK(seen["WebhookConnectionValid"] == "Unknown/UnableToValidate/unable to validate; see other conditions");
  CHECK(seen["AuthenticatorValid"] == "Unknown/UnableToValidate/unable to validate; see other conditions");
  CHECK(seen["Ready"] == "False/NotReady/the WebhookAuthenticator is not ready: see other conditions");
  // Back to the real endpoint: Ready again, and exchanges work.
  e.apply(e.webhook_authenticator_yaml("e2e-idp", e.idp->url(), e.idp->ca_data()), &rc);
  REQUIRE(E2E::eventually([&] {
    return json::get_string(at(e.kubectl_json("get webhookauthenticator e2e-idp"), "status"), "phase", "") == "Ready";
  }));
  CHECK(E2E::eventually(
      [&] { return !exchange_token(e.exchange_options("e2e-idp"), "alice-token").client_certificate_data.empty(); },
      20));
  // Deleted: the name is unknown, so the exchange fails.
  e.kubectl_ok("delete webhookauthenticator e2e-idp");
  CHECK(E2E::eventually(
      [&] {
        try {
          exchange_token(e.exchange_options("e2e-idp"), "alice-token");
          return false;
        } catch (const Error &err) {
          return err.code == 401;
        }
      },
      20));
}

TEST_CASE("the concierge's metrics count exchanges and name the signer expiry") {
  auto &e = E2E::get();
  auto serving_ca = pinniped::detail::base64_decode(secret_ca(e));
  ClientTlsOptions tls;
  tls.ca_pem = *serving_ca;
  tls.server_name = "pinniped-concierge-api.pinniped-concierge.svc";
  HttpsClient c(e.concierge_base(), tls);
  auto res = c.request("GET", "/metrics", {}, "", std::chrono::seconds(10));
  REQUIRE(res.status == 200);
  CHECK(res.body.find("pinniped_exchanges_total{outcome=\"success\",reason=\"\"}") != std::string::npos);
  CHECK(res.body.find("pinniped_exchanges_total{outcome=\"failed\",reason=\"rejected\"}") != std::string::npos);
  CHECK(res.body.find("pinniped_certificates_issued_total ") != std::string::npos);
  CHECK(res.body.find("pinniped_signer_expiry_timestamp_seconds 0\n") == std::string::npos);
  CHECK(res.body.find("pinniped_webhook_duration_seconds_count ") != std::string::npos);
  CHECK(e.log().find("PRIVATE KEY") == std::string::npos);
  // OpenAPI v3 (newer kube-apiservers fetch it; 1.20 uses v2, tested above).
  auto root = c.request("GET", "/openapi/v3", {}, "", std::chrono::seconds(10));
  REQUIRE(root.status == 200);
  auto root_doc = json::parse(root.body);
  std::string group_url = json::get_string(at(at(root_doc, "paths"), "apis/login.concierge.pinniped.dev/v1alpha1"),
                                           "serverRelativeURL", "");
  CHECK(group_url == "/openapi/v3/apis/login.concierge.pinniped.dev/v1alpha1");
  auto doc = c.request("GET", group_url, {}, "", std::chrono::seconds(10));
  REQUIRE(doc.status == 200);
  auto parsed = json::parse(doc.body);
  const auto *schemas = &at(at(parsed, "components"), "schemas");
  CHECK(json::field(*schemas, "login.concierge.pinniped.dev.v1alpha1.TokenCredentialRequest") != nullptr);
}

namespace {
// Puts a leaf of the Secret's own CA, issued 26 days ago, into the Secret
// (due for renewal after 25 days); returns it (base64, as stored).
std::string due_leaf(const E2E &e) {
  auto s = e.kubectl_json("get secret -n pinniped-concierge pinniped-concierge-api-tls-serving-certificate");
  auto &data = s.get<picojson::object>()["data"].get<picojson::object>();
  CertificateAndKey ca{*detail::base64_decode(data["caCertificate"].get<std::string>()),
                       *detail::base64_decode(data["caCertificatePrivateKey"].get<std::string>())};
  CertificateTemplate t;
  t.common_name = "pinniped-concierge-api.pinniped-concierge.svc";
  t.dns_names = {t.common_name, t.common_name + ".cluster.local"};
  t.server_auth = true;
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(Clock::now());
  t.not_before = now - std::chrono::hours(24 * 26);
  t.not_after = now + std::chrono::hours(24 * 4);
  auto leaf = issue_with_ca(ca, t);
  data["tlsCertificateChain"] = jv(detail::base64_encode(leaf.cert_pem));
  data["tlsPrivateKey"] = jv(detail::base64_encode(leaf.key_pem));
  int rc = 0;
  std::string out = e.apply(s.serialize(), &rc);
  if (rc != 0) throw std::runtime_error("could not write the due leaf: " + out);
  return detail::base64_encode(leaf.cert_pem);
}

// SHA-256 fingerprint of the certificate a server presents, via openssl.
std::string served_fingerprint(const std::string &addr, int port) {
  return run("openssl s_client -connect " + addr + ":" + std::to_string(port) +
             " -servername pinniped-concierge-api.pinniped-concierge.svc </dev/null 2>/dev/null"
             " | openssl x509 -noout -fingerprint -sha256 2>/dev/null");
}
}  // namespace

TEST_CASE("a second replica adopts the serving certificate; a renewal replaces the leaf for both and keeps the CA") {
  auto &e = E2E::get();
  std::string addr = e.env.at("ADDR");
  std::string ca_before = secret_ca(e);
  auto start_replica = [&](const std::vector<std::string> &extra) {
    // Replicas publish the same frontend (the direct Service's address).
    std::vector<std::string> argv = {pinniped_bin(),      "concierge",
                                     "--listen",          addr + ":10251",
                                     "--kubeconfig",      e.dir->file("concierge.kubeconfig"),
                                     "--signer-root",     e.env.at("SIGNER_ROOT"),
                                     "--reload-interval", "1s",
                                     "--direct-listen",   "0.0.0.0:10445"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(argv, e.dir->file("replica.log"));
  };
  {
    auto replica = start_replica({});
    REQUIRE(E2E::eventually([&] { return !served_fingerprint(addr, 10251).empty(); }, 20));
    CHECK(served_fingerprint(addr, 10251) == served_fingerprint(addr, e.concierge_port));
    CHECK(secret_ca(e) == ca_before);  // adopted, not replaced
    replica->signal(SIGTERM);
    CHECK(replica->wait(std::chrono::seconds(10)) == 0);
  }
  // A replica that finds the certificate due for renewal replaces the leaf
  // and keeps the CA; the first one follows the Secret. kube-apiserver's
  // caBundle never changes, so exchanges through it never fail meanwhile.
  int rc = 0;
  e.apply(e.webhook_authenticator_yaml("e2e-idp", e.idp->url(), e.idp->ca_data()), &rc);
  REQUIRE(rc == 0);
  REQUIRE(E2E::eventually([&] { return alice_can_exchange(e); }, 30));
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string last_error;
  std::mutex mu;
  std::thread load([&] {
    while (!stop) {
      try {
        auto c = exchange_token(e.exchange_options("e2e-idp"), "alice-token");
        (c.client_certificate_data.empty() ? failed : ok)++;
      } catch (const std::exception &ex) {
        failed++;
        std::lock_guard<std::mutex> lk(mu);
        last_error = ex.what();
      }
      std::this_thread::sleep_for(Millis(50));
    }
  });
  // The leader (the first concierge) renews; the replica follows the Secret.
  // A leaf 26 days old (of the same CA) is due for renewal.
  auto replica = start_replica({});
  REQUIRE(E2E::eventually([&] { return !served_fingerprint(addr, 10251).empty(); }, 20));
  std::string leaf_before = due_leaf(e);
  bool renewed = E2E::eventually(
      [&] {
        std::string now = secret_field(e, "tlsCertificateChain");
        return now != leaf_before && now != detail::base64_encode(leaf_before);
      },
      30);
  bool converged = renewed && E2E::eventually(
                                  [&] {
                                    std::string a = served_fingerprint(addr, e.concierge_port),
                                                b = served_fingerprint(addr, 10251);
                                    return !a.empty() && a == b;
                                  },
                                  30);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  stop = true;
  load.join();
  REQUIRE(renewed);
  CHECK(converged);
  CHECK(secret_ca(e) == ca_before);
  CHECK(api_service_ca(e, "v1alpha1.login.concierge.pinniped.dev") == secret_bundle(e));
  CHECK(e.api_service_available("v1alpha1.login.concierge.pinniped.dev"));
  CHECK(e.log().find("serving certificate loaded") != std::string::npos);
  INFO(last_error);
  CHECK(ok > 0);
  CHECK(failed == 0);
  replica->signal(SIGTERM);
  CHECK(replica->wait(std::chrono::seconds(10)) == 0);
}

TEST_CASE("a CA near its end is replaced, and the old one stays trusted until it expires") {
  auto &e = E2E::get();
  // A Secret whose CA has an hour left (less than one leaf lifetime) and
  // whose leaf is due: the next sync makes a new CA and keeps this one as
  // previousCaCertificate, in the caBundle beside the new CA.
  auto old_ca = make_self_signed_ca("e2e-old-serving-ca", std::chrono::hours(1));
  CertificateTemplate t;
  t.common_name = "pinniped-concierge-api.pinniped-concierge.svc";
  t.dns_names = {t.common_name};
  t.server_auth = true;
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(Clock::now());
  t.not_before = now - std::chrono::hours(24 * 26);
  t.not_after = now + std::chrono::minutes(30);
  auto leaf = issue_with_ca(old_ca, t);
  auto s = e.kubectl_json("get secret -n pinniped-concierge pinniped-concierge-api-tls-serving-certificate");
  auto &data = s.get<picojson::object>()["data"].get<picojson::object>();
  data["caCertificate"] = jv(detail::base64_encode(old_ca.cert_pem));
  data["caCertificatePrivateKey"] = jv(detail::base64_encode(old_ca.key_pem));
  data["tlsCertificateChain"] = jv(detail::base64_encode(leaf.cert_pem));
  data["tlsPrivateKey"] = jv(detail::base64_encode(leaf.key_pem));
  data.erase("previousCaCertificate");
  int rc = 0;
  std::string out = e.apply(s.serialize(), &rc);
  INFO(out);
  REQUIRE(rc == 0);
  std::string old_b64 = detail::base64_encode(old_ca.cert_pem);
  REQUIRE(E2E::eventually([&] { return secret_field(e, "previousCaCertificate") == old_b64; }, 30));
  std::string new_ca = *detail::base64_decode(secret_ca(e));
  CHECK(new_ca != old_ca.cert_pem);
  // The new CA lives for several leaf lifetimes (30 days each).
  auto ca_end = detail::from_x509_time(CertificateChain::parse(new_ca)->get()->valid_to);
  CHECK(ca_end - Clock::now() > std::chrono::hours(24 * 90));
  CHECK(E2E::eventually([&] {
    return api_service_ca(e, "v1alpha1.login.concierge.pinniped.dev") ==
           detail::base64_encode(new_ca + old_ca.cert_pem);
  }));
  CHECK(E2E::eventually([&] { return e.api_service_available("v1alpha1.login.concierge.pinniped.dev"); }));
  CHECK(E2E::eventually([&] { return alice_can_exchange(e); }, 30));
  CHECK(e.log().find("\"caRotated\":true") != std::string::npos);
}

namespace {
// Successful exchanges for `user` in the concierge's log.
int exchanges_for(const E2E &e, const std::string &user) {
  std::istringstream in(e.log());
  int n = 0;
  for (std::string l; std::getline(in, l);)
    n += l.find("\"msg\":\"exchange\",\"outcome\":\"success\"") != std::string::npos &&
         l.find("\"user\":\"" + user + "\"") != std::string::npos;
  return n;
}
}  // namespace

TEST_CASE(
    "pinniped get kubeconfig: plain kubectl logs in through the plugin, reuses the cache; whoami shows the user") {
  auto &e = E2E::get();
  int rc = 0;
  // An earlier case deletes e2e-idp: bring it back, and the RBAC of the first exchange case.
  e.apply(e.webhook_authenticator_yaml("e2e-idp", e.idp->url(), e.idp->ca_data()), &rc);
  REQUIRE(rc == 0);
  e.kubectl("create clusterrole e2e-ns-reader --verb=get,list --resource=namespaces");
  e.kubectl("create clusterrolebinding e2e-devs-read-ns --clusterrole=e2e-ns-reader --group=e2e-devs");
  REQUIRE(E2E::eventually(
      [&] { return !exchange_token(e.exchange_options("e2e-idp"), "alice-token").client_certificate_data.empty(); },
      30));

  // The authenticator is discovered when it is the only one; otherwise the
  // error names them all and the flag picks one.
  std::string names = e.kubectl_ok("get webhookauthenticators -o name");
  std::string get = shell_quote(pinniped_bin()) + " get kubeconfig --kubeconfig " +
                    shell_quote(e.env.at("KUBECONFIG")) + " --pinniped-cli-path " + shell_quote(pinniped_bin()) +
                    " --static-token-env E2E_TOKEN";
  if (std::count(names.begin(), names.end(), '\n') > 1) {
    std::string out = run(get + " 2>&1", &rc);
    CHECK(rc == 1);
    CHECK(out.find("several WebhookAuthenticators found") != std::string::npos);
    get += " --concierge-authenticator-name e2e-idp";
  }
  std::string kc = e.dir->file("alice-plugin.kubeconfig");
  std::string out = run(get + " -o " + shell_quote(kc) + " 2>&1", &rc);
  INFO(out);
  REQUIRE(rc == 0);
  std::string yaml = e.dir->read("alice-plugin.kubeconfig");
  CHECK(yaml.find("--concierge-authenticator-name=e2e-idp") != std::string::npos);
  CHECK(yaml.find("--concierge-endpoint=" + e.expected_login_endpoint()) !=
        std::string::npos);  // from the CredentialIssuer
  CHECK(yaml.find("alice-token") == std::string::npos);

  std::string xdg = e.dir->file("xdg-alice");
  auto as = [&](const std::string &token) {
    return "E2E_TOKEN=" + token + " XDG_CONFIG_HOME=" + shell_quote(xdg) + " HOME=" + shell_quote(e.dir->path) +
           " kubectl --kubeconfig " + shell_quote(kc) + " ";
  };
  int before = exchanges_for(e, "alice");
  out = run(as("alice-token") + "get namespaces -o name 2>&1", &rc);
  CHECK(rc == 0);
  CHECK(out.find("namespace/pinniped-concierge") != std::string::npos);
  CHECK(exchanges_for(e, "alice") == before + 1);
  // The second kubectl reuses the cached certificate: no new exchange.
  out = run(as("alice-token") + "get namespaces -o name 2>&1", &rc);
  CHECK(rc == 0);
  CHECK(out.find("namespace/pinniped-concierge") != std::string::npos);
  CHECK(exchanges_for(e, "alice") == before + 1);
  std::string cache = e.dir->read("xdg-alice/pinniped/credentials.yaml");
  CHECK(cache.find("alice-token") == std::string::npos);
  CHECK(CredentialCache(e.dir->file("xdg-alice/pinniped/credentials.yaml")).load().size() == 1);

  // whoami through kube-apiserver, logged in in-process from the same kubeconfig.
  out = run("E2E_TOKEN=alice-token XDG_CONFIG_HOME=" + shell_quote(xdg) + " " + shell_quote(pinniped_bin()) +
                " whoami --kubeconfig " + shell_quote(kc) + " 2>&1",
            &rc);
  CHECK(rc == 0);
  CHECK(out.find("Username: alice\n") != std::string::npos);
  CHECK(out.find("e2e-devs") != std::string::npos);
  CHECK(exchanges_for(e, "alice") == before + 1);

  // bob logs in too, and RBAC (not the login) says no.
  out = run(as("bob-token") + "get namespaces -o name 2>&1", &rc);
  CHECK(rc != 0);
  CHECK(out.find("User \"bob\" cannot list") != std::string::npos);

  // A wrong token: kubectl fails with our one-line reason, and no token in sight.
  out = run(as("wrong-token") + "get namespaces -o name 2>&1", &rc);
  CHECK(rc != 0);
  CHECK(out.find("pinniped: login failed: authentication failed") != std::string::npos);
  CHECK(out.find("wrong-token") == std::string::npos);
}

TEST_CASE("the local-user-authenticator, reading user Secrets from the cluster, is the concierge's IDP") {
  auto &e = E2E::get();
  int rc = 0;
  std::string out = e.kubectl("apply -k manifests/local-user-authenticator", &rc);
  REQUIRE(rc == 0);
  // A user Secret written by add-user (password on stdin), then applied.
  std::string secret = run("echo 'carol-pass' | " + pinniped_bin() +
                               " local-user-authenticator add-user carol --groups e2e-devs,ops --cost 4",
                           &rc);
  REQUIRE(rc == 0);
  e.apply(secret, &rc);
  REQUIRE(rc == 0);
  // The authenticator runs as a host process with its ServiceAccount's
  // token (its manifests' RBAC), serving a certificate for 127.0.0.1.
  std::string token = e.service_account_token("local-user-authenticator", "local-user-authenticator", 3600);
  e.dir->write("lua.kubeconfig",
               "apiVersion: v1\nkind: Config\ncurrent-context: sa\nclusters:\n- name: e2e\n  cluster:\n    server: " +
                   e.server() + "\n    certificate-authority: ca.crt\nusers:\n- name: sa\n  user:\n    token: " +
                   token + "\ncontexts:\n- name: sa\n  context: {cluster: e2e, user: sa}\n");
  auto ca = make_self_signed_ca("lua-e2e-ca", std::chrono::hours(1));
  auto leaf = serving_cert(ca, {"127.0.0.1"});
  e.dir->write("lua.crt", leaf.cert_pem);
  e.dir->write("lua.key", leaf.key_pem);
  Process lua({pinniped_bin(), "local-user-authenticator", "--listen", "127.0.0.1:0", "--port-file",
               e.dir->file("lua.port"), "--kubeconfig", e.dir->file("lua.kubeconfig"), "--tls-cert",
               e.dir->file("lua.crt"), "--tls-key", e.dir->file("lua.key")},
              e.dir->file("lua.log"));
  int port = wait_for_port_file(lua, e.dir->file("lua.port"), std::chrono::seconds(20 * slow_factor()));
  REQUIRE(port > 0);
  e.apply(e.webhook_authenticator_yaml("local-users", "https://127.0.0.1:" + std::to_string(port) + "/authenticate",
                                       pinniped::detail::base64_encode(ca.cert_pem)),
          &rc);
  REQUIRE(rc == 0);
  REQUIRE(E2E::eventually([&] {
    return json::get_string(at(e.kubectl_json("get webhookauthenticator local-users"), "status"), "phase", "") ==
           "Ready";
  }));
  ClusterCredential cred;
  REQUIRE(E2E::eventually(
      [&] {
        cred = exchange_token(e.exchange_options("local-users"), "carol:carol-pass");
        return true;
      },
      20));
  auto chain = CertificateChain::parse(cred.client_certificate_data);
  CHECK(pinniped::detail::common_name(&chain->get()->subject) == "carol");
  CHECK(pinniped::detail::organizations(&chain->get()->subject) == std::vector<std::string>{"e2e-devs", "ops"});
  // kube-apiserver recognises carol; her group e2e-devs may list namespaces.
  e.dir->write("carol.crt", cred.client_certificate_data);
  e.dir->write("carol.key", cred.client_key_data);
  out = run("kubectl --kubeconfig /dev/null --server " + e.server() + " --certificate-authority " +
                e.dir->file("ca.crt") + " --client-certificate " + e.dir->file("carol.crt") + " --client-key " +
                e.dir->file("carol.key") + " get namespaces 2>&1",
            &rc);
  CHECK(rc == 0);
  CHECK(out.find("local-user-authenticator") != std::string::npos);
  // A wrong password fails; deleting the Secret removes the user.
  try {
    exchange_token(e.exchange_options("local-users"), "carol:wrong");
    FAIL("a wrong password was accepted");
  } catch (const Error &err) {
    CHECK(err.code == 401);
  }
  e.kubectl_ok("delete secret carol -n local-user-authenticator");
  CHECK(E2E::eventually(
      [&] {
        try {
          exchange_token(e.exchange_options("local-users"), "carol:carol-pass");
          return false;
        } catch (const Error &err) {
          return err.code == 401;
        }
      },
      20));
  CHECK(lua.log().find("carol-pass") == std::string::npos);
  lua.signal(SIGTERM);
  CHECK(lua.wait(std::chrono::seconds(10)) == 0);
}

// ---------------------------------------------------------------------------
// Logins on clusters that refuse anonymous requests (k3s): the anonymous
// probe, the direct frontend and what the user sees.

namespace {
// An anonymous POST of a TokenCredentialRequest body to `base`.
HttpResponse anonymous_post(const std::string &base, const std::string &ca, const std::string &path,
                            const std::string &body, const httplib::Headers &extra = {}) {
  ClientTlsOptions tls;
  tls.ca_pem = ca;
  HttpsClient c(base, tls);
  httplib::Headers h = {{"Content-Type", "application/json"}};
  h.insert(extra.begin(), extra.end());
  return c.request("POST", path, h, body, std::chrono::seconds(10));
}
const std::string kTcr = "/apis/login.concierge.pinniped.dev/v1alpha1/tokencredentialrequests";
const std::string kWhoAmI = "/apis/identity.concierge.pinniped.dev/v1alpha1/whoamirequests";
const std::string kWhoAmIBody =
    R"({"apiVersion":"identity.concierge.pinniped.dev/v1alpha1","kind":"WhoAmIRequest","spec":{}})";
std::string tcr(const std::string &token, const std::string &authenticator = "e2e-idp") {
  TokenCredentialRequest r;
  r.api_version = "login.concierge.pinniped.dev/v1alpha1";
  r.token = token;
  r.authenticator = {"authentication.concierge.pinniped.dev", "WebhookAuthenticator", authenticator};
  return r.to_json(true).serialize();
}
// A concierge at `base` (verified with `ca`) answers exchanges within 30 s:
// an empty one gets its own 422.
bool answers_exchanges(const std::string &base, const std::string &ca) {
  return E2E::eventually(
      [&] {
        try {
          return anonymous_post(base, ca, kTcr, tcr("")).status == 422;
        } catch (const std::exception &) {
          return false;
        }
      },
      30);
}
// Makes sure e2e-idp points at the fake IDP and works for alice.
void ensure_idp(E2E &e) {
  int rc = 0;
  e.apply(e.webhook_authenticator_yaml("e2e-idp", e.idp->url(), e.idp->ca_data()), &rc);
  REQUIRE(rc == 0);
  e.kubectl("create clusterrole e2e-ns-reader --verb=get,list --resource=namespaces");
  e.kubectl("create clusterrolebinding e2e-devs-read-ns --clusterrole=e2e-ns-reader --group=e2e-devs");
  REQUIRE(E2E::eventually([&] { return alice_can_exchange(e); }, 30));
}
// Every kubectl on the machine: the one on PATH and the versioned ones of
// the Google Cloud SDK layout, each once.
std::vector<std::string> all_kubectls() {
  std::vector<std::string> out, seen;
  std::string listing =
      run("{ command -v kubectl; ls -1 /usr/lib/google-cloud-sdk/bin/kubectl.1.* 2>/dev/null; } | sort -u");
  std::istringstream in(listing);
  for (std::string l; std::getline(in, l);) {
    if (l.empty() || access(l.c_str(), X_OK) != 0) continue;
    std::string real = run("readlink -f " + shell_quote(l));
    if (std::find(seen.begin(), seen.end(), real) != seen.end()) continue;
    seen.push_back(real);
    out.push_back(l);
  }
  return out;
}
}  // namespace

TEST_CASE("the concierge learns whether kube-apiserver lets anonymous exchanges through and says so") {
  auto &e = E2E::get();
  // What kube-apiserver does with an anonymous exchange, seen from outside.
  // k3s's profile is the one that refuses (--anonymous-auth=false).
  CHECK(e.anonymous_auth() == (e.profile() == "kubeadm"));
  auto res = anonymous_post(e.server(), e.kube_ca_pem, kTcr, tcr(""));
  INFO(res.body.substr(0, 300));
  if (e.anonymous_auth()) {
    CHECK(res.status == 422);  // reached the concierge, which wants a token
  } else {
    CHECK(res.status == 401);  // refused by kube-apiserver itself
  }
  std::string want = e.anonymous_auth() ? "\"result\":\"open\"" : "\"result\":\"unauthorized\"";
  CHECK(E2E::eventually([&] { return e.log().find(want) != std::string::npos; }, 30));
  auto f = e.published();
  REQUIRE(f);
  CHECK(f->server == e.expected_login_endpoint());
}

TEST_CASE("every kubectl on the machine logs in with a kubeconfig from get kubeconfig, with no endpoint flag") {
  auto &e = E2E::get();
  ensure_idp(e);
  int rc = 0;
  std::string names = e.kubectl_ok("get webhookauthenticators -o name");
  std::string kc = e.dir->file("every-kubectl.kubeconfig");
  std::string out =
      run(shell_quote(pinniped_bin()) + " get kubeconfig --kubeconfig " + shell_quote(e.env.at("KUBECONFIG")) +
              " --pinniped-cli-path " + shell_quote(pinniped_bin()) +
              " --static-token-env E2E_TOKEN --concierge-authenticator-name e2e-idp -o " + shell_quote(kc) + " 2>&1",
          &rc);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("warning") == std::string::npos);
  auto kubectls = all_kubectls();
  REQUIRE(!kubectls.empty());
  int n = 0;
  for (const auto &k : kubectls) {
    INFO(k);
    std::string xdg = e.dir->file("xdg-every-" + std::to_string(n++));
    std::string as = "E2E_TOKEN=alice-token XDG_CONFIG_HOME=" + shell_quote(xdg) + " HOME=" + shell_quote(e.dir->path) +
                     " " + shell_quote(k) + " --kubeconfig " + shell_quote(kc) + " get ns -o name 2>&1";
    out = run(as, &rc);  // cold: one exchange
    INFO(out);
    CHECK(rc == 0);
    CHECK(out.find("namespace/pinniped-concierge") != std::string::npos);
    out = run(as, &rc);  // warm: the cache
    CHECK(rc == 0);
    CHECK(out.find("namespace/pinniped-concierge") != std::string::npos);
    // A wrong password (token) says authentication failed, nothing else.
    out = run("E2E_TOKEN=wrong-token XDG_CONFIG_HOME=" + shell_quote(xdg + "-wrong") + " " + shell_quote(k) +
                  " --kubeconfig " + shell_quote(kc) + " get ns -o name 2>&1",
              &rc);
    CHECK(rc != 0);
    CHECK(out.find("pinniped: login failed: authentication failed") != std::string::npos);
  }
}

TEST_CASE("on the direct frontend WhoAmIRequest knows a user by certificate only, and forged headers change nothing") {
  auto &e = E2E::get();
  ensure_idp(e);
  auto f = e.published();
  REQUIRE(f);
  std::string ca = *detail::base64_decode(secret_bundle(e));
  httplib::Headers forged = {
      {"X-Remote-User", "system:admin"}, {"X-Remote-Group", "system:masters"}, {"Impersonate-User", "system:admin"}};
  auto who = [&](const ClientTlsOptions &tls) {
    HttpsClient c(e.direct_base(), tls);
    httplib::Headers h = forged;
    h.emplace("Content-Type", "application/json");
    auto res = c.request("POST", kWhoAmI, h, kWhoAmIBody, std::chrono::seconds(10));
    REQUIRE(res.status == 201);
    return at(at(at(json::parse(res.body), "status"), "kubernetesUserInfo"), "user");
  };
  ClientTlsOptions tls;
  tls.ca_pem = ca;
  auto anon = who(tls);
  CHECK(json::get_string(anon, "username", "") == "system:anonymous");
  // The certificate a login gave alice (signed by the cluster signer).
  auto cred = exchange_token(e.exchange_options("e2e-idp"), "alice-token");
  tls.client_cert_pem = cred.client_certificate_data;
  tls.client_key_pem = cred.client_key_data;
  auto alice = who(tls);
  CHECK(json::get_string(alice, "username", "") == "alice");
  auto groups = json::get_string_list(alice, "groups", "");
  CHECK(std::find(groups.begin(), groups.end(), "e2e-devs") != groups.end());
  CHECK(std::find(groups.begin(), groups.end(), "system:masters") == groups.end());
  // The front-proxy client certificate is nobody here: headers are never trusted.
  tls.client_cert_pem = pinniped::read_file(e.env.at("FRONT_PROXY_CLIENT_CERT"));
  tls.client_key_pem = pinniped::read_file(e.env.at("FRONT_PROXY_CLIENT_KEY"));
  CHECK(json::get_string(who(tls), "username", "") == "system:anonymous");
  // A forged header does not make an exchange anyone else's either.
  auto res = anonymous_post(e.direct_base(), ca, kTcr, tcr("bob-token"), forged);
  REQUIRE(res.status == 201);
  auto cert = json::get_string(at(at(json::parse(res.body), "status"), "credential"), "clientCertificateData", "");
  CHECK(pinniped::detail::common_name(&CertificateChain::parse(cert)->get()->subject) == "bob");
  // No metrics for the outside world.
  HttpsClient c(e.direct_base(), ClientTlsOptions{ca, "", "", "", false});
  CHECK(c.request("GET", "/metrics", {}, "", std::chrono::seconds(10)).status == 404);
}

TEST_CASE("failed exchanges on the direct frontend are limited per client address") {
  auto &e = E2E::get();
  ensure_idp(e);
  std::string addr = e.env.at("ADDR");
  Process limited({pinniped_bin(), "concierge", "--listen", addr + ":10252", "--kubeconfig",
                   e.dir->file("concierge.kubeconfig"), "--signer-root", e.env.at("SIGNER_ROOT"), "--reload-interval",
                   "1s", "--direct-listen", addr + ":10446", "--direct-failure-limit", "4"},
                  e.dir->file("limited.log"));
  std::string base = "https://" + addr + ":10446";
  std::string ca = *detail::base64_decode(secret_bundle(e));
  REQUIRE(answers_exchanges(base, ca));
  int idp_before = e.idp->requests();
  auto failed = [&](const std::string &token) {
    auto res = anonymous_post(base, ca, kTcr, tcr(token));
    REQUIRE(res.status == 201);
    return json::get_string(at(json::parse(res.body), "status"), "message", "") == "authentication failed";
  };
  int refused = 0;
  for (int i = 0; i < 4; i++) CHECK(failed("guess-" + std::to_string(i)));
  CHECK(e.idp->requests() == idp_before + 4);
  for (int i = 0; i < 6; i++) refused += failed("guess-more-" + std::to_string(i));
  CHECK(refused == 6);
  CHECK(failed("alice-token"));                // over the budget, a right token waits too
  CHECK(e.idp->requests() == idp_before + 4);  // and the IDP was not asked again
  std::istringstream in(limited.log());
  int logged = 0;
  for (std::string l; std::getline(in, l);) logged += l.find("\"reasonClass\":\"rate_limited\"") != std::string::npos;
  CHECK(logged == 7);
  CHECK(limited.log().find("guess-") == std::string::npos);
  limited.signal(SIGTERM);
  CHECK(limited.wait(std::chrono::seconds(10)) == 0);
}

TEST_CASE("the direct Service's load-balancer addresses are followed by the certificate and the CredentialIssuer") {
  auto &e = E2E::get();
  ensure_idp(e);
  // A second node address appears (ServiceLB on another node).
  const std::string other = "10.234.0.2";
  run("ip addr add " + other + "/32 dev lo 2>/dev/null");
  e.set_direct_ingress({other, e.env.at("ADDR")});
  std::string base = "https://" + other + ":" + std::to_string(E2E::kDirectPort);
  std::string ca = *detail::base64_decode(secret_bundle(e));
  // The certificate now carries the new address (verified by IP).
  CHECK(answers_exchanges(base, ca));
  if (!e.anonymous_auth()) {
    CHECK(E2E::eventually(
        [&] {
          auto f = e.published();
          return f && f->server == base;
        },
        30));
  }
  CHECK(E2E::eventually([&] { return alice_can_exchange(e); }, 30));
  e.set_direct_ingress({e.env.at("ADDR")});
  CHECK(E2E::eventually(
      [&] {
        auto f = e.published();
        return f && f->server == e.expected_login_endpoint();
      },
      30));
  run("ip addr del " + other + "/32 dev lo 2>/dev/null");
}

namespace {
int count_lines(const std::string &log, const std::string &what) {
  std::istringstream in(log);
  int n = 0;
  for (std::string l; std::getline(in, l);) n += l.find(what) != std::string::npos;
  return n;
}
}  // namespace

TEST_CASE("one writer among replicas: a Lease elects it, a successor takes over when it dies, no status flaps") {
  auto &e = E2E::get();
  ensure_idp(e);
  std::string addr = e.env.at("ADDR");
  auto lease_holder = [&] {
    auto v = e.kubectl_json("get lease -n pinniped-concierge pinniped-concierge-leader");
    return json::get_string(at(v, "spec"), "holderIdentity", "");
  };
  REQUIRE(E2E::eventually([&] { return e.log().find("leader election: leading") != std::string::npos; }, 30));
  std::string first = lease_holder();
  CHECK(!first.empty());
  Process b(
      {pinniped_bin(), "concierge", "--listen", addr + ":10253", "--kubeconfig", e.dir->file("concierge.kubeconfig"),
       "--signer-root", e.env.at("SIGNER_ROOT"), "--reload-interval", "1s", "--direct-listen", "0.0.0.0:10447"},
      e.dir->file("leader-b.log"));
  REQUIRE(E2E::eventually([&] { return b.log().find("\"msg\":\"serving\"") != std::string::npos; }, 30));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  CHECK(lease_holder() == first);  // b follows
  CHECK(b.log().find("leader election: leading") == std::string::npos);
  // Both replicas serve exchanges.
  std::string ca = *detail::base64_decode(secret_bundle(e));
  CHECK(anonymous_post("https://" + addr + ":10447", ca, kTcr, tcr("")).status == 422);
  // A quiet stretch: nobody rewrites the CredentialIssuer.
  int writes_a = count_lines(e.log(), "CredentialIssuer updated"),
      writes_b = count_lines(b.log(), "CredentialIssuer updated");
  std::this_thread::sleep_for(std::chrono::seconds(6));
  CHECK(count_lines(e.log(), "CredentialIssuer updated") == writes_a);
  CHECK(count_lines(b.log(), "CredentialIssuer updated") == writes_b);
  CHECK(writes_b == 0);
  // The leader dies without a word (no release): b takes over within the
  // lease duration (15 s) and a retry period, and writes from then on.
  auto killed = Steady::now();
  e.concierge->signal(SIGKILL);
  e.concierge->wait(std::chrono::seconds(10));
  REQUIRE(E2E::eventually([&] { return b.log().find("leader election: lease taken over") != std::string::npos; }, 40));
  auto took = std::chrono::duration_cast<std::chrono::seconds>(Steady::now() - killed).count();
  CHECK(took <= 15 + 2 + 3 * slow_factor());
  CHECK(lease_holder() != first);
  // A change only a writer publishes: b publishes it.
  const std::string other = "10.234.0.3";
  run("ip addr add " + other + "/32 dev lo 2>/dev/null");
  e.set_direct_ingress({other});
  if (!e.anonymous_auth())
    CHECK(E2E::eventually(
        [&] {
          auto f = e.published();
          return f && f->server == "https://" + other + ":" + std::to_string(E2E::kDirectPort);
        },
        30));
  e.set_direct_ingress({addr});
  CHECK(E2E::eventually(
      [&] {
        auto f = e.published();
        return f && f->server == e.expected_login_endpoint();
      },
      30));
  run("ip addr del " + other + "/32 dev lo 2>/dev/null");
  // The first concierge comes back as a follower; when b stops, it releases
  // the lease and the first leads again at once.
  e.start_concierge();
  REQUIRE(E2E::eventually([&] { return e.log().find("\"msg\":\"serving\"") != std::string::npos; }, 30));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  CHECK(e.log().find("leader election: leading") == std::string::npos);
  b.signal(SIGTERM);
  CHECK(b.wait(std::chrono::seconds(10)) == 0);
  CHECK(b.log().find("leader election: lease released") != std::string::npos);
  CHECK(E2E::eventually([&] { return e.log().find("leader election: leading") != std::string::npos; }, 8));
  run("cp " + shell_quote(e.dir->file("leader-b.log")) + " " + shell_quote(e.env.at("LOGS")) + "/ 2>/dev/null");
  REQUIRE(E2E::eventually([&] { return alice_can_exchange(e); }, 30));
}

// The CSR strategy: certificates from kube-controller-manager's signer
// through the CSR API, no signer key in the concierge (k3s profiles: the
// controller-manager signs kube-apiserver-client requests with
// client-ca.nochain.crt and client-ca.key, as k3s runs it; with a chained
// client CA that is the intermediate alone).

namespace {
// kube-controller-manager's CSR signer (support.hpp), its log kept per start.
std::unique_ptr<Process> start_controller_manager(const E2E &e, const std::string &duration) {
  static int n = 0;
  return std::make_unique<Process>(controller_manager_argv(e.env, duration),
                                   e.dir->file("kube-controller-manager-" + std::to_string(++n) + ".log"));
}
// Our CSRs still in the cluster.
int leftover_csrs(const E2E &e) {
  std::string out = e.kubectl_ok("get csr -l concierge.pinniped.dev/issued-by=pinniped-concierge -o name");
  return static_cast<int>(std::count(out.begin(), out.end(), '\n'));
}
// Where logins go, once the CredentialIssuer publishes a frontend (a
// strategy in Error withdraws it).
ExchangeOptions published_options(const E2E &e) {
  ExchangeOptions o;
  o.authenticator_name = "e2e-idp";
  bool found = E2E::eventually(
      [&] {
        auto f = e.published();
        if (!f) return false;
        o.endpoint = f->server;
        o.tls.ca_pem = f->ca_pem;
        return true;
      },
      30);
  if (!found) throw std::runtime_error("the CredentialIssuer publishes no frontend");
  return o;
}
// The CredentialIssuer's first strategy.
picojson::value issuer_strategy(const E2E &e) {
  auto ci = e.kubectl_json("get credentialissuer pinniped-concierge-config");
  return at(at(ci, "status"), "strategies").get<picojson::array>().at(0);
}
}  // namespace

TEST_CASE("the CSR strategy issues certificates through the CSR API, leaves no CSR behind, and refuses long ones") {
  auto &e = E2E::get();
  if (e.profile() != "k3s") {
    SUCCEED("the CSR strategy runs on the k3s profiles");
    return;
  }
  ensure_idp(e);
  int rc = 0;
  std::string out = e.kubectl("apply -f manifests/components/csr-strategy/rbac.yaml", &rc);
  REQUIRE(rc == 0);
  auto kcm = start_controller_manager(e, "10m");
  // auto, with no signer files to find: the CSR API.
  auto csr_argv = [&](const std::vector<std::string> &extra) {
    auto a = e.concierge_argv();
    for (size_t i = 0; i + 1 < a.size(); i++)
      if (a[i] == "--signer-root") a[i + 1] = e.dir->file("no-signer-here");
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto restart = [&](const std::vector<std::string> &extra) {
    e.stop_concierge();
    e.concierge = std::make_unique<Process>(csr_argv(extra), e.dir->file("concierge.log"));
    REQUIRE(E2E::eventually(
        [&] {
          std::string l = e.log();
          return l.find("leader election: leading") != std::string::npos &&
                 l.find("\"msg\":\"serving\"") != std::string::npos;
        },
        40));
  };
  restart({});
  CHECK(E2E::eventually(
      [&] {
        auto s = issuer_strategy(e);
        return json::get_string(s, "type", "") == "KubeCertificateSigningRequestAPI" &&
               json::get_string(s, "status", "") == "Success";
      },
      30));
  CHECK(e.log().find("issuing certificates through the CSR API") != std::string::npos);

  SECTION("kubectl logs in as the user through the CSR strategy, and no CSR remains") {
    REQUIRE(E2E::eventually([&] { return alice_can_exchange(e); }, 30));
    auto before = Clock::now();
    auto cred = exchange_token(e.exchange_options("e2e-idp"), "alice-token");
    REQUIRE(!cred.client_certificate_data.empty());
    auto chain = CertificateChain::parse(cred.client_certificate_data);
    const mbedtls_x509_crt *c = chain->get();
    // Signed by the cluster (client-ca.crt), for alice and her groups,
    // with the CSR API's minimum lifetime (our 5 minutes raised to 600 s).
    auto client_ca = CertificateChain::parse(pinniped::read_file(e.env.at("CLIENT_CA")));
    uint32_t flags = 0;
    CHECK(mbedtls_x509_crt_verify(const_cast<mbedtls_x509_crt *>(c), client_ca->get(), nullptr, nullptr, &flags,
                                  nullptr, nullptr) == 0);
    CHECK(detail::common_name(&c->subject) == "alice");
    auto orgs = detail::organizations(&c->subject);  // Go's signer sorts them
    std::sort(orgs.begin(), orgs.end());
    CHECK(orgs == std::vector<std::string>{"e2e-all", "e2e-devs"});
    auto not_after = detail::from_x509_time(c->valid_to);
    INFO("asked at " << format_rfc3339(before) << "; valid from "
                     << format_rfc3339(detail::from_x509_time(c->valid_from)) << " to " << format_rfc3339(not_after));
    // (1.20 counts the signing duration from its backdated notBefore.)
    auto life = not_after - detail::from_x509_time(c->valid_from);
    CHECK(life >= std::chrono::seconds(600));
    CHECK(life <= std::chrono::seconds(600 + 300));
    CHECK(not_after <= before + std::chrono::seconds(600 + 300));
    CHECK(not_after > before + std::chrono::minutes(4));
    CHECK(cred.expiration_timestamp == format_rfc3339(not_after));
    CHECK(leftover_csrs(e) == 0);
    // The whole way, as a person does it: get kubeconfig, then kubectl.
    std::string kc = e.dir->file("csr-alice.kubeconfig");
    out =
        run(shell_quote(pinniped_bin()) + " get kubeconfig --kubeconfig " + shell_quote(e.env.at("KUBECONFIG")) +
                " --pinniped-cli-path " + shell_quote(pinniped_bin()) +
                " --static-token-env E2E_TOKEN --concierge-authenticator-name e2e-idp -o " + shell_quote(kc) + " 2>&1",
            &rc);
    INFO(out);
    REQUIRE(rc == 0);
    out = run("E2E_TOKEN=alice-token XDG_CONFIG_HOME=" + shell_quote(e.dir->file("xdg-csr")) +
                  " kubectl --kubeconfig " + shell_quote(kc) + " get ns -o name 2>&1",
              &rc);
    INFO(out);
    CHECK(rc == 0);
    CHECK(out.find("namespace/pinniped-concierge") != std::string::npos);
    CHECK(leftover_csrs(e) == 0);
    // The audit line names the strategy; kube-apiserver holds no key of ours.
    CHECK(e.log().find("\"strategy\":\"csr\"") != std::string::npos);
    CHECK(e.log().find("BEGIN") == std::string::npos);
  }

  SECTION("a concierge killed mid-exchange leaves nothing after its restart") {
    // No signer running: the exchange waits for its certificate.
    kcm->signal(SIGTERM);
    kcm->wait(std::chrono::seconds(10));
    restart({"--strategy", "csr", "--csr-timeout", "10s"});
    auto o = published_options(e);
    std::string thread_error;
    std::thread t([&] {
      try {
        exchange_token(o, "alice-token");
      } catch (const std::exception &x) {
        thread_error = x.what();
      }
    });
    bool pending = E2E::eventually([&] { return leftover_csrs(e) == 1; }, 20);
    e.concierge->signal(SIGKILL);
    e.concierge->wait(std::chrono::seconds(10));
    t.join();
    INFO("the exchange ended with: " << thread_error);
    REQUIRE(pending);
    CHECK(leftover_csrs(e) == 1);  // the dead process could not clean up
    restart({"--strategy", "csr"});
    CHECK(E2E::eventually([&] { return leftover_csrs(e) == 0; }, 20));
    CHECK(e.log().find("deleted leftover CertificateSigningRequests") != std::string::npos);
  }

  SECTION("with no controller-manager the exchange fails within the bounded wait and the CSR is deleted") {
    kcm->signal(SIGTERM);
    kcm->wait(std::chrono::seconds(10));
    restart({"--strategy", "csr", "--csr-timeout", "3s"});
    auto o = published_options(e);
    auto started = Steady::now();
    CHECK_THROWS_WITH(exchange_token(o, "alice-token"), "authentication failed");
    auto took = std::chrono::duration_cast<std::chrono::seconds>(Steady::now() - started).count();
    CHECK(took < 3 + 10 * slow_factor());  // the wait is bounded, not the 30 s a client gives up at
    CHECK(leftover_csrs(e) == 0);
    CHECK(E2E::eventually(
        [&] {
          auto s = issuer_strategy(e);
          return json::get_string(s, "status", "") == "Error" && json::get_string(s, "reason", "") == "CSRNotSigned" &&
                 json::get_string(s, "message", "").find("kube-controller-manager") != std::string::npos;
        },
        20));
  }

  SECTION(
      "a signer that ignores expirationSeconds gets no certificate to the client, and the CredentialIssuer says why") {
    kcm->signal(SIGTERM);
    kcm->wait(std::chrono::seconds(10));
    kcm = start_controller_manager(e, "");  // the default: 8760h
    restart({"--strategy", "csr"});
    auto o = published_options(e);  // while the strategy still says Success
    REQUIRE(E2E::eventually(
        [&] {
          auto r = anonymous_post(o.endpoint, o.tls.ca_pem, kTcr, tcr("alice-token"));
          return r.status == 201 && e.log().find("CertificateLifetimeTooLong") != std::string::npos;
        },
        30));
    // What the client receives: authentication failed and no credential.
    auto res = anonymous_post(o.endpoint, o.tls.ca_pem, kTcr, tcr("alice-token"));
    INFO(res.body);
    CHECK(res.status == 201);
    auto st = at(json::parse(res.body), "status");
    CHECK(json::get_string(st, "message", "") == "authentication failed");
    CHECK(json::field(st, "credential") == nullptr);
    CHECK(res.body.find("CERTIFICATE") == std::string::npos);
    CHECK(leftover_csrs(e) == 0);
    CHECK(E2E::eventually(
        [&] {
          auto s = issuer_strategy(e);
          return json::get_string(s, "status", "") == "Error" &&
                 json::get_string(s, "reason", "") == "CertificateLifetimeTooLong" &&
                 json::get_string(s, "message", "").find("8760h") != std::string::npos;
        },
        20));
  }

  kcm->signal(SIGTERM);
  kcm->wait(std::chrono::seconds(10));
  e.stop_concierge();
  e.start_concierge();
  REQUIRE(E2E::eventually(
      [&] {
        auto s = issuer_strategy(e);
        return json::get_string(s, "type", "") == "KubeClusterSigningCertificate" &&
               json::get_string(s, "status", "") == "Success";
      },
      40));
  REQUIRE(E2E::eventually([&] { return alice_can_exchange(e); }, 30));
}

TEST_CASE("issued certificates name the signer that matches the key, also when client-ca.crt holds a chain") {
  auto &e = E2E::get();
  ensure_idp(e);
  auto cred = exchange_token(e.exchange_options("e2e-idp"), "alice-token");
  auto issued = CertificateChain::parse(cred.client_certificate_data);
  // The client CA file as kube-apiserver reads it: one CA, or the
  // intermediate then the root (k3s's custom CAs); the key is the first's.
  auto ca_file = CertificateChain::parse(pinniped::read_file(e.env.at("CLIENT_CA")));
  int n = 0;
  for (const mbedtls_x509_crt *c = ca_file->get(); c && c->raw.len; c = c->next) n++;
  CHECK(n == (e.env.count("CLIENT_CA_CHAIN") && e.env.at("CLIENT_CA_CHAIN") == "1" ? 2 : 1));
  const mbedtls_x509_crt *signer = ca_file->get();
  // Issuer bytes equal the signer's subject bytes (Go compares them raw).
  CHECK(std::string(reinterpret_cast<const char *>(issued->get()->issuer_raw.p), issued->get()->issuer_raw.len) ==
        std::string(reinterpret_cast<const char *>(signer->subject_raw.p), signer->subject_raw.len));
  uint32_t flags = 0;
  CHECK(mbedtls_x509_crt_verify(issued->get(), ca_file->get(), nullptr, nullptr, &flags, nullptr, nullptr) == 0);
  // And kube-apiserver, which trusts that file, knows alice by it.
  e.dir->write("chain-alice.crt", cred.client_certificate_data);
  e.dir->write("chain-alice.key", cred.client_key_data);
  int rc = 0;
  std::string out = run("kubectl --kubeconfig /dev/null --server " + e.server() + " --certificate-authority " +
                            e.dir->file("ca.crt") + " --client-certificate " + e.dir->file("chain-alice.crt") +
                            " --client-key " + e.dir->file("chain-alice.key") + " get ns -o name 2>&1",
                        &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("namespace/pinniped-concierge") != std::string::npos);
}

// Last: it restarts the concierge without its direct frontend.
namespace {
std::string jwt_authenticator_yaml(const std::string &name, const std::string &issuer, const std::string &audience,
                                   const std::string &ca_data, const std::string &extra = "") {
  return "apiVersion: authentication.concierge.pinniped.dev/v1alpha1\nkind: JWTAuthenticator\nmetadata:\n  name: " +
         name + "\nspec:\n  issuer: " + issuer + "\n  audience: " + audience + "\n" +
         (ca_data.empty() ? "" : "  tls:\n    certificateAuthorityData: " + ca_data + "\n") + extra;
}
// The JWTAuthenticator's status once its phase is `phase` (polled), else the last one seen.
picojson::value jwt_status(const E2E &e, const std::string &name, const std::string &phase) {
  picojson::value st;
  E2E::eventually(
      [&] {
        auto o = e.kubectl_json("get jwtauthenticator " + name);
        const auto *s = json::field(o, "status");
        if (!s) return false;
        st = *s;
        return json::get_string(st, "phase", "") == phase;
      },
      30);
  return st;
}
std::map<std::string, std::string> condition_statuses(const picojson::value &status) {
  std::map<std::string, std::string> out;
  if (const auto *cs = json::field(status, "conditions"); cs && cs->is<picojson::array>())
    for (const auto &c : cs->get<picojson::array>())
      out[json::get_string(c, "type", "")] =
          json::get_string(c, "status", "") + "/" + json::get_string(c, "reason", "");
  return out;
}
}  // namespace

TEST_CASE("OIDC: a JWTAuthenticator, get kubeconfig, and kubectl logged in by a real browser and by the device flow") {
  auto &e = E2E::get();
  int rc = 0;
  // A real OpenID provider (oidc-provider) on the namespace's loopback; ID
  // tokens live 20 s, so a refresh happens within the case.
  OidcTestProvider idp(*e.dir, {"--id-token-ttl", "20"});
  std::string ca_data = detail::base64_encode(idp.ca_pem);
  e.apply(jwt_authenticator_yaml("e2e-oidc", idp.issuer, "pinniped-cli", ca_data), &rc);
  REQUIRE(rc == 0);
  auto st = jwt_status(e, "e2e-oidc", "Ready");
  INFO(st.serialize());
  auto conds = condition_statuses(st);
  for (const char *t : {"TLSConfigurationValid", "IssuerURLValid", "DiscoveryURLValid", "JWKSURLValid",
                        "JWKSFetchValid", "AuthenticatorValid", "Ready"})
    CHECK(conds[t] == "True/Success");
  e.kubectl("create clusterrolebinding e2e-oidc-devs-read-ns --clusterrole=e2e-ns-reader --group=devs");

  // Broken ones say where they break, in upstream's conditions.
  e.apply(jwt_authenticator_yaml("e2e-oidc-down", "https://127.0.0.1:1/nowhere", "pinniped-cli", ca_data), &rc);
  e.apply(jwt_authenticator_yaml("e2e-oidc-cel", idp.issuer, "pinniped-cli", ca_data,
                                 "  claimValidationRules:\n  - expression: 'claims.hd == \"example.com\"'\n"),
          &rc);
  auto down = condition_statuses(jwt_status(e, "e2e-oidc-down", "Error"));
  CHECK(down["DiscoveryURLValid"] == "False/InvalidDiscoveryProbe");
  CHECK(down["JWKSFetchValid"] == "Unknown/UnableToValidate");
  CHECK(down["Ready"] == "False/NotReady");
  auto cel = condition_statuses(jwt_status(e, "e2e-oidc-cel", "Error"));
  CHECK(cel["AuthenticatorValid"].rfind("False/", 0) == 0);
  CHECK(cel["Ready"] == "False/NotReady");
  e.kubectl("delete jwtauthenticator e2e-oidc-down e2e-oidc-cel");

  // get kubeconfig: no static token, so the JWTAuthenticator's issuer.
  std::string kc = e.dir->file("oidc.kubeconfig");
  std::string get = shell_quote(pinniped_bin()) + " get kubeconfig --kubeconfig " +
                    shell_quote(e.env.at("KUBECONFIG")) + " --pinniped-cli-path " + shell_quote(pinniped_bin()) +
                    " --concierge-authenticator-name e2e-oidc";
  std::string out = run(get + " -o " + shell_quote(kc) + " 2>&1", &rc);
  INFO(out);
  REQUIRE(rc == 0);
  std::string yaml = e.dir->read("oidc.kubeconfig");
  auto docs = parse_yaml_documents(yaml);
  REQUIRE(docs.size() == 1);
  auto args = json::get_string_list(
      at(at(docs[0], "users").get<picojson::array>().at(0), "user").get<picojson::object>().at("exec"), "args", "args");
  REQUIRE(args.size() > 2);
  CHECK(args[0] == "login");
  CHECK(args[1] == "oidc");
  CHECK(yaml.find("--issuer=" + idp.issuer) != std::string::npos);
  CHECK(yaml.find("--client-id=pinniped-cli") != std::string::npos);
  CHECK(yaml.find("--ca-bundle-data=" + ca_data) != std::string::npos);
  CHECK(yaml.find("--concierge-authenticator-type=jwt") != std::string::npos);

  // The browser flow: kubectl runs the plugin, which opens "the browser"
  // (headless chromium signing in as alice).
  std::string xdg = e.dir->file("xdg-oidc");
  std::string browser_log = e.dir->file("oidc-browser.log");
  auto as = [&](const std::string &browser) {
    return "BROWSER=" + shell_quote(browser) +
           " PINNIPED_TEST_OIDC_USER=alice PINNIPED_TEST_OIDC_PASSWORD=alice-password"
           " PINNIPED_TEST_OIDC_CA=" +
           shell_quote(idp.ca_file) + " PINNIPED_TEST_BROWSER_LOG=" + shell_quote(browser_log) +
           " XDG_CONFIG_HOME=" + shell_quote(xdg) + " kubectl --kubeconfig " + shell_quote(kc) + " ";
  };
  std::string open_browser = oidc_stack() + "/open-browser.sh";
  int before = exchanges_for(e, "alice");
  out = run(as(open_browser) + "get namespaces -o name 2>&1", &rc);
  INFO(out << "\nbrowser:\n" << pinniped::read_file(browser_log));
  CHECK(rc == 0);
  CHECK(out.find("namespace/pinniped-concierge") != std::string::npos);
  CHECK(exchanges_for(e, "alice") == before + 1);
  // The browser's script says how it fared once chromium is gone.
  CHECK(E2E::eventually(
      [&] { return pinniped::read_file(browser_log).find("open-browser: exit 0") != std::string::npos; }, 15));
  // The audit line names the kind.
  CHECK(e.log().find("\"authenticator\":\"JWTAuthenticator/e2e-oidc\"") != std::string::npos);
  // Again: the cached certificate, no browser, no exchange.
  std::string never =
      e.dir->write("never-browser.sh", "#!/bin/sh\ntouch " + shell_quote(e.dir->file("browser-ran")) + "\n");
  ::chmod(never.c_str(), 0755);
  out = run(as(never) + "get namespaces -o name 2>&1", &rc);
  CHECK(rc == 0);
  CHECK(exchanges_for(e, "alice") == before + 1);
  // Without the certificate cache, after the 20 s ID token expired: the
  // refresh token gets a new one, still no browser; a new exchange.
  std::remove((xdg + "/pinniped/credentials.yaml").c_str());
  std::string session_before = pinniped::read_file(xdg + "/pinniped/sessions.yaml");
  std::this_thread::sleep_for(std::chrono::seconds(21));
  out = run(as(never) + "get namespaces -o name 2>&1", &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK(exchanges_for(e, "alice") == before + 2);
  CHECK(::access(e.dir->file("browser-ran").c_str(), F_OK) != 0);
  CHECK(pinniped::read_file(xdg + "/pinniped/sessions.yaml") != session_before);  // rotated tokens
  CHECK(session_before.find("alice-password") == std::string::npos);

  // The device flow, as on a board without a display: kubectl shows the
  // code on stderr and waits; the person signs in elsewhere.
  std::string dkc = e.dir->file("oidc-device.kubeconfig");
  out = run(get + " --oidc-flow device -o " + shell_quote(dkc) + " 2>&1", &rc);
  REQUIRE(rc == 0);
  std::string dxdg = e.dir->file("xdg-oidc-device");
  Process kubectl({"/bin/sh", "-c",
                   "XDG_CONFIG_HOME=" + shell_quote(dxdg) + " exec kubectl --kubeconfig " + shell_quote(dkc) +
                       " get namespaces -o name"},
                  e.dir->file("device-kubectl.log"));
  std::string uri, code;
  REQUIRE(E2E::eventually(
      [&] {
        std::string l = kubectl.log();
        auto at = l.find("To log in, visit ");
        auto mid = l.find(" and enter the code: ", at);
        auto end = l.find('\n', mid);
        if (at == std::string::npos || mid == std::string::npos || end == std::string::npos) return false;
        uri = l.substr(at + 17, mid - at - 17);
        code = l.substr(mid + 21, end - mid - 21);
        return true;
      },
      30));
  auto [brc, bout] = drive_browser(idp, "device", uri, code);
  INFO(bout);
  CHECK(brc == 0);
  CHECK(kubectl.wait(std::chrono::seconds(40)) == 0);
  INFO(kubectl.log());
  CHECK(kubectl.log().find("namespace/pinniped-concierge") != std::string::npos);
  CHECK(exchanges_for(e, "alice") == before + 3);

  // A token the concierge must refuse: right issuer's key, wrong audience
  // (a token the provider made for another client is not at hand: a JWT
  // from another audience is simulated by a JWTAuthenticator that wants one).
  e.apply(jwt_authenticator_yaml("e2e-oidc-other-aud", idp.issuer, "another-client", ca_data), &rc);
  jwt_status(e, "e2e-oidc-other-aud", "Ready");
  std::string id_token;
  {
    auto sessions = parse_yaml_documents(pinniped::read_file(xdg + "/pinniped/sessions.yaml"));
    REQUIRE(sessions.size() == 1);
    std::string text = sessions[0].serialize();
    auto at = text.find("\"id\":{");
    REQUIRE(at != std::string::npos);
    auto tok = text.find("\"token\":\"", at);
    REQUIRE(tok != std::string::npos);
    id_token = text.substr(tok + 9, text.find('"', tok + 9) - tok - 9);
  }
  auto x = e.exchange_options("e2e-oidc-other-aud");
  x.authenticator_kind = "JWTAuthenticator";
  try {
    exchange_token(x, id_token);
    FAIL("an ID token for another audience was accepted");
  } catch (const Error &err) {
    CHECK(std::string(err.what()).find("authentication failed") != std::string::npos);
  }
  x.authenticator_name = "e2e-oidc";
  CHECK_FALSE(exchange_token(x, id_token).client_certificate_data.empty());  // the same token, the right audience
  CHECK(
      E2E::eventually([&] { return e.log().find("another-client") != std::string::npos; }, 5));  // the reason is logged
  CHECK(e.log().find(id_token) == std::string::npos);
  e.kubectl("delete jwtauthenticator e2e-oidc e2e-oidc-other-aud");
  e.kubectl("delete clusterrolebinding e2e-oidc-devs-read-ns");
}

TEST_CASE("without the direct frontend a login through a refusing kube-apiserver says so in one line") {
  auto &e = E2E::get();
  ensure_idp(e);
  e.stop_concierge();
  e.start_concierge(false);
  REQUIRE(E2E::eventually([&] { return e.api_service_available("v1alpha1.login.concierge.pinniped.dev"); }, 60));
  std::string kc = e.dir->file("no-direct.kubeconfig");
  int rc = 0;
  std::string get = shell_quote(pinniped_bin()) + " get kubeconfig --kubeconfig " +
                    shell_quote(e.env.at("KUBECONFIG")) + " --pinniped-cli-path " + shell_quote(pinniped_bin()) +
                    " --static-token-env E2E_TOKEN --concierge-authenticator-name e2e-idp -o " + shell_quote(kc) +
                    " 2>&1";
  // The concierge republishes kube-apiserver (and, on k3s, why it fails).
  REQUIRE(E2E::eventually(
      [&] {
        auto f = e.published();
        return f && f->server == e.server() &&
               (e.anonymous_auth() || f->message.find("so logins through it fail") != std::string::npos);
      },
      30));
  std::string out = run(get, &rc);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK((out.find("pinniped: warning: the concierge reports:") != std::string::npos) == !e.anonymous_auth());
  std::string xdg = e.dir->file("xdg-no-direct");
  out = run("E2E_TOKEN=alice-token XDG_CONFIG_HOME=" + shell_quote(xdg) + " kubectl --kubeconfig " + shell_quote(kc) +
                " get ns -o name 2>&1",
            &rc);
  INFO(out);
  if (e.anonymous_auth()) {
    CHECK(rc == 0);  // kubeadm: kube-apiserver lets the exchange through
    CHECK(out.find("namespace/pinniped-concierge") != std::string::npos);
  } else {
    CHECK(rc != 0);
    CHECK(out.find("pinniped: login failed: ") != std::string::npos);
    CHECK(out.find("refused the anonymous login request (HTTP 401 Unauthorized") != std::string::npos);
    CHECK(out.find("docs/k3s.md#unauthorized") != std::string::npos);
    CHECK(out.find("authentication failed") == std::string::npos);
    // The same for a wrong token: kube-apiserver never let it reach anyone.
    out = run("E2E_TOKEN=wrong-token XDG_CONFIG_HOME=" + shell_quote(xdg) + "-2 kubectl --kubeconfig " +
                  shell_quote(kc) + " get ns -o name 2>&1",
              &rc);
    CHECK(rc != 0);
    CHECK(out.find("refused the anonymous login request (HTTP 401") != std::string::npos);
  }
  // The suite ends here: the destructor stops this concierge.
}
