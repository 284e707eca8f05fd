// Kubernetes client pieces that need no real cluster: kubeconfig reading,
// front-proxy identity, and an informer against a scripted API server.
#include <catch2/catch.hpp>

#include "tests/support.hpp"

using namespace testing;

namespace {
std::string b64(const std::string &s) { return detail::base64_encode(s); }
}  // namespace

TEST_CASE("kubeconfig: embedded data, files relative to the kubeconfig, token file, contexts") {
  TempDir dir;
  auto ca = make_self_signed_ca("kube-ca", std::chrono::hours(1));
  auto client = client_cert(ca, "admin", {"system:masters"});
  dir.write("ca.crt", ca.cert_pem);
  dir.write("token", "file-token\n");
  std::string kc =
      "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
      "clusters:\n"
      "- name: c1\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority-data: " +
      b64(ca.cert_pem) +
      "\n- name: c2\n  cluster:\n    server: https://example.test:443/prefix\n"
      "    certificate-authority: ca.crt\n    tls-server-name: kubernetes\n"
      "users:\n"
      "- name: u1\n  user:\n    client-certificate-data: " +
      b64(client.cert_pem) + "\n    client-key-data: " + b64(client.key_pem) +
      "\n- name: u2\n  user:\n    tokenFile: token\n"
      "- name: u3\n  user:\n    exec:\n      command: something\n"
      "contexts:\n"
      "- name: a\n  context: {cluster: c1, user: u1, namespace: team}\n"
      "- name: b\n  context: {cluster: c2, user: u2}\n"
      "- name: broken\n  context: {cluster: nope, user: u1}\n"
      "- name: execuser\n  context: {cluster: c1, user: u3}\n";
  dir.write("kubeconfig", kc);
  auto a = KubeConfig::from_kubeconfig_file(dir.file("kubeconfig"));
  CHECK(a.server == "https://10.0.0.1:6443");
  CHECK(a.tls.ca_pem == ca.cert_pem);
  CHECK(a.tls.client_cert_pem == client.cert_pem);
  CHECK(a.tls.client_key_pem == client.key_pem);
  CHECK(a.namespace_ == "team");
  auto b = KubeConfig::from_kubeconfig_file(dir.file("kubeconfig"), "b");
  CHECK(b.server == "https://example.test:443/prefix");
  CHECK(b.tls.ca_pem == ca.cert_pem);  // read relative to the kubeconfig's folder
  CHECK(b.tls.server_name == "kubernetes");
  CHECK(b.token_file == dir.file("token"));
  struct Row {
    std::string context, says;
  };
  for (const auto &r : std::vector<Row>{
           {"missing", "no context named"}, {"broken", "no cluster named"}, {"execuser", "exec/auth-provider"}}) {
    INFO(r.context);
    try {
      KubeConfig::from_kubeconfig_file(dir.file("kubeconfig"), r.context);
      FAIL("accepted");
    } catch (const Error &e) {
      CHECK(std::string(e.what()).find(r.says) != std::string::npos);
    }
  }
  CHECK_THROWS_AS(KubeConfig::from_kubeconfig("- a\n- b\n", dir.path, ""), Error);
}

TEST_CASE("in-cluster configuration comes from the service account folder and the environment") {
  TempDir dir;
  auto ca = make_self_signed_ca("kube-ca", std::chrono::hours(1));
  dir.write("ca.crt", ca.cert_pem);
  dir.write("token", "sa-token");
  dir.write("namespace", "pinniped-concierge\n");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = KubeConfig::in_cluster(dir.path);
  CHECK(c.server == "https://10.96.0.1:443");
  CHECK(c.token_file == dir.file("token"));
  CHECK(c.namespace_ == "pinniped-concierge");
  unsetenv("KUBERNETES_SERVICE_HOST");
  CHECK_THROWS_AS(KubeConfig::in_cluster(dir.path), Error);
}

TEST_CASE("front-proxy identity is trusted only from a verified, allowed peer") {
  picojson::value cm = json::parse(
      R"({"data":{"requestheader-client-ca-file":"PEM","requestheader-allowed-names":"[\"front-proxy-client\"]",)"
      R"("requestheader-username-headers":"[\"X-Remote-User\"]","requestheader-group-headers":"[\"X-Remote-Group\"]",)"
      R"("requestheader-extra-headers-prefix":"[\"X-Remote-Extra-\"]"}})");
  auto c = RequestHeaderConfig::from_configmap(cm);
  CHECK(c.allowed_names == std::vector<std::string>{"front-proxy-client"});
  httplib::Request req;
  req.headers.emplace("X-Remote-User", "alice");
  req.headers.emplace("X-Remote-Group", "devs");
  req.headers.emplace("x-remote-group", "system:authenticated");
  req.headers.emplace("X-Remote-Extra-Scopes%2Fx", "read");
  PeerCertificate proxy{true, true, "front-proxy-client", {}};
  auto u = identify(req, proxy, c);
  CHECK(u.username == "alice");
  CHECK(u.groups == std::vector<std::string>{"devs", "system:authenticated"});
  CHECK(u.extra.at("scopes/x") == std::vector<std::string>{"read"});

  struct Row {
    std::string name;
    PeerCertificate peer;
  };
  for (const auto &r : std::vector<Row>{{"no certificate", {false, false, "", {}}},
                                        {"unverified certificate", {true, false, "front-proxy-client", {}}},
                                        {"verified but CN not allowed", {true, true, "mallory", {}}}}) {
    INFO(r.name);
    auto anon = identify(req, r.peer, c);
    CHECK(anon.username == "system:anonymous");
    CHECK(anon.groups == std::vector<std::string>{"system:unauthenticated"});
  }
  httplib::Request nouser;
  CHECK(identify(nouser, proxy, c).username == "system:anonymous");
  c.allowed_names.clear();  // empty: any CN from the CA
  CHECK(identify(req, PeerCertificate{true, true, "anyone", {}}, c).username == "alice");
}

// A scripted API server: a list, then a watch that sends events and ends;
// the second watch answers 410 Gone so the informer must relist.
TEST_CASE("an informer lists, follows watch events and bookmarks, and relists after 410 Gone") {
  auto ca = make_self_signed_ca("api-ca", std::chrono::hours(1));
  auto leaf = serving_cert(ca, {"127.0.0.1"});
  TlsServer server;
  server.set_credentials({leaf.cert_pem, leaf.key_pem, ""});
  std::atomic<int> lists{0}, watches{0};
  std::mutex mu;
  std::vector<std::string> watch_rvs, auth_headers;
  auto cm = [](const std::string &name, const std::string &rv) {
    return R"({"metadata":{"name":")" + name + R"(","namespace":"ns","resourceVersion":")" + rv + R"("}})";
  };
  server.Get("/api/v1/namespaces/ns/configmaps", [&](const httplib::Request &req, httplib::Response &res) {
    {
      std::lock_guard<std::mutex> lk(mu);
      auth_headers.push_back(req.get_header_value("Authorization"));
    }
    if (!req.has_param("watch")) {
      int n = ++lists;
      std::string items = n == 1 ? cm("a", "5") + "," + cm("b", "6") : cm("a", "5") + "," + cm("c", "20");
      res.set_content(R"({"kind":"ConfigMapList","metadata":{"resourceVersion":")" + std::to_string(n * 10) +
                          R"("},"items":[)" + items + "]}",
                      "application/json");
      return;
    }
    int w = ++watches;
    {
      std::lock_guard<std::mutex> lk(mu);
      watch_rvs.push_back(req.get_param_value("resourceVersion"));
    }
    if (w == 1) {
      std::string body = R"({"type":"MODIFIED","object":)" + cm("b", "11") + "}\n" +
                         R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}})" + "\n" +
                         R"({"type":"ADDED","object":)" + cm("d", "13") + "}\n";
      res.set_chunked_content_provider("application/json", [body](size_t, httplib::DataSink &sink) {
        sink.write(body.data(), body.size());
        sink.done();
        return true;
      });
    } else if (w == 2) {
      res.set_content(R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"
                      "\n",
                      "application/json");
    } else {
      std::this_thread::sleep_for(Millis(200));
      res.set_content("", "application/json");
    }
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  KubeConfig kc;
  kc.server = "https://127.0.0.1:" + std::to_string(port);
  kc.tls.ca_pem = ca.cert_pem;
  kc.token = "informer-token";
  KubeClient client(kc);
  Logger log(Logger::Level::error);
  std::mutex ev_mu;
  std::vector<std::string> events;
  Informer inf(client, "/api/v1/namespaces/ns/configmaps", log, [&](const std::string &type, const picojson::value &o) {
    std::lock_guard<std::mutex> lk(ev_mu);
    events.push_back(type + " " + object_key(o));
  });
  inf.set_watch_timeout(1);
  inf.start();
  auto until = Steady::now() + std::chrono::seconds(10 * slow_factor());
  while (lists.load() < 2 && Steady::now() < until) std::this_thread::sleep_for(Millis(20));
  std::this_thread::sleep_for(Millis(100));
  inf.stop();
  server.shutdown();
  t.join();
  REQUIRE(lists.load() >= 2);
  std::vector<std::string> want = {"ADDED ns/a",   "ADDED ns/b",   "MODIFIED ns/b", "ADDED ns/d",
                                   "DELETED ns/b", "DELETED ns/d", "ADDED ns/c"};
  std::lock_guard<std::mutex> lk(ev_mu);
  REQUIRE(events.size() >= want.size());
  CHECK(std::vector<std::string>(events.begin(), events.begin() + want.size()) == want);
  CHECK(watch_rvs.at(0) == "10");  // the first watch starts at the list's resourceVersion
  CHECK(watch_rvs.at(1) == "13");  // ...and resumes after the last event
  auto snap = inf.snapshot();
  CHECK(snap.count("ns/a") == 1);
  CHECK(snap.count("ns/c") == 1);
  CHECK(snap.count("ns/b") == 0);
  for (const auto &h : auth_headers) CHECK(h == "Bearer informer-token");
}

TEST_CASE("KubeClient turns a Status answer into an Error with its code and reason") {
  auto ca = make_self_signed_ca("api-ca", std::chrono::hours(1));
  auto leaf = serving_cert(ca, {"127.0.0.1"});
  TlsServer server;
  server.set_credentials({leaf.cert_pem, leaf.key_pem, ""});
  server.Get(".*", [](const httplib::Request &, httplib::Response &res) {
    res.status = 403;
    res.set_content(
        R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"secrets is forbidden","reason":"Forbidden","code":403})",
        "application/json");
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  KubeConfig kc;
  kc.server = "https://127.0.0.1:" + std::to_string(port);
  kc.tls.ca_pem = ca.cert_pem;
  KubeClient client(kc);
  try {
    client.get("/api/v1/secrets");
    FAIL("no error");
  } catch (const Error &e) {
    CHECK(e.code == 403);
    CHECK(e.reason == "Forbidden");
    CHECK(std::string(e.what()).find("secrets is forbidden") != std::string::npos);
  }
  server.shutdown();
  t.join();
}
