// The CSR strategy against the signer-files strategy, on the real
// kube-apiserver and kube-controller-manager of tests/e2e/cluster.sh (run
// inside its network namespace; `make bench` does that as root). Two
// concierges with the same IDP, one per strategy, take turns: exchange
// latency p50/p90/p99 of each, the ratio, and the Kubernetes API requests
// the CSR strategy adds per exchange (its own counter, from /metrics).
// Prints numbers; never fails on time.
#include "tests/support.hpp"

using namespace testing;

namespace {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// One number from a Prometheus text page.
double metric(const std::string &page, const std::string &name) {
  std::istringstream in(page);
  for (std::string l; std::getline(in, l);)
    if (l.rfind(name + " ", 0) == 0) return std::atof(l.c_str() + name.size() + 1);
  return -1;
}

}  // namespace

int main(int argc, char **argv) {
  auto args = cluster_bench_args(argc, argv, "bench-csr-strategy", 60, 5);
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
    apply_kustomization(admin, "manifests/concierge");  // the CRDs
    Process kcm(controller_manager_argv(env, "10m"), dir.file("kcm.log"));
    FakeIdp idp;
    idp.add_user("bench-token", {"bench-user", "", {"bench-devs", "bench-all"}, {}});
    dir.write("auth.yaml", authenticator_yaml("bench-idp", idp.url(), idp.ca_data()));
    // Serving certificates from files: no serving-certificate controller, so
    // the two do not both claim the APIServices' caBundle.
    auto ca = make_self_signed_ca("bench-serving-ca", std::chrono::hours(2));
    auto leaf = serving_cert(ca, {addr});
    dir.write("tls.crt", leaf.cert_pem);
    dir.write("tls.key", leaf.key_pem);
    auto start = [&](const std::string &app, int port, const std::vector<std::string> &strategy) {
      std::vector<std::string> a = {pinniped,           "concierge",
                                    "--listen",         addr + ":" + std::to_string(port),
                                    "--kubeconfig",     admin,
                                    "--app-name",       app,
                                    "--namespace",      "default",
                                    "--tls-cert",       dir.file("tls.crt"),
                                    "--tls-key",        dir.file("tls.key"),
                                    "--authenticators", dir.file("auth.yaml"),
                                    "--log-level",      "warn"};
      a.insert(a.end(), strategy.begin(), strategy.end());
      return std::make_unique<Process>(a, dir.file(app + ".log"));
    };
    auto files = start("bench-files", 10260, {"--strategy", "signer-files", "--signer-root", env.at("SIGNER_ROOT")});
    auto csr = start("bench-csr", 10261, {"--strategy", "csr"});
    auto options = [&](int port) {
      ExchangeOptions o;
      o.endpoint = "https://" + addr + ":" + std::to_string(port);
      o.tls.ca_pem = ca.cert_pem;
      o.authenticator_name = "bench-idp";
      return o;
    };
    ExchangeOptions of = options(10260), oc = options(10261);
    for (auto *o : {&of, &oc})
      if (!eventually(
              [&] {
                try {
                  return !exchange_token(*o, "bench-token").client_certificate_data.empty();
                } catch (const std::exception &) {
                  return false;
                }
              },
              std::chrono::seconds(60), Millis(250)))
        throw std::runtime_error("no exchange through " + o->endpoint + "; logs:\n" + files->log() + csr->log() +
                                 kcm.log().substr(0, 2000));
    auto metrics = [&] {
      ClientTlsOptions t;
      t.ca_pem = ca.cert_pem;
      HttpsClient c(oc.endpoint, t);
      return c.request("GET", "/metrics", {}, "", std::chrono::seconds(10)).body;
    };
    double api_before = metric(metrics(), "pinniped_csr_api_requests_total");
    std::vector<double> ms_files, ms_csr;
    auto timed = [](const ExchangeOptions &o, std::vector<double> &out) {
      auto t0 = Steady::now();
      auto cred = exchange_token(o, "bench-token");
      out.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
      return cred;
    };
    ClusterCredential last_csr;
    for (int i = 0; i < runs; i++) {  // interleaved: drift on the shared cores hits both alike
      timed(of, ms_files);
      last_csr = timed(oc, ms_csr);
    }
    double api_after = metric(metrics(), "pinniped_csr_api_requests_total");
    int leftovers = 0;
    {
      std::string out = kubectl("get csr -l concierge.pinniped.dev/issued-by=bench-csr -o name");
      leftovers = static_cast<int>(std::count(out.begin(), out.end(), '\n'));
    }
    auto chain = CertificateChain::parse(last_csr.client_certificate_data);
    auto life = std::chrono::duration_cast<std::chrono::seconds>(detail::from_x509_time(chain->get()->valid_to) -
                                                                 detail::from_x509_time(chain->get()->valid_from));
    std::printf(
        "CSR-strategy benchmark: kube-apiserver and kube-controller-manager %s, %d sequential exchanges each, "
        "interleaved\n",
        env.count("KUBE_APISERVER_VERSION") ? env.at("KUBE_APISERVER_VERSION").c_str() : "?", runs);
    auto line = [](const char *name, const std::vector<double> &v) {
      std::printf("  %-44s p50 %7.2f ms   p90 %7.2f ms   p99 %7.2f ms\n", name, percentile(v, 0.5), percentile(v, 0.9),
                  percentile(v, 0.99));
    };
    line("signer-files strategy (key in the concierge)", ms_files);
    line("csr strategy (CSR API, no key)", ms_csr);
    std::printf(
        "  csr / signer-files: p50 %.2fx, p99 %.2fx; API requests per exchange %.2f (create, approve, "
        "delete); CSRs left %d; certificate lifetime %llds\n",
        percentile(ms_csr, 0.5) / percentile(ms_files, 0.5), percentile(ms_csr, 0.99) / percentile(ms_files, 0.99),
        (api_after - api_before) / runs, leftovers, static_cast<long long>(life.count()));
    for (auto *p : {files.get(), csr.get()}) {
      p->signal(SIGTERM);
      p->wait(std::chrono::seconds(10));
    }
    kcm.signal(SIGTERM);
    kcm.wait(std::chrono::seconds(10));
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bench-csr-strategy: %s\n", e.what());
    return 1;
  }
}
