// pinniped: the program. Argument parsing and dispatch only; everything
// else lives in pinniped.hpp.
#include <csignal>
#include <iostream>

#include "pinniped.hpp"

namespace {

const char *kUsage =
    "pinniped " PINNIPED_VERSION
    " - a small Pinniped Concierge for edge Kubernetes\n"
    "\n"
    "Usage:\n"
    "  pinniped concierge [flags]   serve the credential exchange API\n"
    "  pinniped login static [flags]  the kubectl exec credential plugin (a cached client certificate)\n"
    "  pinniped get kubeconfig [flags]  write a kubeconfig whose user logs in through pinniped\n"
    "  pinniped whoami [flags]      show who kube-apiserver thinks you are\n"
    "  pinniped local-user-authenticator [flags]  a bcrypt TokenReview IDP (add-user NAME: make a user)\n"
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
    "                              (front-proxy CA: X-Remote-* headers trusted from its clients)\n"
    "  --requestheader-allowed-names N1,N2  with --client-ca: only these CNs may send X-Remote-*\n"
    "                              headers, as kube-apiserver's flag (default: any CN)\n"
    "  --signer-cert FILE          cluster signer certificate (PEM)\n"
    "  --signer-key FILE           cluster signer key (PEM: SEC1, PKCS#1 or PKCS#8)\n"
    "  --signer-root DIR           look for the signer of k3s, RKE2, kubeadm, k0s, MicroK8s\n"
    "                              under DIR when --signer-* are not given (default /)\n"
    "  --strategy S                how certificates are issued: signer-files (the files above),\n"
    "                              csr (the cluster's CSR API, signer kubernetes.io/kube-apiserver-\n"
    "                              client: no key here; needs a cluster), or auto (default: signer\n"
    "                              files when found, else the CSR API)\n"
    "  --csr-timeout DURATION      how long an exchange waits for the cluster to sign its CSR\n"
    "                              (default 10s; with --webhook-timeout at most 25s)\n"
    "  --authenticators FILE       WebhookAuthenticator objects (YAML or JSON); reloaded\n"
    "  --credential-ttl DURATION   lifetime of issued certificates (default 5m, at most 1h)\n"
    "  --webhook-timeout DURATION  time allowed per authentication, retries included (default 10s,\n"
    "                              at most 25s); it bounds the handling of an exchange\n"
    "  --webhook-attempts N        tries on connection errors and HTTP 5xx (default 3)\n"
    "  --max-body-bytes N          largest accepted request body (default 65536)\n"
    "  --request-timeout DURATION  time a client has to send one request (default 10s); handling\n"
    "                              and writing the answer have their own bounds\n"
    "  --threads N                 connection worker threads (default 16)\n"
    "  --max-queue N               connections with a request waiting for a worker before refusing\n"
    "                              (default 64; silent and idle ones wait off the workers)\n"
    "  --reload-interval DURATION  how often files are checked for changes (default 5s)\n"
    "  --key-pool N                client keys generated ahead of time (default 16)\n"
    "  --max-exchanges N           exchanges handled at once; more get 429 at once (default: the\n"
    "                              threads less 4, so probes and metrics never wait behind an IDP)\n"
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
    "  --direct-listen HOST:PORT   also serve the exchange to clients that reach the concierge\n"
    "                              directly, not through kube-apiserver (the direct frontend, for\n"
    "                              clusters that refuse anonymous requests, as k3s does; off by\n"
    "                              default; the manifests use 0.0.0.0:10444)\n"
    "  --direct-endpoint URL       the https URL clients reach the direct frontend at (default: the\n"
    "                              load-balancer address of Service <app-name>-direct; outside a\n"
    "                              pod also this host's first address)\n"
    "  --direct-san NAME           another name or IP for the direct frontend's certificate\n"
    "                              (repeatable)\n"
    "  --direct-failure-limit N    failed exchanges a client address may make per minute on the\n"
    "                              direct frontend (default 10; 0 = no limit)\n"
    "  --log-level LEVEL           debug, info, warn or error (default info)\n"
    "\n"
    "Example:\n"
    "  pinniped concierge --listen 127.0.0.1:10250 \\\n"
    "    --signer-cert /var/lib/rancher/k3s/server/tls/client-ca.crt \\\n"
    "    --signer-key /var/lib/rancher/k3s/server/tls/client-ca.key \\\n"
    "    --authenticators /etc/pinniped/authenticators.yaml\n";

const char *kLoginStaticUsage =
    "Usage: pinniped login static [flags]\n"
    "\n"
    "The kubectl exec credential plugin: exchanges a static token for a short-lived client\n"
    "certificate through the concierge (TokenCredentialRequest via kube-apiserver) and prints an\n"
    "ExecCredential on stdout, in the apiVersion of KUBERNETES_EXEC_INFO (v1 or v1beta1; v1beta1\n"
    "when unset). Certificates are cached until a minute before they expire. kubectl runs this;\n"
    "`pinniped get kubeconfig` writes the kubeconfig that makes it do so.\n"
    "\n"
    "Flags:\n"
    "  --token TOKEN                        the static token (visible in the kubeconfig)\n"
    "  --token-env VAR                      read the token from environment variable VAR\n"
    "  --concierge-authenticator-type T     only \"webhook\"\n"
    "  --concierge-authenticator-name N     the WebhookAuthenticator (required)\n"
    "  --concierge-endpoint URL             kube-apiserver URL (default: spec.cluster.server from\n"
    "                                       KUBERNETES_EXEC_INFO, with provideClusterInfo: true)\n"
    "  --concierge-ca-bundle-data B64       its CA, base64 PEM (default: spec.cluster's CA)\n"
    "  --concierge-api-group-suffix S       API group suffix (default pinniped.dev)\n"
    "  --credential-cache FILE              cache file (default\n"
    "                                       $XDG_CONFIG_HOME/pinniped/credentials.yaml or\n"
    "                                       ~/.config/pinniped/credentials.yaml; \"\" disables it)\n"
    "  --enable-concierge                   accepted for upstream compatibility (always on)\n"
    "\n"
    "Example:\n"
    "  MY_TOKEN=... pinniped login static --token-env MY_TOKEN --concierge-authenticator-name my-idp \\\n"
    "    --concierge-endpoint https://10.0.0.1:6443 --concierge-ca-bundle-data \"$(base64 -w0 ca.crt)\"\n";

const char *kGetKubeconfigUsage =
    "Usage: pinniped get kubeconfig [flags]\n"
    "\n"
    "Writes a kubeconfig for the cluster of your (admin) kubeconfig whose user runs\n"
    "`pinniped login static` (this binary, by absolute path). The authenticator, endpoint and CA\n"
    "are discovered from the cluster's WebhookAuthenticators and CredentialIssuer unless given.\n"
    "\n"
    "Flags:\n"
    "  --static-token TOKEN                 the token to put in the kubeconfig\n"
    "  --static-token-env VAR               or: the plugin reads the token from VAR at login time\n"
    "  --kubeconfig FILE                    the kubeconfig to read (default $KUBECONFIG or\n"
    "                                       ~/.kube/config)\n"
    "  --kubeconfig-context NAME            its context (default: current-context)\n"
    "  --concierge-authenticator-name N     default: the cluster's only WebhookAuthenticator\n"
    "  --concierge-authenticator-type T     only \"webhook\"\n"
    "  --concierge-endpoint URL             default: from the CredentialIssuer\n"
    "  --concierge-ca-bundle FILE           PEM; default: from the CredentialIssuer\n"
    "  --concierge-api-group-suffix S       API group suffix (default pinniped.dev)\n"
    "  --credential-cache FILE              passed on to login static\n"
    "  -o, --output FILE                    write here (mode 0600) instead of stdout\n"
    "\n"
    "Example:\n"
    "  pinniped get kubeconfig --static-token-env MY_TOKEN -o alice.kubeconfig\n"
    "  MY_TOKEN=... kubectl --kubeconfig alice.kubeconfig get namespaces\n";

const char *kWhoamiUsage =
    "Usage: pinniped whoami [flags]\n"
    "\n"
    "Asks kube-apiserver (a WhoAmIRequest, identity.concierge.<suffix>/v1alpha1) who the\n"
    "kubeconfig's credentials belong to. A user that logs in with `pinniped login static` is\n"
    "logged in in-process, with the same flags and cache.\n"
    "\n"
    "Flags:\n"
    "  --kubeconfig FILE          default $KUBECONFIG or ~/.kube/config\n"
    "  --kubeconfig-context NAME  default: current-context\n"
    "  --api-group-suffix S       API group suffix (default pinniped.dev)\n"
    "  -o, --output FORMAT        text (default) or json\n"
    "  --timeout DURATION         default 20s\n"
    "\n"
    "Example:\n"
    "  pinniped whoami --kubeconfig alice.kubeconfig -o json\n";

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
  pinniped::Logger::Level log_level() {
    std::string v = value();
    auto l = pinniped::Logger::parse_level(v);
    if (!l) throw pinniped::bad_request(flag_ + ": unknown level \"" + v + "\"");
    return *l;
  }
  pinniped::Millis duration() {
    std::string v = value();
    auto d = pinniped::parse_duration(v);
    if (!d || d->count() <= 0)
      throw pinniped::bad_request("flag " + flag_ + ": \"" + v + "\" is not a duration like 10s");
    return *d;
  }

 private:
  std::vector<std::string> items_;
  size_t pos_ = 0;
  std::optional<std::string> inline_value_;
  std::string flag_;
};

// In a pod (KUBERNETES_SERVICE_HOST set), unless told --standalone or given a
// kubeconfig; --standalone also drops a --kubeconfig.
bool in_cluster(bool standalone, std::string &kubeconfig) {
  if (standalone) kubeconfig.clear();
  const char *k8s = std::getenv("KUBERNETES_SERVICE_HOST");
  return !standalone && kubeconfig.empty() && k8s && *k8s;
}

// "HOST:PORT" or "[v6]:PORT" of --listen.
void parse_listen(const std::string &v, std::string &host, int &port) {
  auto colon = v.rfind(':');
  if (colon == std::string::npos) throw pinniped::bad_request("--listen wants HOST:PORT, got \"" + v + "\"");
  host = v.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string p = v.substr(colon + 1);
  char *end = nullptr;
  long n = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end || n < 0 || n > 65535) throw pinniped::bad_request("--listen: invalid port \"" + p + "\"");
  port = static_cast<int>(n);
}

// Signals are taken by one thread with sigwait, so handlers never run inside
// server code. Call before any thread starts (servers start threads when built).
sigset_t block_stop_signals() {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return sigs;
}

// Starts a server, publishes its port, serves until SIGTERM/SIGINT, drains.
template <class Server>
int serve(Server &server, const std::string &port_file, sigset_t sigs) {
  server.start();
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << server.port() << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGTERM || sig == SIGINT) server.shutdown();
  });
  server.run();
  // Wake the waiter if the server stopped on its own.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}

// The flags both servers take (listening, serving certificate, cluster
// access, reloading, logging), for either server's config.
struct ServerFlags {
  std::string port_file;
  pinniped::Logger::Level level = pinniped::Logger::Level::info;
  bool sans_given = false, standalone = false;

  // Applies flag `f` when it is one of these; false otherwise.
  template <class Config>
  bool take(const std::string &f, Args &a, Config &cfg) {
    if (f == "--listen") {
      parse_listen(a.value(), cfg.listen_host, cfg.port);
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
    } else if (f == "--kubeconfig") {
      cfg.kubeconfig = a.value();
    } else if (f == "--kube-context") {
      cfg.kube_context = a.value();
    } else if (f == "--standalone") {
      standalone = true;
    } else if (f == "--namespace") {
      cfg.namespace_ = a.value();
    } else if (f == "--reload-interval") {
      cfg.reload_interval = a.duration();
    } else if (f == "--request-timeout") {
      cfg.server.request_timeout = a.duration();
    } else if (f == "--threads") {
      cfg.server.threads = static_cast<size_t>(a.number(1, 1024));
    } else if (f == "--port-file") {
      port_file = a.value();
    } else if (f == "--log-level") {
      level = a.log_level();
    } else {
      return false;
    }
    return true;
  }
  template <class Config>
  void finish(Config &cfg) const {
    cfg.in_cluster = in_cluster(standalone, cfg.kubeconfig);
  }
};

int run_concierge(int argc, char **argv) {
  pinniped::ConciergeConfig cfg;
  ServerFlags common;
  Args a(argc, argv, 2);
  while (!a.done()) {
    std::string f = a.next_flag();
    if (f == "--help") {
      std::cout << kConciergeUsage;
      return 0;
    } else if (common.take(f, a, cfg)) {
      continue;
    } else if (f == "--api-group-suffix") {
      cfg.api_group_suffix = a.value();
      if (cfg.api_group_suffix.empty() || cfg.api_group_suffix.find('/') != std::string::npos)
        throw pinniped::bad_request("--api-group-suffix must be a DNS suffix like pinniped.dev");
    } else if (f == "--client-ca") {
      cfg.client_ca_file = a.value();
    } else if (f == "--requestheader-allowed-names") {
      std::istringstream names(a.value());
      for (std::string n; std::getline(names, n, ',');)
        if (!n.empty()) cfg.requestheader_allowed_names.push_back(n);
    } else if (f == "--signer-cert") {
      cfg.signer_cert_file = a.value();
    } else if (f == "--signer-key") {
      cfg.signer_key_file = a.value();
    } else if (f == "--signer-root") {
      cfg.signer_root = a.value();
    } else if (f == "--strategy") {
      std::string v = a.value();
      if (v == "auto")
        cfg.strategy = pinniped::ConciergeConfig::Strategy::automatic;
      else if (v == "signer-files")
        cfg.strategy = pinniped::ConciergeConfig::Strategy::signer_files;
      else if (v == "csr")
        cfg.strategy = pinniped::ConciergeConfig::Strategy::csr;
      else
        throw pinniped::bad_request("--strategy must be auto, signer-files or csr, not \"" + v + "\"");
    } else if (f == "--csr-timeout") {
      cfg.csr_wait = a.duration();
      if (cfg.csr_wait < std::chrono::seconds(1)) throw pinniped::bad_request("--csr-timeout is at least 1s");
    } else if (f == "--authenticators") {
      cfg.authenticators_file = a.value();
    } else if (f == "--credential-ttl") {
      cfg.credential_ttl = a.duration();
      if (cfg.credential_ttl > std::chrono::hours(1)) throw pinniped::bad_request("--credential-ttl is at most 1h");
    } else if (f == "--webhook-timeout") {
      cfg.webhook.timeout = a.duration();
      // The handling of an exchange is bounded by this; it must end before
      // the client gives up (the pinniped CLI waits 30 s for an answer).
      if (cfg.webhook.timeout > std::chrono::seconds(25))
        throw pinniped::bad_request("--webhook-timeout is at most 25s (the pinniped CLI waits 30s for an exchange)");
    } else if (f == "--webhook-attempts") {
      cfg.webhook.attempts = static_cast<int>(a.number(1, 10));
    } else if (f == "--max-body-bytes") {
      cfg.max_body_bytes = static_cast<size_t>(a.number(1024, 16 * 1024 * 1024));
      cfg.server.max_request_bytes = cfg.max_body_bytes + 16 * 1024;
    } else if (f == "--max-queue") {
      cfg.server.max_queue = static_cast<size_t>(a.number(0, 100000));
    } else if (f == "--key-pool") {
      cfg.key_pool = static_cast<size_t>(a.number(0, 1024));
    } else if (f == "--app-name") {
      cfg.app_name = a.value();
    } else if (f == "--serving-cert-validity") {
      cfg.serving_cert_validity = a.duration();
    } else if (f == "--serving-cert-renew-after") {
      cfg.serving_cert_renew_after = a.duration();
    } else if (f == "--direct-listen") {
      parse_listen(a.value(), cfg.direct_listen_host, cfg.direct_port);
    } else if (f == "--direct-endpoint") {
      cfg.direct_endpoint = a.value();
      pinniped::Url u = pinniped::Url::parse(cfg.direct_endpoint);
      if (u.scheme != "https") throw pinniped::bad_request("--direct-endpoint must be an https:// URL");
    } else if (f == "--direct-san") {
      cfg.direct_sans.push_back(a.value());
    } else if (f == "--max-exchanges") {
      cfg.max_exchanges = static_cast<size_t>(a.number(1, 100000));
    } else if (f == "--direct-failure-limit") {
      cfg.direct_failure_limit = static_cast<int>(a.number(0, 100000));
    } else {
      throw pinniped::bad_request("unknown flag " + f + " (see pinniped concierge --help)");
    }
  }
  common.finish(cfg);
  // An exchange through the CSR API waits for the IDP, then for the signer:
  // both must end before the client gives up (the pinniped CLI waits 30 s).
  // (auto: the CSR wait gives way, down to 1 s.)
  if (cfg.webhook.timeout + cfg.csr_wait > std::chrono::seconds(25)) {
    if (cfg.strategy == pinniped::ConciergeConfig::Strategy::csr)
      throw pinniped::bad_request(
          "--webhook-timeout and --csr-timeout together are at most 25s (the pinniped CLI waits 30s for an exchange)");
    cfg.csr_wait = std::max<pinniped::Millis>(std::chrono::seconds(1), std::chrono::seconds(25) - cfg.webhook.timeout);
  }

  sigset_t sigs = block_stop_signals();
  pinniped::Logger log(common.level);
  pinniped::Concierge concierge(cfg, log);
  return serve(concierge, common.port_file, sigs);
}

std::optional<std::string> env_lookup(const std::string &name) {
  const char *v = std::getenv(name.c_str());
  return v ? std::optional<std::string>(v) : std::nullopt;
}

bool wants_help(int argc, char **argv, int start) {
  for (int i = start; i < argc; i++)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") return true;
  return false;
}

// argv from `start` with the short flag -o spelled --output, for Args.
struct LongArgs {
  std::vector<std::string> items;
  std::vector<char *> ptrs;
  LongArgs(int argc, char **argv, int start) {
    for (int i = start; i < argc; i++) items.push_back(std::string(argv[i]) == "-o" ? "--output" : argv[i]);
    for (auto &s : items) ptrs.push_back(&s[0]);
  }
  Args args() { return Args(static_cast<int>(ptrs.size()), ptrs.data(), 0); }
};

int run_login(int argc, char **argv) {
  std::string method = argc > 2 ? argv[2] : "";
  if (method == "--help" || method == "-h") {
    std::cout << kLoginStaticUsage;
    return 0;
  }
  if (method != "static")
    throw pinniped::bad_request((method.empty() ? "missing login method" : "unknown login method \"" + method + "\"") +
                                std::string(" (only: pinniped login static; see pinniped login --help)"));
  if (wants_help(argc, argv, 3)) {
    std::cout << kLoginStaticUsage;
    return 0;
  }
  auto opts = pinniped::StaticLoginOptions::from_args(std::vector<std::string>(argv + 3, argv + argc), env_lookup);
  signal(SIGPIPE, SIG_IGN);
  const char *info = std::getenv("KUBERNETES_EXEC_INFO");
  std::string out;
  try {
    out = pinniped::run_exec_plugin(opts, info ? info : "");
  } catch (const pinniped::Error &e) {
    std::cerr << "pinniped: login failed: " << e.what() << "\n";
    return 1;
  }
  std::cout << out << "\n";
  return 0;
}

int run_get(int argc, char **argv) {
  std::string what = argc > 2 ? argv[2] : "";
  if (what == "--help" || what == "-h") {
    std::cout << kGetKubeconfigUsage;
    return 0;
  }
  if (what != "kubeconfig")
    throw pinniped::bad_request((what.empty() ? "missing resource" : "unknown resource \"" + what + "\"") +
                                std::string(" (only: pinniped get kubeconfig)"));
  if (wants_help(argc, argv, 3)) {
    std::cout << kGetKubeconfigUsage;
    return 0;
  }
  pinniped::GetKubeconfigOptions o;
  std::string output;
  LongArgs la(argc, argv, 3);
  Args a = la.args();
  while (!a.done()) {
    std::string f = a.next_flag();
    if (f == "--static-token") {
      o.static_token = a.value();
    } else if (f == "--static-token-env") {
      o.static_token_env = a.value();
    } else if (f == "--kubeconfig") {
      o.kubeconfig = a.value();
    } else if (f == "--kubeconfig-context") {
      o.context = a.value();
    } else if (f == "--concierge-authenticator-name") {
      o.authenticator_name = a.value();
    } else if (f == "--concierge-authenticator-type") {
      if (a.value() != "webhook")
        throw pinniped::bad_request("--concierge-authenticator-type: only \"webhook\" is supported");
    } else if (f == "--concierge-endpoint") {
      o.endpoint = a.value();
    } else if (f == "--concierge-ca-bundle") {
      o.ca_pem = pinniped::read_file(a.value());
    } else if (f == "--concierge-api-group-suffix") {
      o.api_group_suffix = a.value();
    } else if (f == "--credential-cache") {
      o.credential_cache = a.value();
    } else if (f == "--output") {
      output = a.value();
    } else {
      throw pinniped::bad_request("unknown flag " + f + " (see pinniped get kubeconfig --help)");
    }
  }
  if (o.static_token.empty() == o.static_token_env.empty())
    throw pinniped::bad_request("give exactly one of --static-token or --static-token-env");
  signal(SIGPIPE, SIG_IGN);
  std::string yaml;
  try {
    auto kc = pinniped::build_plugin_kubeconfig(o);
    if (!kc.warning.empty()) std::cerr << "pinniped: warning: " << kc.warning << "\n";
    yaml = kc.to_yaml();
    if (!output.empty()) pinniped::detail::write_file_atomic(output, yaml);
  } catch (const pinniped::Error &e) {
    std::cerr << "pinniped: get kubeconfig failed: " << e.what() << "\n";
    return 1;
  }
  if (output.empty()) std::cout << yaml;
  return 0;
}

int run_whoami(int argc, char **argv) {
  if (wants_help(argc, argv, 2)) {
    std::cout << kWhoamiUsage;
    return 0;
  }
  pinniped::WhoAmIOptions o;
  std::string format = "text";
  LongArgs la(argc, argv, 2);
  Args a = la.args();
  while (!a.done()) {
    std::string f = a.next_flag();
    if (f == "--kubeconfig") {
      o.kubeconfig = a.value();
    } else if (f == "--kubeconfig-context") {
      o.context = a.value();
    } else if (f == "--api-group-suffix") {
      o.api_group_suffix = a.value();
    } else if (f == "--timeout") {
      o.timeout = a.duration();
    } else if (f == "--output") {
      format = a.value();
      if (format != "text" && format != "json") throw pinniped::bad_request("--output must be text or json");
    } else {
      throw pinniped::bad_request("unknown flag " + f + " (see pinniped whoami --help)");
    }
  }
  signal(SIGPIPE, SIG_IGN);
  pinniped::WhoAmIResult r;
  try {
    r = pinniped::whoami(o, env_lookup);
  } catch (const pinniped::Error &e) {
    std::cerr << "pinniped: whoami failed: " << e.what() << "\n";
    return 1;
  }
  std::cout << (format == "json" ? pinniped::to_json_string(r.response) + "\n" : pinniped::whoami_text(r));
  return 0;
}

const char *kLocalUserAuthenticatorUsage =
    "Usage: pinniped local-user-authenticator [flags]\n"
    "       pinniped local-user-authenticator add-user NAME [--groups a,b] [--cost N]\n"
    "                                         [--output secret|line] [--namespace NS]\n"
    "\n"
    "A TokenReview webhook (POST /authenticate, authentication.k8s.io v1 and v1beta1) for\n"
    "tests and small sites: the token is username:password, checked against bcrypt hashes.\n"
    "Users are Secrets in a namespace (name = user, data.passwordHash, data.groups), as\n"
    "upstream's local-user-authenticator reads them, or lines of a users file.\n"
    "\n"
    "Flags:\n"
    "  --listen HOST:PORT          address to serve on (default 0.0.0.0:8443; port 0 = any)\n"
    "  --users-file FILE           users as name:bcrypt-hash[:group1,group2] lines (# comments);\n"
    "                              reloaded when it changes. Without it users are Secrets\n"
    "  --kubeconfig FILE           read user Secrets from this cluster (in a pod: the service\n"
    "                              account, found automatically)\n"
    "  --kube-context NAME         kubeconfig context (default: current-context)\n"
    "  --standalone                do not use the Kubernetes API even inside a pod\n"
    "  --namespace NS              namespace of the user Secrets and the serving certificate\n"
    "                              Secret (default local-user-authenticator)\n"
    "  --tls-cert FILE             serving certificate (PEM chain); reloaded when it changes\n"
    "  --tls-key FILE              serving key (PEM)\n"
    "  --tls-san NAME              name or IP for the self-generated serving certificate when\n"
    "                              there is no cluster (repeatable)\n"
    "  --serving-ca-out FILE       write the serving CA (PEM) here\n"
    "  --brake-burst N             failed attempts a user name may make in a row (default 10;\n"
    "                              0 turns the brake off)\n"
    "  --brake-refill DURATION     one more attempt per this time (default 6s)\n"
    "  --brake-names N             user names the brake tracks at once (default 10000)\n"
    "  --reload-interval DURATION  how often files are checked for changes (default 5s)\n"
    "  --request-timeout DURATION  time a client has to send one request (default 10s); handling\n"
    "                              and writing the answer have their own bounds\n"
    "  --threads N                 connection worker threads (default 16)\n"
    "  --port-file FILE            write the bound port here once listening\n"
    "  --log-level LEVEL           debug, info, warn or error (default info)\n"
    "\n"
    "add-user reads the password from stdin (a prompt without echo on a terminal), never\n"
    "from the command line, and prints a Secret manifest (default) or a users-file line.\n"
    "\n"
    "Example:\n"
    "  pinniped local-user-authenticator add-user alice --groups devs --output line >> users\n"
    "  pinniped local-user-authenticator --listen 127.0.0.1:8443 --users-file users \\\n"
    "    --serving-ca-out ca.pem\n";

int run_local_user_authenticator(int argc, char **argv) {
  if (argc > 2 && std::string(argv[2]) == "add-user") {
    if (argc < 4 || std::string(argv[3]).rfind("--", 0) == 0)
      throw pinniped::bad_request("add-user needs a user name (see pinniped local-user-authenticator --help)");
    pinniped::LocalUser u;
    u.name = argv[3];
    int cost = PINNIPED_LOCAL_USER_DEFAULT_COST;
    std::string output = "secret", ns = pinniped::kLocalUserNamespace;
    Args a(argc, argv, 4);
    while (!a.done()) {
      std::string f = a.next_flag();
      if (f == "--groups")
        u.groups = pinniped::parse_groups(a.value());
      else if (f == "--cost")
        cost = static_cast<int>(a.number(4, 31));
      else if (f == "--output")
        output = a.value();
      else if (f == "--namespace")
        ns = a.value();
      else
        throw pinniped::bad_request("unknown flag " + f + " (the password is read from stdin, never from flags)");
    }
    if (output != "secret" && output != "line") throw pinniped::bad_request("--output must be secret or line");
    if (output == "secret" && !pinniped::valid_secret_name(u.name))
      throw pinniped::bad_request("\"" + u.name + "\" cannot be a Secret name (lowercase letters, digits, '-', '.')");
    if (u.name.find(':') != std::string::npos || u.name != pinniped::detail::trim(u.name) || u.name[0] == '#')
      throw pinniped::bad_request("a user name cannot contain ':', start with '#' or blanks");
    std::string password = pinniped::read_password(u.name);
    if (password.empty()) throw pinniped::bad_request("the password is empty");
    u.password_hash = pinniped::bcrypt_hash(password, cost);
    std::cout << (output == "line" ? pinniped::users_file_line(u) + "\n" : pinniped::user_secret_yaml(u, ns));
    return 0;
  }

  pinniped::LocalUserAuthenticatorConfig cfg;
  ServerFlags common;
  Args a(argc, argv, 2);
  while (!a.done()) {
    std::string f = a.next_flag();
    if (f == "--help") {
      std::cout << kLocalUserAuthenticatorUsage;
      return 0;
    } else if (common.take(f, a, cfg)) {
      continue;
    } else if (f == "--users-file") {
      cfg.users_file = a.value();
    } else if (f == "--brake-burst") {
      cfg.brake.burst = static_cast<size_t>(a.number(0, 1000000));
    } else if (f == "--brake-refill") {
      cfg.brake.refill = a.duration();
    } else if (f == "--brake-names") {
      cfg.brake.max_names = static_cast<size_t>(a.number(1, 10000000));
    } else {
      throw pinniped::bad_request("unknown flag " + f + " (see pinniped local-user-authenticator --help)");
    }
  }
  common.finish(cfg);

  sigset_t sigs = block_stop_signals();
  pinniped::Logger log(common.level);
  pinniped::LocalUserAuthenticator server(cfg, log);
  return serve(server, common.port_file, sigs);
}

}  // namespace

int main(int argc, char **argv) {
  std::string cmd = argc > 1 ? argv[1] : "help";
  try {
    if (cmd == "concierge") return run_concierge(argc, argv);
    if (cmd == "local-user-authenticator") return run_local_user_authenticator(argc, argv);
    if (cmd == "login") return run_login(argc, argv);
    if (cmd == "get") return run_get(argc, argv);
    if (cmd == "whoami") return run_whoami(argc, argv);
    if (cmd == "version" || cmd == "--version") {
      std::cout << "pinniped " PINNIPED_VERSION " (mbedTLS " MBEDTLS_VERSION_STRING ", cpp-httplib " CPPHTTPLIB_VERSION
                   ")\n";
      return 0;
    }
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      if (argc > 2 && std::string(argv[2]) == "concierge")
        std::cout << kConciergeUsage;
      else if (argc > 2 && std::string(argv[2]) == "login")
        std::cout << kLoginStaticUsage;
      else if (argc > 2 && std::string(argv[2]) == "get")
        std::cout << kGetKubeconfigUsage;
      else if (argc > 2 && std::string(argv[2]) == "whoami")
        std::cout << kWhoamiUsage;
      else if (argc > 2 && std::string(argv[2]) == "local-user-authenticator")
        std::cout << kLocalUserAuthenticatorUsage;
      else
        std::cout << kUsage;
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
