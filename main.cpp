// pinniped: the program. Argument parsing and dispatch only; everything
// else lives in pinniped.hpp. Every command is a pinniped::Command whose
// flag table parses its arguments, prints its help and makes the shell
// completion. A UsageError (how the command was called) exits 2; any other
// failure exits 1, in every command.
#include <csignal>
#include <iostream>

#include "pinniped.hpp"

namespace {

using pinniped::call_flag;
using pinniped::Command;
using pinniped::duration_flag;
using pinniped::FlagRow;
using pinniped::list_flag;
using pinniped::maybe_text_flag;
using pinniped::Millis;
using pinniped::number_flag;
using pinniped::short_flag;
using pinniped::switch_flag;
using pinniped::text_flag;
using pinniped::UsageError;
using Args = std::vector<std::string>;

// What "--timeout 0" (no limit) waits: longer than anyone waits for a command.
const Millis kNoLimit = std::chrono::hours(24 * 365);

// In a pod (KUBERNETES_SERVICE_HOST set), unless told --standalone or given a
// kubeconfig; --standalone also drops a --kubeconfig.
bool in_cluster(bool standalone, std::string &kubeconfig) {
  if (standalone) kubeconfig.clear();
  const char *k8s = std::getenv("KUBERNETES_SERVICE_HOST");
  return !standalone && kubeconfig.empty() && k8s && *k8s;
}

// "HOST:PORT" or "[v6]:PORT" of --listen and --direct-listen.
void parse_listen(const char *flag, const std::string &v, std::string &host, int &port) {
  auto colon = v.rfind(':');
  if (colon == std::string::npos) throw UsageError(std::string(flag) + " wants HOST:PORT, got \"" + v + "\"");
  host = v.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string p = v.substr(colon + 1);
  char *end = nullptr;
  long n = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end || n < 0 || n > 65535) throw UsageError(std::string(flag) + ": invalid port \"" + p + "\"");
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

// What both servers' flags set besides their config, and the checks after
// them.
struct ServerFlags {
  std::string port_file;
  pinniped::Logger::Level level = pinniped::Logger::Level::info;
  bool standalone = false;

  void finish(pinniped::ServingOptions &cfg) const {
    if (cfg.tls_cert_file.empty() != cfg.tls_key_file.empty())
      throw UsageError("give both --tls-cert and --tls-key, or neither");
    cfg.in_cluster = in_cluster(standalone, cfg.kubeconfig);
  }
};

// What the command line sets; a run uses its command's part. The flag tables
// below point into the one instance.
struct Options {
  pinniped::ConciergeConfig concierge;
  ServerFlags concierge_common;
  pinniped::LocalUserAuthenticatorConfig lua;
  ServerFlags lua_common;
  pinniped::LocalUser user;
  int cost = PINNIPED_LOCAL_USER_DEFAULT_COST;
  std::string user_output = "secret", user_namespace = pinniped::kLocalUserNamespace;
  pinniped::StaticLoginOptions login;
  bool login_have_token = false;
  pinniped::OidcLoginCommand login_oidc;
  pinniped::GetKubeconfigOptions get;
  std::string get_output;
  pinniped::WhoAmIOptions whoami;
  std::string whoami_output = "text";
  std::string version_output = "text";
  bool version = false;
} opts;

std::optional<std::string> env_lookup(const std::string &name) {
  const char *v = std::getenv(name.c_str());
  return v ? std::optional<std::string>(v) : std::nullopt;
}

// --- the commands' runs, after their flags are parsed

int run_concierge(const Args &) {
  Options &o = opts;
  auto &cfg = o.concierge;
  o.concierge_common.finish(cfg);
  if (cfg.strategy == pinniped::ConciergeConfig::Strategy::csr && !cfg.kube_mode())
    throw UsageError("--strategy csr needs a cluster (--kubeconfig, or run in one)");
  // An exchange through the CSR API waits for the IDP, then for the signer:
  // both must end before the client gives up (the pinniped CLI waits 30 s).
  // (auto: the CSR wait gives way, down to 1 s.)
  if (cfg.webhook.timeout + cfg.csr_wait > std::chrono::seconds(25)) {
    if (cfg.strategy == pinniped::ConciergeConfig::Strategy::csr)
      throw UsageError(
          "--webhook-timeout and --csr-timeout together are at most 25s (the pinniped CLI waits 30s for an exchange)");
    cfg.csr_wait = std::max<Millis>(std::chrono::seconds(1), std::chrono::seconds(25) - cfg.webhook.timeout);
  }
  sigset_t sigs = block_stop_signals();
  pinniped::Logger log(o.concierge_common.level);
  pinniped::Concierge concierge(cfg, log);
  return serve(concierge, o.concierge_common.port_file, sigs);
}

int run_local_user_authenticator(const Args &) {
  Options &o = opts;
  o.lua_common.finish(o.lua);
  sigset_t sigs = block_stop_signals();
  pinniped::Logger log(o.lua_common.level);
  pinniped::LocalUserAuthenticator server(o.lua, log);
  return serve(server, o.lua_common.port_file, sigs);
}

int run_add_user(const Args &args) {
  Options &o = opts;
  if (args.empty())
    throw UsageError("add-user needs a user name (see pinniped local-user-authenticator add-user --help)");
  auto &u = o.user;
  u.name = args[0];
  if (o.user_output == "secret" && !pinniped::valid_secret_name(u.name))
    throw UsageError("\"" + u.name + "\" cannot be a Secret name (lowercase letters, digits, '-', '.')");
  if (!pinniped::valid_users_file_name(u.name))
    throw UsageError("a user name cannot contain ':', start with '#' or blanks");
  std::string password = pinniped::read_password(u.name);
  // stdin is this command's input: an empty password is a mistake in the call.
  if (password.empty()) throw UsageError("the password is empty");
  u.password_hash = pinniped::bcrypt_hash(password, o.cost);
  std::cout << (o.user_output == "line" ? pinniped::users_file_line(u) + "\n"
                                        : pinniped::user_secret_yaml(u, o.user_namespace));
  return 0;
}

int run_login_static(const Args &) {
  Options &o = opts;
  o.login.finish(o.login_have_token, env_lookup);
  signal(SIGPIPE, SIG_IGN);
  const char *info = std::getenv("KUBERNETES_EXEC_INFO");
  std::string out;
  try {
    out = pinniped::run_exec_plugin(o.login, info ? info : "");
  } catch (const pinniped::Error &e) {
    std::cerr << "pinniped: login failed: " << e.what() << "\n";
    return 1;
  }
  std::cout << out << "\n";
  return 0;
}

int run_login_oidc(const Args &) {
  Options &o = opts;
  o.login_oidc.finish();
  signal(SIGPIPE, SIG_IGN);
  const char *info = std::getenv("KUBERNETES_EXEC_INFO");
  std::string out;
  try {
    out = pinniped::run_exec_plugin(o.login_oidc, info ? info : "", std::cerr);
  } catch (const UsageError &) {
    throw;
  } catch (const pinniped::Error &e) {
    std::cerr << "pinniped: login failed: " << e.what() << "\n";
    return 1;
  }
  std::cout << out << "\n";
  return 0;
}

int run_get_kubeconfig(const Args &) {
  Options &o = opts;
  bool no_static = o.get.static_token.empty() && o.get.static_token_env.empty();
  if (!o.get.static_token.empty() && !o.get.static_token_env.empty())
    throw UsageError("give exactly one of --static-token or --static-token-env");
  if (no_static && o.get.authenticator_type == "webhook")
    throw UsageError("give exactly one of --static-token or --static-token-env for a WebhookAuthenticator");
  signal(SIGPIPE, SIG_IGN);
  std::string yaml;
  try {
    auto kc = pinniped::build_plugin_kubeconfig(o.get);
    for (const auto &w : kc.warnings) std::cerr << "pinniped: warning: " << w << "\n";
    yaml = kc.to_yaml();
    if (!o.get_output.empty()) pinniped::write_file_atomic(o.get_output, yaml);
  } catch (const pinniped::Error &e) {
    std::cerr << "pinniped: get kubeconfig failed: " << e.what() << "\n";
    return 1;
  }
  if (o.get_output.empty()) std::cout << yaml;
  return 0;
}

int run_whoami(const Args &) {
  Options &o = opts;
  signal(SIGPIPE, SIG_IGN);
  pinniped::WhoAmIResult r;
  try {
    r = pinniped::whoami(o.whoami, env_lookup);
  } catch (const pinniped::Error &e) {
    std::cerr << "pinniped: whoami failed: " << e.what() << "\n";
    return 1;
  }
  if (o.whoami_output == "json")
    std::cout << pinniped::to_json_string(r.response) << "\n";
  else if (o.whoami_output == "yaml")
    std::cout << pinniped::to_yaml(r.response);
  else
    std::cout << pinniped::whoami_text(r);
  return 0;
}

int run_version(const Args &) {
  const Options &o = opts;
  if (o.version_output == "text") {
    std::cout << "pinniped " PINNIPED_VERSION " (mbedTLS " MBEDTLS_VERSION_STRING ", cpp-httplib " CPPHTTPLIB_VERSION
                 ")\n";
    return 0;
  }
  picojson::object v;
  v["version"] = pinniped::jv(PINNIPED_VERSION);
  v["mbedtlsVersion"] = pinniped::jv(MBEDTLS_VERSION_STRING);
  v["cppHttplibVersion"] = pinniped::jv(CPPHTTPLIB_VERSION);
  std::cout << (o.version_output == "json" ? pinniped::to_json_string(picojson::value(v)) + "\n"
                                           : pinniped::to_yaml(picojson::value(v)));
  return 0;
}

// --- the flag tables: plain data pointing into `opts`

// Where the two servers' help differs.
struct ServerHelp {
  const char *listen, *tls_san, *serving_ca_out, *kubeconfig, *namespace_;
};

void set_listen(const FlagRow &f, const std::string &v) {
  auto &cfg = *static_cast<pinniped::ServingOptions *>(f.to);
  parse_listen(f.name, v, cfg.listen_host, cfg.port);
}

void set_log_level(const FlagRow &f, const std::string &v) {
  auto l = pinniped::Logger::parse_level(v);
  if (!l) throw UsageError("--log-level: unknown level \"" + v + "\"");
  *static_cast<pinniped::Logger::Level *>(f.to) = *l;
}

// A timeout where 0 means no limit.
void set_timeout(const FlagRow &f, const std::string &v) {
  auto &t = *static_cast<Millis *>(f.to);
  t = pinniped::flag_duration(f.name, v, true);
  if (t.count() == 0) t = kNoLimit;
}

// The flags both servers take (listening, serving certificate, cluster
// access, reloading, logging): their ServingOptions.
constexpr std::array<FlagRow, 5> serving_flags(pinniped::ServingOptions &cfg, const ServerHelp &h) {
  return {{
      call_flag("--listen", "HOST:PORT", h.listen, &cfg, set_listen),
      text_flag("--tls-cert", "FILE", "serving certificate (PEM chain); reloaded when it changes", cfg.tls_cert_file),
      text_flag("--tls-key", "FILE", "serving key (PEM)", cfg.tls_key_file),
      list_flag("--tls-san", "NAME", h.tls_san, cfg.tls_sans),
      text_flag("--serving-ca-out", "FILE", h.serving_ca_out, cfg.serving_ca_out),
  }};
}
constexpr std::array<FlagRow, 4> cluster_flags(pinniped::ServingOptions &cfg, ServerFlags &common,
                                               const ServerHelp &h) {
  return {{
      text_flag("--kubeconfig", "FILE", h.kubeconfig, cfg.kubeconfig),
      text_flag("--kube-context", "NAME", "kubeconfig context (default: current-context)", cfg.kube_context),
      switch_flag("--standalone", "do not use the Kubernetes API even inside a pod", common.standalone),
      text_flag("--namespace", "NS", h.namespace_, cfg.namespace_),
  }};
}
constexpr std::array<FlagRow, 6> process_flags(pinniped::ServingOptions &cfg, ServerFlags &common) {
  return {{
      duration_flag("--reload-interval", "how often files are checked for changes (default 5s; more than 0)",
                    cfg.reload_interval),
      duration_flag("--shutdown-delay",
                    "on SIGTERM, how long /readyz fails before the listener closes (default 0); requests in "
                    "progress always finish",
                    cfg.shutdown_delay, true),
      duration_flag("--request-timeout",
                    "time a client has to send one request (default 10s; more than 0); handling and writing the "
                    "answer have their own bounds",
                    cfg.server.request_timeout),
      number_flag("--threads", "connection worker threads (default 16)", cfg.server.threads, 1, 1024),
      text_flag("--port-file", "FILE", "write the bound port here once listening", common.port_file),
      call_flag("--log-level", "LEVEL", "what to log, from this level up (default info)", &common.level, set_log_level,
                "debug|info|warn|error"),
  }};
}

using Strategy = pinniped::ConciergeConfig::Strategy;
constexpr ServerHelp kConciergeHelp = {
    "address to serve on (default 0.0.0.0:10250; port 0 = any)",
    "name or IP for the self-generated serving certificate, used when --tls-cert is not given",
    "write the self-generated serving CA (PEM) here",
    "work with the cluster of this kubeconfig (in a pod: the service account, found automatically)",
    "namespace of the concierge's Secret (default pinniped-concierge)"};
constexpr FlagRow kConciergeOwnFlags[] = {
    call_flag("--api-group-suffix", "SUFFIX", "API group suffix (default " PINNIPED_DEFAULT_API_GROUP_SUFFIX ")",
              &opts.concierge.api_group_suffix, pinniped::set_api_group_suffix),
    text_flag("--client-ca", "FILE",
              "request client certificates and verify them with this CA (front-proxy CA: X-Remote-* headers "
              "trusted from its clients)",
              opts.concierge.client_ca_file),
    call_flag("--requestheader-allowed-names", "N1,N2",
              "with --client-ca: only these CNs may send X-Remote-* headers, as kube-apiserver's flag (default: any "
              "CN)",
              &opts.concierge.requestheader_allowed_names,
              [](const FlagRow &f, const std::string &v) {
                for (const auto &n : pinniped::detail::split(v, ','))
                  if (!n.empty()) static_cast<std::vector<std::string> *>(f.to)->push_back(n);
              }),
    text_flag("--signer-cert", "FILE", "cluster signer certificate (PEM)", opts.concierge.signer_cert_file),
    text_flag("--signer-key", "FILE", "cluster signer key (PEM: SEC1, PKCS#1 or PKCS#8)",
              opts.concierge.signer_key_file),
    text_flag("--signer-root", "DIR",
              "look for the signer of k3s, RKE2, kubeadm, k0s, MicroK8s under DIR when --signer-* are not given "
              "(default /)",
              opts.concierge.signer_root),
    call_flag(
        "--strategy", "S",
        "how certificates are issued: signer-files (the files above), csr (the cluster's CSR API, signer "
        "kubernetes.io/kube-apiserver-client: no key here; needs a cluster), or auto (default: signer files when "
        "found, else the CSR API)",
        &opts.concierge.strategy,
        [](const FlagRow &f, const std::string &v) {
          auto &s = *static_cast<Strategy *>(f.to);
          if (v == "auto") s = Strategy::automatic;
          if (v == "signer-files") s = Strategy::signer_files;
          if (v == "csr") s = Strategy::csr;
        },
        "auto|signer-files|csr"),
    call_flag("--csr-timeout", "DURATION",
              "how long an exchange waits for the cluster to sign its CSR (default 10s, at least 1s; with "
              "--webhook-timeout at most 25s)",
              &opts.concierge.csr_wait,
              [](const FlagRow &f, const std::string &v) {
                auto &d = *static_cast<Millis *>(f.to);
                d = pinniped::flag_duration(f.name, v);
                if (d < std::chrono::seconds(1)) throw UsageError("--csr-timeout is at least 1s");
              }),
    text_flag("--authenticators", "FILE", "WebhookAuthenticator and JWTAuthenticator objects (YAML or JSON); reloaded",
              opts.concierge.authenticators_file),
    call_flag("--credential-ttl", "DURATION", "lifetime of issued certificates (default 5m; more than 0, at most 1h)",
              &opts.concierge.credential_ttl,
              [](const FlagRow &f, const std::string &v) {
                auto &d = *static_cast<Millis *>(f.to);
                d = pinniped::flag_duration(f.name, v);
                if (d > std::chrono::hours(1)) throw UsageError("--credential-ttl is at most 1h");
              }),
    call_flag("--webhook-timeout", "DURATION",
              "time allowed per authentication, retries included (default 10s; more than 0, at most 25s); it "
              "bounds the handling of an exchange",
              &opts.concierge.webhook.timeout,
              [](const FlagRow &f, const std::string &v) {
                auto &d = *static_cast<Millis *>(f.to);
                d = pinniped::flag_duration(f.name, v);
                // The handling of an exchange is bounded by this; it must end before
                // the client gives up (the pinniped CLI waits 30 s for an answer).
                if (d > std::chrono::seconds(25))
                  throw UsageError("--webhook-timeout is at most 25s (the pinniped CLI waits 30s for an exchange)");
              }),
    number_flag("--webhook-attempts", "tries on connection errors and HTTP 5xx (default 3)",
                opts.concierge.webhook.attempts, 1, 10),
    call_flag("--max-body-bytes", "N", "largest accepted request body (default 65536)", &opts.concierge,
              [](const FlagRow &f, const std::string &v) {
                auto &cfg = *static_cast<pinniped::ConciergeConfig *>(f.to);
                cfg.max_body_bytes = static_cast<size_t>(pinniped::flag_number(f.name, v, 1024, 16 << 20));
                cfg.server.max_request_bytes = cfg.max_body_bytes + 16 * 1024;
              }),
    number_flag("--max-queue",
                "connections with a request waiting for a worker before refusing (default 64; silent and idle "
                "ones wait off the workers)",
                opts.concierge.server.max_queue, 0, 100000),
    number_flag("--key-pool", "client keys, and presignatures for an EC signer, made ahead of time (default 16)",
                opts.concierge.key_pool, 0, 1024),
    number_flag("--max-exchanges",
                "exchanges handled at once; more get 429 at once (default: the threads less 4, so probes and "
                "metrics never wait behind an IDP)",
                opts.concierge.max_exchanges, 1, 100000),
    text_flag("--app-name", "NAME", "prefix of managed names: NAME-api, NAME-config (default pinniped-concierge)",
              opts.concierge.app_name),
    duration_flag("--serving-cert-validity", "lifetime of the managed serving certificate (default 720h)",
                  opts.concierge.serving_cert_validity),
    duration_flag("--serving-cert-renew-after", "renew it once it is this old (default 600h)",
                  opts.concierge.serving_cert_renew_after),
    call_flag("--direct-listen", "HOST:PORT",
              "also serve the exchange to clients that reach the concierge directly, not through kube-apiserver "
              "(the direct frontend, for clusters that refuse anonymous requests, as k3s does; off by default; the "
              "manifests use 0.0.0.0:10444)",
              &opts.concierge,
              [](const FlagRow &f, const std::string &v) {
                auto &cfg = *static_cast<pinniped::ConciergeConfig *>(f.to);
                parse_listen(f.name, v, cfg.direct_listen_host, cfg.direct_port);
              }),
    call_flag("--direct-endpoint", "URL",
              "the https URL clients reach the direct frontend at (default: the load-balancer address of Service "
              "<app-name>-direct; outside a pod also this host's first address)",
              &opts.concierge.direct_endpoint,
              [](const FlagRow &f, const std::string &v) {
                if (pinniped::Url::parse(v).scheme != "https")
                  throw UsageError("--direct-endpoint must be an https:// URL");
                *static_cast<std::string *>(f.to) = v;
              }),
    list_flag("--direct-san", "NAME", "another name or IP for the direct frontend's certificate",
              opts.concierge.direct_sans),
    number_flag("--direct-failure-limit",
                "failed exchanges a client address may make per minute on the direct frontend (default 10; 0 = no "
                "limit)",
                opts.concierge.direct_failure_limit, 0, 100000),
};
constexpr auto kConciergeFlags = pinniped::concat(serving_flags(opts.concierge, kConciergeHelp), kConciergeOwnFlags,
                                                  cluster_flags(opts.concierge, opts.concierge_common, kConciergeHelp),
                                                  process_flags(opts.concierge, opts.concierge_common));

constexpr ServerHelp kLuaHelp = {
    "address to serve on (default 0.0.0.0:8443; port 0 = any)",
    "name or IP for the self-generated serving certificate when there is no cluster", "write the serving CA (PEM) here",
    "read user Secrets from this cluster (in a pod: the service account, found automatically)",
    "namespace of the user Secrets and the serving certificate Secret (default local-user-authenticator)"};
constexpr FlagRow kLuaOwnFlags[] = {
    text_flag("--users-file", "FILE",
              "users as name:bcrypt-hash[:group1,group2] lines (# comments); reloaded when it changes. Without it "
              "users are Secrets",
              opts.lua.users_file),
    number_flag("--brake-burst", "failed attempts a user name may make in a row (default 10; 0 turns the brake off)",
                opts.lua.brake.burst, 0, 1000000),
    duration_flag("--brake-refill", "one more attempt per this time (default 6s; more than 0)", opts.lua.brake.refill),
    number_flag("--brake-names", "user names the brake tracks at once (default 10000)", opts.lua.brake.max_names, 1,
                10000000),
};
constexpr auto kLuaFlags =
    pinniped::concat(serving_flags(opts.lua, kLuaHelp), kLuaOwnFlags,
                     cluster_flags(opts.lua, opts.lua_common, kLuaHelp), process_flags(opts.lua, opts.lua_common));

#define PINNIPED_STR2(x) #x
#define PINNIPED_STR(x) PINNIPED_STR2(x)
constexpr FlagRow kAddUserFlags[] = {
    call_flag("--groups", "A,B", "the user's groups", &opts.user.groups,
              [](const FlagRow &f, const std::string &v) {
                *static_cast<decltype(opts.user.groups) *>(f.to) = pinniped::parse_groups(v);
              }),
    number_flag("--cost", "bcrypt cost (default " PINNIPED_STR(PINNIPED_LOCAL_USER_DEFAULT_COST) ")", opts.cost, 4, 31),
    short_flag('o', text_flag("--output", "FORMAT", "what to print (default secret)", opts.user_output, "secret|line")),
    text_flag("--namespace", "NS", "the Secret's namespace (default local-user-authenticator)", opts.user_namespace),
};

constexpr auto kLoginStaticFlags = pinniped::StaticLoginOptions::flag_table(opts.login, opts.login_have_token);
constexpr auto kLoginOidcFlags = pinniped::OidcLoginCommand::flag_table(opts.login_oidc);

constexpr FlagRow kGetKubeconfigFlags[] = {
    text_flag("--static-token", "TOKEN", "the token to put in the kubeconfig", opts.get.static_token),
    text_flag("--static-token-env", "VAR", "or: the plugin reads the token from VAR at login time",
              opts.get.static_token_env),
    text_flag("--kubeconfig", "FILE", "the kubeconfig to read (default $KUBECONFIG or ~/.kube/config)",
              opts.get.kubeconfig),
    text_flag("--kubeconfig-context", "NAME", "its context (default: current-context)", opts.get.context),
    text_flag("--concierge-authenticator-name", "NAME",
              "default: the cluster's only WebhookAuthenticator or JWTAuthenticator", opts.get.authenticator_name),
    text_flag("--concierge-authenticator-type", "TYPE",
              "webhook or jwt (default: webhook with a static token, else jwt); a JWTAuthenticator without a "
              "static token writes a `login oidc` user",
              opts.get.authenticator_type, "webhook|jwt"),
    text_flag("--oidc-issuer", "URL", "login oidc: the issuer (default: the JWTAuthenticator's spec.issuer)",
              opts.get.oidc_issuer),
    text_flag("--oidc-client-id", "ID", "login oidc: the client ID (default: the JWTAuthenticator's spec.audience)",
              opts.get.oidc_client_id),
    call_flag("--oidc-scopes", "LIST",
              "login oidc: scopes, comma-separated (default offline_access,openid,pinniped:request-audience,username,"
              "groups)",
              &opts.get.oidc_scopes, pinniped::OidcLoginCommand::set_scopes),
    number_flag("--oidc-listen-port", "login oidc: the loopback callback's port (default 0: any)",
                opts.get.oidc_listen_port, 0, 65535),
    call_flag("--oidc-ca-bundle", "FILE",
              "login oidc: PEM CA certificates of the issuer (default: the JWTAuthenticator's "
              "spec.tls.certificateAuthorityData)",
              &opts.get.oidc_ca_pem, pinniped::OidcLoginCommand::add_ca_file, nullptr, true),
    switch_flag("--oidc-skip-browser", "login oidc: print the login URL instead of opening a browser",
                opts.get.oidc_skip_browser),
    text_flag("--oidc-flow", "FLOW", "login oidc: browser or device (default: chosen at login time)",
              opts.get.oidc_flow, "browser|device"),
    maybe_text_flag("--oidc-session-cache", "FILE", "login oidc: its session cache", opts.get.oidc_session_cache),
    text_flag("--concierge-endpoint", "URL", "default: from the CredentialIssuer", opts.get.endpoint),
    call_flag(
        "--concierge-ca-bundle", "FILE", "PEM certificates of the endpoint's CA; default: from the CredentialIssuer",
        &opts.get.ca_pem,
        [](const FlagRow &f, const std::string &file) {
          std::string pem = pinniped::read_file(file);
          bool ok = pem.find("-----BEGIN CERTIFICATE-----") != std::string::npos;
          try {
            if (ok) pinniped::CertificateChain::parse(pem);
          } catch (const pinniped::Error &) {
            ok = false;
          }
          if (!ok) throw UsageError("--concierge-ca-bundle: " + file + " is not PEM certificates");
          auto &all = *static_cast<std::string *>(f.to);
          if (!all.empty() && all.back() != '\n') all += "\n";
          all += pem;
        },
        nullptr, true),
    text_flag("--concierge-api-group-suffix", "SUFFIX",
              "API group suffix (default " PINNIPED_DEFAULT_API_GROUP_SUFFIX ")", opts.get.api_group_suffix),
    maybe_text_flag("--credential-cache", "FILE", "passed on to login static", opts.get.credential_cache),
    call_flag("--pinniped-cli-path", "PATH",
              "the command the kubeconfig runs to log in (default pinniped, which kubectl finds on PATH)",
              &opts.get.command,
              [](const FlagRow &f, const std::string &v) {
                if (v.empty()) throw UsageError("--pinniped-cli-path must not be empty");
                *static_cast<std::string *>(f.to) = v;
              }),
    text_flag("--install-hint", "TEXT",
              "what kubectl prints when that command is missing (default: a line saying to put pinniped on PATH)",
              opts.get.install_hint),
    text_flag("--generated-name-suffix", "S",
              "the cluster, user and context are named after your context's cluster plus this (default -pinniped)",
              opts.get.name_suffix),
    switch_flag("--skip-validation", "write the kubeconfig without trying its server first", opts.get.skip_validation),
    call_flag("--timeout", "DURATION",
              "bounds the whole command, discovery and validation included (default 10m; 0 = no limit)",
              &opts.get.timeout, set_timeout),
    short_flag('o', text_flag("--output", "FILE", "write here (mode 0600) instead of stdout", opts.get_output)),
};

constexpr FlagRow kWhoamiFlags[] = {
    text_flag("--kubeconfig", "FILE", "default $KUBECONFIG or ~/.kube/config", opts.whoami.kubeconfig),
    text_flag("--kubeconfig-context", "NAME", "default: current-context", opts.whoami.context),
    text_flag("--api-group-suffix", "SUFFIX", "API group suffix (default " PINNIPED_DEFAULT_API_GROUP_SUFFIX ")",
              opts.whoami.api_group_suffix),
    short_flag('o', text_flag("--output", "FORMAT",
                              "text (default) as upstream prints it, or the WhoAmIRequest as json or yaml",
                              opts.whoami_output, "text|json|yaml")),
    call_flag("--timeout", "DURATION", "for each request (default 20s; 0 = no limit)", &opts.whoami.timeout,
              set_timeout),
};

constexpr FlagRow kVersionFlags[] = {
    short_flag('o',
               text_flag("--output", "FORMAT", "text (default), json or yaml", opts.version_output, "text|json|yaml")),
};

constexpr FlagRow kRootFlags[] = {
    switch_flag("--version", "print the version (as pinniped version)", opts.version),
};

// --- the command tree: every command's flags, help and run

int run_completion(const Args &args);
int run_help(const Args &args);
int run_root(const Args &args);

constexpr Command concierge_command() {
  Command c;
  c.name = "concierge";
  c.summary = "serve the credential exchange API";
  c.usage = "[flags]";
  c.description =
      "Serves TokenCredentialRequest (login.concierge.<suffix>/v1alpha1): authenticates a token with a TokenReview "
      "webhook and returns a short-lived client certificate signed by the cluster signer.";
  c.flags = kConciergeFlags;
  c.example =
      "pinniped concierge --listen 127.0.0.1:10250 \\\n"
      "  --signer-cert /var/lib/rancher/k3s/server/tls/client-ca.crt \\\n"
      "  --signer-key /var/lib/rancher/k3s/server/tls/client-ca.key \\\n"
      "  --authenticators /etc/pinniped/authenticators.yaml\n";
  c.run = run_concierge;
  return c;
}

constexpr Command add_user_command() {
  Command c;
  c.name = "add-user";
  c.summary = "make a user: a Secret manifest or a users-file line";
  c.usage = "NAME [flags]";
  c.description =
      "Reads the password from stdin (a prompt without echo on a terminal), never from the command line, and prints "
      "a Secret manifest (default) or a users-file line with its bcrypt hash.";
  c.max_args = 1;
  c.flags = kAddUserFlags;
  c.example = "pinniped local-user-authenticator add-user alice --groups devs --output line >> users\n";
  c.run = run_add_user;
  return c;
}
constexpr Command kLuaCommands[] = {add_user_command()};

constexpr Command local_user_authenticator_command() {
  Command c;
  c.name = "local-user-authenticator";
  c.summary = "a bcrypt TokenReview IDP";
  c.usage = "[flags]\n  pinniped local-user-authenticator add-user NAME [flags]";
  c.description =
      "A TokenReview webhook (POST /authenticate, authentication.k8s.io v1 and v1beta1) for tests and small sites: "
      "the token is username:password, checked against bcrypt hashes. Users are Secrets in a namespace (name = user, "
      "data.passwordHash, data.groups), as upstream's local-user-authenticator reads them, or lines of a users file.";
  c.flags = kLuaFlags;
  c.example =
      "pinniped local-user-authenticator add-user alice --groups devs --output line >> users\n"
      "pinniped local-user-authenticator --listen 127.0.0.1:8443 --users-file users \\\n"
      "  --serving-ca-out ca.pem\n";
  c.commands = kLuaCommands;
  c.run = run_local_user_authenticator;
  return c;
}

// A command that only holds its subcommands `sub`, as login holds static
// and oidc; `noun` names what a subcommand is in errors ("missing resource").
constexpr Command group(const char *name, const char *usage, const char *summary, const char *description,
                        const char *noun, pinniped::Rows<Command> sub) {
  Command c;
  c.name = name;
  c.summary = summary;
  c.usage = usage;
  c.description = description;
  c.commands = sub;
  c.subcommand_noun = noun;
  c.example = sub.first->example;
  return c;
}

constexpr Command login_static_command() {
  Command c;
  c.name = "static";
  c.summary = "the kubectl exec credential plugin (a cached client certificate)";
  c.usage = "[flags]";
  c.description =
      "The kubectl exec credential plugin: exchanges a static token for a short-lived client certificate through "
      "the concierge (TokenCredentialRequest via kube-apiserver) and prints an ExecCredential on stdout, in the "
      "apiVersion of KUBERNETES_EXEC_INFO (v1 or v1beta1; v1beta1 when unset). Certificates are cached until a "
      "minute before they expire. kubectl runs this; `pinniped get kubeconfig` writes the kubeconfig that makes it "
      "do so.";
  c.flags = kLoginStaticFlags;
  c.example =
      "MY_TOKEN=... pinniped login static --token-env MY_TOKEN --concierge-authenticator-name my-idp \\\n"
      "  --concierge-endpoint https://10.0.0.1:6443 --concierge-ca-bundle-data \"$(base64 -w0 ca.crt)\"\n";
  c.run = run_login_static;
  return c;
}
constexpr Command login_oidc_command() {
  Command c;
  c.name = "oidc";
  c.summary = "the kubectl exec credential plugin for an OpenID Connect login (browser or device flow)";
  c.usage = "[flags]";
  c.description =
      "The kubectl exec credential plugin for a JWTAuthenticator: logs in at the OpenID provider and exchanges its ID "
      "token at the concierge for a short-lived client certificate, printed as an ExecCredential on stdout. In "
      "order: a cached certificate; a cached ID token valid for 10 more minutes; the refresh token; else a login, "
      "in a browser (authorization code with PKCE through http://127.0.0.1:PORT/callback) or, with no display or "
      "--flow device, by the device flow (a URL and a code to enter on any other device). Prompts go to stderr. "
      "Tokens are kept in the session cache (mode 0600), certificates in the credential cache.";
  c.flags = kLoginOidcFlags;
  c.example =
      "pinniped login oidc --issuer https://idp.example.com --client-id kubernetes \\\n"
      "  --concierge-authenticator-name my-oidc --concierge-endpoint https://10.0.0.1:6443 \\\n"
      "  --concierge-ca-bundle-data \"$(base64 -w0 ca.crt)\"\n";
  c.run = run_login_oidc;
  return c;
}
constexpr Command kLoginCommands[] = {login_static_command(), login_oidc_command()};

constexpr Command get_kubeconfig_command() {
  Command c;
  c.name = "kubeconfig";
  c.summary = "write a kubeconfig whose user logs in through pinniped";
  c.usage = "[flags]";
  c.description =
      "Writes a kubeconfig for the cluster of your (admin) kubeconfig whose user logs in through pinniped: `pinniped "
      "login static` with --static-token or --static-token-env (a WebhookAuthenticator), else `pinniped login oidc` "
      "at a JWTAuthenticator's issuer, as its audience (the --oidc-* flags change what it runs). The authenticator, "
      "endpoint and CA are discovered from the cluster's authenticators and CredentialIssuer unless given.\n\n"
      "Its cluster, user and context are named after your context's cluster plus --generated-name-suffix, so that "
      "it merges into another kubeconfig (KUBECONFIG=a:b kubectl config view --flatten). Before it is written it is "
      "tried once: its server is reached with its CA, without credentials (--skip-validation skips this).";
  c.flags = kGetKubeconfigFlags;
  c.example =
      "pinniped get kubeconfig --static-token-env MY_TOKEN -o alice.kubeconfig\n"
      "MY_TOKEN=... kubectl --kubeconfig alice.kubeconfig get namespaces\n"
      "pinniped get kubeconfig --concierge-authenticator-name my-oidc -o oidc.kubeconfig  # OIDC\n";
  c.run = run_get_kubeconfig;
  return c;
}
constexpr Command kGetCommands[] = {get_kubeconfig_command()};

constexpr Command whoami_command() {
  Command c;
  c.name = "whoami";
  c.summary = "show who kube-apiserver thinks you are";
  c.usage = "[flags]";
  c.description =
      "Asks kube-apiserver (a WhoAmIRequest, identity.concierge.<suffix>/v1alpha1) who the kubeconfig's credentials "
      "belong to. A user that logs in with `pinniped login static` is logged in in-process, with the same flags and "
      "cache.";
  c.flags = kWhoamiFlags;
  c.example = "pinniped whoami --kubeconfig alice.kubeconfig -o json\n";
  c.run = run_whoami;
  return c;
}

constexpr Command version_command() {
  Command c;
  c.name = "version";
  c.summary = "print the version";
  c.usage = "[flags]";
  c.description = "Prints the version of pinniped and of the libraries built into it.";
  c.flags = kVersionFlags;
  c.example = "pinniped version -o json\n";
  c.run = run_version;
  return c;
}

constexpr Command completion_command() {
  Command c;
  c.name = "completion";
  c.summary = "print a shell completion script (bash, zsh or fish)";
  c.usage = "bash|zsh|fish";
  c.description =
      "Prints a script that completes pinniped's commands, flags and their fixed values in the shell, made from the "
      "same tables as the help.";
  c.args = "bash zsh fish";
  c.max_args = 1;
  c.example =
      "source <(pinniped completion bash)\n"
      "source <(pinniped completion zsh)\n"
      "pinniped completion fish | source\n";
  c.run = run_completion;
  return c;
}

constexpr Command help_command() {
  Command c;
  c.name = "help";
  c.summary = "show a command's help (as COMMAND --help does)";
  c.usage = "[COMMAND [SUBCOMMAND]]";
  c.max_args = 2;
  c.example = "pinniped help get kubeconfig\n";
  // The commands before it in kCommands.
  c.args = "concierge login get whoami local-user-authenticator version completion";
  c.run = run_help;
  return c;
}

constexpr Command kCommands[] = {
    concierge_command(),
    group("login", "static|oidc [flags]", "log in to a cluster (kubectl runs this)",
          "Logs in through the concierge, with a static token (`static`) or an OpenID Connect login (`oidc`).",
          "login method", kLoginCommands),
    group("get", "kubeconfig [flags]", "write files for the cluster's users",
          "Writes what a cluster's users need; `kubeconfig` is the one resource.", "resource", kGetCommands),
    whoami_command(),
    local_user_authenticator_command(),
    version_command(),
    completion_command(),
    help_command(),
};

constexpr Command root_command() {
  Command c;
  c.name = "pinniped";
  c.usage = "COMMAND [flags]";
  c.description = "pinniped " PINNIPED_VERSION " - a small Pinniped Concierge for edge Kubernetes.";
  c.commands = kCommands;
  c.flags = kRootFlags;
  c.example =
      "pinniped get kubeconfig --static-token-env MY_TOKEN -o alice.kubeconfig\n"
      "pinniped whoami --kubeconfig alice.kubeconfig\n"
      "pinniped help get kubeconfig\n"
      "source <(pinniped completion bash)\n";
  c.run = run_root;
  return c;
}
constexpr Command kRoot = root_command();

// The command that `names` lead to from `root` (for help), or nullptr.
const Command *find_command(const Command &root, const Args &names, std::string &path) {
  const Command *c = &root;
  path = root.name;
  for (const auto &n : names) {
    const Command *next = nullptr;
    for (const auto &s : c->commands)
      if (s.name == n) next = &s;
    if (!next) return nullptr;
    c = next;
    path += " " + n;
  }
  return c;
}

int run_completion(const Args &args) {
  if (args.empty()) throw UsageError("completion needs a shell: bash, zsh or fish");
  if (args[0] != "bash" && args[0] != "zsh" && args[0] != "fish")
    throw UsageError("completion: unknown shell \"" + args[0] + "\" (bash, zsh or fish)");
  std::cout << pinniped::completion_script(kRoot, args[0]);
  return 0;
}

int run_help(const Args &args) {
  std::string path;
  const Command *c = find_command(kRoot, args, path);
  if (!c) throw UsageError("unknown command \"" + args.back() + "\" (see pinniped help)");
  std::cout << pinniped::help_text(*c, path);
  return 0;
}

int run_root(const Args &args) {
  if (opts.version) return run_version(args);
  std::cout << pinniped::help_text(kRoot, "pinniped");
  return 0;
}

// " (only: pinniped get kubeconfig; see pinniped get --help)".
std::string only(const Command &c, const std::string &path) {
  std::vector<std::string> names;
  for (const auto &s : c.commands) names.push_back(path + " " + s.name);
  if (names.size() > 3) return " (see " + path + " --help)";
  return " (only: " + pinniped::join_words(names) + "; see " + path + " --help)";
}

// Follows the subcommands that `args` name, parses the rest by that
// command's flags and runs it (or prints its help).
int dispatch(const Command &root, const Args &args) {
  const Command *c = &root;
  std::string path = root.name;
  size_t i = 0;
  for (; i < args.size() && !c->commands.empty() && !args[i].empty() && args[i][0] != '-'; i++) {
    const Command *next = nullptr;
    for (const auto &s : c->commands)
      if (s.name == args[i]) next = &s;
    if (!next) throw UsageError("unknown " + std::string(c->subcommand_noun) + " \"" + args[i] + "\"" + only(*c, path));
    c = next;
    path += " " + std::string(c->name);
  }
  auto parsed =
      pinniped::parse_flags(Args(args.begin() + static_cast<long>(i), args.end()), c->flags, path, c->max_args);
  if (parsed.help) {
    std::cout << pinniped::help_text(*c, path);
    return 0;
  }
  if (!c->run) throw UsageError("missing " + std::string(c->subcommand_noun) + only(*c, path));
  return c->run(parsed.args);
}

}  // namespace

int main(int argc, char **argv) {
  try {
    return dispatch(kRoot, Args(argv + 1, argv + argc));
  } catch (const UsageError &e) {
    std::cerr << "pinniped: " << e.what() << "\n";
    return 2;
  } catch (const std::exception &e) {
    std::cerr << "pinniped: " << e.what() << "\n";
    return 1;
  }
}
