// kubectl through the exec plugin vs kubectl with a static client
// certificate, against the real kube-apiserver of tests/e2e/cluster.sh (run
// inside its network namespace; `make bench` does that as root). Measures
// `kubectl get namespaces` with a static certificate (baseline), through
// `pinniped login static` with an empty cache (cold: one exchange) and a warm
// cache, once through kube-apiserver's aggregation and once through the
// concierge's direct frontend, and the plugin alone on a warm cache. Run on
// the kubeadm profile (kube-apiserver lets anonymous exchanges through, so
// both paths work). Prints medians and ratios; never fails on time.
#include <sys/wait.h>

#include <cstdio>

#include "tests/support.hpp"

using namespace testing;

namespace {

// Runs argv (PATH searched) with stdout to /dev/null; wall time in ms, -1 on failure.
double timed(const std::vector<std::string> &argv) {
  auto t0 = Steady::now();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    std::vector<char *> a;
    for (const auto &s : argv) a.push_back(const_cast<char *>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  double ms = std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ms : -1;
}

struct Series {
  std::vector<double> ms;
  int failed = 0;
  double median() {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }
  double p90() {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    return ms[std::min(ms.size() - 1, ms.size() * 9 / 10)];
  }
};

Series measure(int n, const std::function<void()> &before, const std::vector<std::string> &argv) {
  Series s;
  for (int i = 0; i < n; i++) {
    if (before) before();
    double ms = timed(argv);
    if (ms < 0)
      s.failed++;
    else
      s.ms.push_back(ms);
  }
  return s;
}

}  // namespace

int main(int argc, char **argv) {
  auto args = cluster_bench_args(argc, argv, "bench-kubectl-plugin", 15, 3);
  if (!args) return 1;
  const std::string &pinniped = args->pinniped, &e2e_dir = args->e2e_dir;
  const int runs = args->runs;
  try {
    auto env = read_env_file(e2e_dir + "/env");
    std::string admin = env.at("KUBECONFIG"), addr = env.at("ADDR");
    TempDir dir;
    auto kubectl = [&](const std::string &args) {
      int rc = 0;
      std::string out = run("kubectl --kubeconfig " + shell_quote(admin) + " " + args + " 2>&1", &rc);
      if (rc != 0) throw std::runtime_error("kubectl " + args + ": " + out);
      return out;
    };
    // The concierge as in the e2e suite: manifests, hand-made Endpoints, a host process.
    apply_kustomization(admin, "manifests/concierge");
    dir.write("ep.yaml",
              "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: pinniped-concierge-api\n"
              "  namespace: pinniped-concierge\nsubsets:\n- addresses:\n  - ip: " +
                  addr + "\n  ports:\n  - name: https\n    port: 10250\n");
    kubectl("apply -f " + shell_quote(dir.file("ep.yaml")));
    Process concierge({pinniped, "concierge", "--listen", addr + ":10250", "--kubeconfig", admin, "--signer-root",
                       env.at("SIGNER_ROOT"), "--reload-interval", "1s", "--log-level", "warn", "--direct-listen",
                       addr + ":10444", "--direct-failure-limit", "0"},
                      dir.file("concierge.log"));
    FakeIdp idp;
    idp.add_user("bench-token", {"bench-user", "", {"bench-devs"}, {}});
    dir.write("wa.yaml",
              "apiVersion: authentication.concierge.pinniped.dev/v1alpha1\nkind: WebhookAuthenticator\n"
              "metadata:\n  name: bench-idp\nspec:\n  endpoint: " +
                  idp.url() + "\n  tls:\n    certificateAuthorityData: " + idp.ca_data() + "\n");
    kubectl("apply -f " + shell_quote(dir.file("wa.yaml")));
    run("kubectl --kubeconfig " + shell_quote(admin) +
        " create clusterrole bench-ns-reader --verb=get,list --resource=namespaces >/dev/null 2>&1");
    run("kubectl --kubeconfig " + shell_quote(admin) +
        " create clusterrolebinding bench-ns-reader --clusterrole=bench-ns-reader --group=bench-devs >/dev/null 2>&1");
    ExchangeOptions xo;
    xo.endpoint = env.at("SERVER");
    xo.tls.ca_pem = read_file(env.at("SERVING_CA"));
    xo.authenticator_name = "bench-idp";
    ClusterCredential cred;
    if (!eventually(
            [&] {
              cred = exchange_token(xo, "bench-token");
              return true;
            },
            std::chrono::seconds(90), Millis(250)))
      throw std::runtime_error("the exchange never worked through kube-apiserver; concierge log:\n" + concierge.log());

    // Baseline: the same user with a static certificate (valid 5 minutes).
    std::string static_kc =
        dir.write("static.kubeconfig",
                  "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n"
                  "    server: " +
                      xo.endpoint + "\n    certificate-authority-data: " + detail::base64_encode(xo.tls.ca_pem) +
                      "\nusers:\n- name: u\n  user:\n    client-certificate-data: " +
                      detail::base64_encode(cred.client_certificate_data) +
                      "\n    client-key-data: " + detail::base64_encode(cred.client_key_data) +
                      "\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\n");
    int rc = 0;
    std::string out = run(shell_quote(pinniped) + " get kubeconfig --kubeconfig " + shell_quote(admin) +
                              " --pinniped-cli-path \"$(realpath " + shell_quote(pinniped) + ")\"" +
                              " --static-token-env BENCH_TOKEN --concierge-authenticator-name bench-idp -o " +
                              shell_quote(dir.file("plugin.kubeconfig")) + " 2>&1",
                          &rc);
    if (rc != 0) throw std::runtime_error("pinniped get kubeconfig failed: " + out);
    // The same user through the direct frontend, verified with the serving CA.
    std::string serving_ca = *detail::base64_decode(
        kubectl("get secret -n pinniped-concierge pinniped-concierge-api-tls-serving-certificate -o "
                "jsonpath={.data.caCertificate}"));
    dir.write("serving-ca.pem", serving_ca);
    std::string direct = "https://" + addr + ":10444";
    out = run(shell_quote(pinniped) + " get kubeconfig --kubeconfig " + shell_quote(admin) +
                  " --pinniped-cli-path \"$(realpath " + shell_quote(pinniped) + ")\"" +
                  " --static-token-env BENCH_TOKEN --concierge-authenticator-name bench-idp --concierge-endpoint " +
                  direct + " --concierge-ca-bundle " + shell_quote(dir.file("serving-ca.pem")) + " -o " +
                  shell_quote(dir.file("direct.kubeconfig")) + " 2>&1",
              &rc);
    if (rc != 0) throw std::runtime_error("pinniped get kubeconfig (direct) failed: " + out);
    setenv("BENCH_TOKEN", "bench-token", 1);
    setenv("XDG_CONFIG_HOME", dir.file("xdg").c_str(), 1);
    setenv("HOME", dir.path.c_str(), 1);
    std::string cache = dir.file("xdg/pinniped/credentials.yaml");
    auto get_ns = [&](const std::string &kc) {
      return std::vector<std::string>{"kubectl", "--kubeconfig", kc,   "--cache-dir", dir.file("kcache"),
                                      "get",     "namespaces",   "-o", "name"};
    };
    // Warm-up: discovery cache, page cache, the concierge's key pool.
    measure(3, nullptr, get_ns(static_kc));
    measure(3, nullptr, get_ns(dir.file("plugin.kubeconfig")));
    measure(3, nullptr, get_ns(dir.file("direct.kubeconfig")));

    // Interleaved, so that drift on the shared cores hits all alike; each
    // cold run leaves the cache warm for the warm run after it.
    Series baseline, cold, warm, cold_direct, warm_direct;
    for (int i = 0; i < runs; i++) {
      auto add = [](Series &s, double ms) { ms < 0 ? void(s.failed++) : s.ms.push_back(ms); };
      add(baseline, timed(get_ns(static_kc)));
      std::remove(cache.c_str());
      add(cold, timed(get_ns(dir.file("plugin.kubeconfig"))));
      add(warm, timed(get_ns(dir.file("plugin.kubeconfig"))));
      std::remove(cache.c_str());
      add(cold_direct, timed(get_ns(dir.file("direct.kubeconfig"))));
      add(warm_direct, timed(get_ns(dir.file("direct.kubeconfig"))));
    }
    setenv("KUBERNETES_EXEC_INFO",
           ("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"spec\":{\"cluster\":"
            "{\"server\":\"" +
            xo.endpoint + "\",\"certificate-authority-data\":\"" + detail::base64_encode(xo.tls.ca_pem) + "\"}}}")
               .c_str(),
           1);
    auto plugin = measure(
        runs * 4, nullptr,
        {pinniped, "login", "static", "--token-env", "BENCH_TOKEN", "--concierge-authenticator-name", "bench-idp"});
    unsetenv("KUBERNETES_EXEC_INFO");
    auto cold_plugin = measure(
        runs, [&] { std::remove(cache.c_str()); },
        {pinniped, "login", "static", "--token-env", "BENCH_TOKEN", "--concierge-authenticator-name", "bench-idp",
         "--concierge-endpoint", xo.endpoint, "--concierge-ca-bundle-data", detail::base64_encode(xo.tls.ca_pem)});

    double b = baseline.median();
    std::printf("kubectl-plugin benchmark: kubectl %s against kube-apiserver %s, %d runs each (medians, p90)\n",
                run("kubectl version --client 2>/dev/null | head -1 | awk '{printf \"%s\", $3}'").c_str(),
                env.count("KUBE_APISERVER_VERSION") ? env.at("KUBE_APISERVER_VERSION").c_str() : "?", runs);
    auto line = [&](const char *name, Series &s, double target, const char *target_text) {
      double m = s.median();
      std::printf("  %-62s %8.1f ms  (p90 %6.1f)", name, m, s.p90());
      if (target > 0) std::printf("  ratio %.2fx (target %s)", m / b, target_text);
      if (s.failed) std::printf("  [%d failed]", s.failed);
      std::printf("\n");
    };
    line("kubectl, static client certificate (baseline)", baseline, 0, "");
    line("kubectl via plugin, cold cache (exchange via kube-apiserver)", cold, 1, "<= 1.5x");
    line("kubectl via plugin, warm cache", warm, 1, "<= 1.1x");
    line("kubectl via plugin, cold cache (exchange via direct frontend)", cold_direct, 1, "<= 1.5x");
    line("kubectl via plugin, warm cache (direct kubeconfig)", warm_direct, 1, "<= 1.1x");
    line("pinniped login static alone, warm cache", plugin, 0, "");
    line("pinniped login static alone, cold cache", cold_plugin, 0, "");
    std::printf("  warm plugin run %.1f ms (target <= 5 ms); warm kubectl %.2fx, cold kubectl %.2fx of baseline "
                "through kube-apiserver; direct frontend: warm %.2fx, cold %.2fx\n",
                plugin.median(), warm.median() / b, cold.median() / b, warm_direct.median() / b,
                cold_direct.median() / b);
    concierge.signal(SIGTERM);
    concierge.wait(std::chrono::seconds(10));
    run("kubectl --kubeconfig " + shell_quote(admin) + " delete -f " + shell_quote(dir.file("wa.yaml")) + " >/dev/null 2>&1");
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bench-kubectl-plugin: %s\n", e.what());
    return 1;
  }
}
