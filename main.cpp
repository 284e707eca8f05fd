// pinniped: the program. Argument parsing and dispatch only; everything
// else lives in pinniped.hpp.
#include "pinniped.hpp"

#include <csignal>
#include <iostream>

namespace {

const char *kUsage =
    "pinniped " PINNIPED_VERSION " - a small Pinniped Concierge for edge Kubernetes\n"
    "\n"
    "Usage:\n"
    "  pinniped concierge [flags]   serve the credential exchange API\n"
    "  pinniped version             print the version\n"
    "  pinniped help [command]      show help\n";

const char *kConciergeUsage =
    "Usage: pinniped concierge [flags]\n"
    "\n"
    "Serves TokenCredentialRequest (login.concierge.<suffix>/v1alpha1): authenticates a token\n"
    "with a TokenReview webhook and returns a short-lived client certificate signed by the\n"
    "cluster signer.\n"
    "\n"
    "Flags:\n"
    "  --listen HOST:PORT          address to serve on (default 0.0.0.0:10250; port 0 = any)\n"
    "  --api-group-suffix S        API group suffix (default pinniped.dev)\n"
    "  --tls-cert FILE             serving certificate (PEM chain); reloaded when it changes\n"
    "  --tls-key FILE              serving key (PEM)\n"
    "  --tls-san NAME              name or IP for the self-generated serving certificate\n"
    "                              (repeatable; used when --tls-cert is not given)\n"
    "  --serving-ca-out FILE       write the self-generated serving CA (PEM) here\n"
    "  --client-ca FILE            request client certificates and verify them with this CA\n"
    "  --signer-cert FILE          cluster signer certificate (PEM)\n"
    "  --signer-key FILE           cluster signer key (PEM: SEC1, PKCS#1 or PKCS#8)\n"
    "  --signer-root DIR           look for the signer of k3s, RKE2, kubeadm, k0s, MicroK8s\n"
    "                              under DIR when --signer-* are not given (default /)\n"
    "  --authenticators FILE       WebhookAuthenticator objects (YAML or JSON); reloaded\n"
    "  --credential-ttl DURATION   lifetime of issued certificates (default 5m, at most 1h)\n"
    "  --webhook-timeout DURATION  time allowed per authentication, retries included (default 10s)\n"
    "  --webhook-attempts N        tries on connection errors and HTTP 5xx (default 3)\n"
    "  --max-body-bytes N          largest accepted request body (default 65536)\n"
    "  --request-timeout DURATION  time a client has to send one request (default 10s)\n"
    "  --threads N                 connection worker threads (default 16)\n"
    "  --max-queue N               connections waiting for a worker before refusing (default 64)\n"
    "  --reload-interval DURATION  how often files are checked for changes (default 5s)\n"
    "  --key-pool N                client keys generated ahead of time (default 16)\n"
    "  --port-file FILE            write the bound port here once listening\n"
    "  --kubeconfig FILE           work with the cluster of this kubeconfig (in a pod: the\n"
    "                              service account, found automatically)\n"
    "  --kube-context NAME         kubeconfig context (default: current-context)\n"
    "  --standalone                do not use the Kubernetes API even inside a pod\n"
    "  --namespace NS              namespace of the concierge's Secret (default pinniped-concierge)\n"
    "  --app-name NAME             prefix of managed names: NAME-api, NAME-config (default\n"
    "                              pinniped-concierge)\n"
    "  --serving-cert-validity D   lifetime of the managed serving certificate (default 720h)\n"
    "  --serving-cert-renew-after D  renew it once it is this old (default 600h)\n"
    "  --log-level LEVEL           debug, info, warn or error (default info)\n"
    "\n"
    "Example:\n"
    "  pinniped concierge --listen 127.0.0.1:10250 \\\n"
    "    --signer-cert /var/lib/rancher/k3s/server/tls/client-ca.crt \\\n"
    "    --signer-key /var/lib/rancher/k3s/server/tls/client-ca.key \\\n"
    "    --authenticators /etc/pinniped/authenticators.yaml\n";

// Reads "--flag value" and "--flag=value" forms.
class Args {
 public:
  Args(int argc, char **argv, int start) {
    for (int i = start; i < argc; i++) items_.emplace_back(argv[i]);
  }
  bool done() const { return pos_ >= items_.size(); }
  // Next flag name; its value (if any) is fetched with value().
  std::string next_flag() {
    std::string a = items_[pos_++];
    inline_value_.reset();
    if (a.rfind("--", 0) != 0 || a.size() < 3) throw pinniped::bad_request("unexpected argument \"" + a + "\"");
    auto eq = a.find('=');
    if (eq != std::string::npos) {
      inline_value_ = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    flag_ = a;
    return a;
  }
  std::string value() {
    if (inline_value_) return *inline_value_;
    if (pos_ >= items_.size()) throw pinniped::bad_request("flag " + flag_ + " needs a value");
    return items_[pos_++];
  }
  long number(long min, long max) {
    std::string v = value();
    char *end = nullptr;
    long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end || n < min || n > max)
      throw pinniped::bad_request("flag " + flag_ + ": \"" + v + "\" is not a number from " + std::to_string(min) +
                                  " to " + std::to_string(max));
    return n;
  }
  pinniped::Millis duration() {
    std::string v = value();
    auto d = pinniped::parse_duration(v);
    if (!d || d->count() <= 0) throw pinniped::bad_request("flag " + flag_ + ": \"" + v + "\" is not a duration like 10s");
    return *d;
  }

 private:
  std::vector<std::string> items_;
  size_t pos_ = 0;
  std::optional<std::string> inline_value_;
  std::string flag_;
};

int run_concierge(int argc, char **argv) {
  pinniped::ConciergeConfig cfg;
  std::string port_file;
  pinniped::Logger::Level level = pinniped::Logger::Level::info;
  bool sans_given = false, standalone = false;
  Args a(argc, argv, 2);
  while (!a.done()) {
    std::string f = a.next_flag();
    if (f == "--help") {
      std::cout << kConciergeUsage;
      return 0;
    } else if (f == "--listen") {
      std::string v = a.value();
      auto colon = v.rfind(':');
      if (colon == std::string::npos) throw pinniped::bad_request("--listen wants HOST:PORT, got \"" + v + "\"");
      cfg.listen_host = v.substr(0, colon);
      if (cfg.listen_host.size() > 1 && cfg.listen_host.front() == '[' && cfg.listen_host.back() == ']')
        cfg.listen_host = cfg.listen_host.substr(1, cfg.listen_host.size() - 2);
      std::string p = v.substr(colon + 1);
      char *end = nullptr;
      long n = std::strtol(p.c_str(), &end, 10);
      if (p.empty() || *end || n < 0 || n > 65535) throw pinniped::bad_request("--listen: invalid port \"" + p + "\"");
      cfg.port = static_cast<int>(n);
    } else if (f == "--api-group-suffix") {
      cfg.api_group_suffix = a.value();
      if (cfg.api_group_suffix.empty() || cfg.api_group_suffix.find('/') != std::string::npos)
        throw pinniped::bad_request("--api-group-suffix must be a DNS suffix like pinniped.dev");
    } else if (f == "--tls-cert") {
      cfg.tls_cert_file = a.value();
    } else if (f == "--tls-key") {
      cfg.tls_key_file = a.value();
    } else if (f == "--tls-san") {
      if (!sans_given) cfg.tls_sans.clear();
      sans_given = true;
      cfg.tls_sans.push_back(a.value());
    } else if (f == "--serving-ca-out") {
      cfg.serving_ca_out = a.value();
    } else if (f == "--client-ca") {
      cfg.client_ca_file = a.value();
    } else if (f == "--signer-cert") {
      cfg.signer_cert_file = a.value();
    } else if (f == "--signer-key") {
      cfg.signer_key_file = a.value();
    } else if (f == "--signer-root") {
      cfg.signer_root = a.value();
    } else if (f == "--authenticators") {
      cfg.authenticators_file = a.value();
    } else if (f == "--credential-ttl") {
      cfg.credential_ttl = a.duration();
      if (cfg.credential_ttl > std::chrono::hours(1)) throw pinniped::bad_request("--credential-ttl is at most 1h");
    } else if (f == "--webhook-timeout") {
      cfg.webhook.timeout = a.duration();
    } else if (f == "--webhook-attempts") {
      cfg.webhook.attempts = static_cast<int>(a.number(1, 10));
    } else if (f == "--max-body-bytes") {
      cfg.max_body_bytes = static_cast<size_t>(a.number(1024, 16 * 1024 * 1024));
      cfg.server.max_request_bytes = cfg.max_body_bytes + 16 * 1024;
    } else if (f == "--request-timeout") {
      cfg.server.request_timeout = a.duration();
    } else if (f == "--threads") {
      cfg.server.threads = static_cast<size_t>(a.number(1, 1024));
    } else if (f == "--max-queue") {
      cfg.server.max_queue = static_cast<size_t>(a.number(0, 100000));
    } else if (f == "--reload-interval") {
      cfg.reload_interval = a.duration();
    } else if (f == "--key-pool") {
      cfg.key_pool = static_cast<size_t>(a.number(0, 1024));
    } else if (f == "--kubeconfig") {
      cfg.kubeconfig = a.value();
    } else if (f == "--kube-context") {
      cfg.kube_context = a.value();
    } else if (f == "--standalone") {
      standalone = true;
    } else if (f == "--namespace") {
      cfg.namespace_ = a.value();
    } else if (f == "--app-name") {
      cfg.app_name = a.value();
    } else if (f == "--serving-cert-validity") {
      cfg.serving_cert_validity = a.duration();
    } else if (f == "--serving-cert-renew-after") {
      cfg.serving_cert_renew_after = a.duration();
    } else if (f == "--port-file") {
      port_file = a.value();
    } else if (f == "--log-level") {
      std::string v = a.value();
      auto l = pinniped::Logger::parse_level(v);
      if (!l) throw pinniped::bad_request("--log-level: unknown level \"" + v + "\"");
      level = *l;
    } else {
      throw pinniped::bad_request("unknown flag " + f + " (see pinniped concierge --help)");
    }
  }

  const char *k8s = std::getenv("KUBERNETES_SERVICE_HOST");
  cfg.in_cluster = !standalone && cfg.kubeconfig.empty() && k8s && *k8s;
  if (standalone) cfg.kubeconfig.clear();

  // Signals are taken by one thread with sigwait, so handlers never run
  // inside server code. Block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  pinniped::Logger log(level);
  pinniped::Concierge concierge(cfg, log);
  concierge.start();
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << concierge.port() << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGTERM || sig == SIGINT) concierge.shutdown();
  });
  concierge.run();
  // Wake the waiter if the server stopped on its own.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  std::string cmd = argc > 1 ? argv[1] : "help";
  try {
    if (cmd == "concierge") return run_concierge(argc, argv);
    if (cmd == "version" || cmd == "--version") {
      std::cout << "pinniped " PINNIPED_VERSION " (mbedTLS " MBEDTLS_VERSION_STRING ", cpp-httplib " CPPHTTPLIB_VERSION
                   ")\n";
      return 0;
    }
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      if (argc > 2 && std::string(argv[2]) == "concierge") std::cout << kConciergeUsage;
      else std::cout << kUsage;
      return 0;
    }
    std::cerr << "pinniped: unknown command \"" << cmd << "\" (see pinniped help)\n";
    return 2;
  } catch (const pinniped::Error &e) {
    std::cerr << "pinniped: " << e.what() << "\n";
    return e.code == 400 ? 2 : 1;
  } catch (const std::exception &e) {
    std::cerr << "pinniped: " << e.what() << "\n";
    return 1;
  }
}
