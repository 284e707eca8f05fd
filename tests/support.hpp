// Test and benchmark support: temp folders, PKI, a scripted TokenReview
// webhook on loopback, and the real `pinniped` binary as a child process.
// Independent of Catch2 so that bench/ can use it too.
#pragma once
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "pinniped.hpp"

namespace testing {

using namespace pinniped;

// A private folder under /tmp, removed on destruction.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/pinniped-test-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {  // in-process: no child to start (see spawn())
    nftw(
        path.c_str(),
        [](const char *p, const struct stat *, int, struct FTW *) {
          ::remove(p);
          return 0;
        },
        16, FTW_DEPTH | FTW_PHYS);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  std::string file(const std::string &name) const { return path + "/" + name; }
  std::string write(const std::string &name, const std::string &content) const {
    std::string p = file(name), tmp = p + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << content;
    }
    std::rename(tmp.c_str(), p.c_str());  // atomic, as a rotation would do it
    return p;
  }
  std::string read(const std::string &name) const { return pinniped::read_file(file(name)); }
};

// The cost multiplier for timeouts in slow builds (sanitizers): PINNIPED_SLOW.
inline int slow_factor() {
  const char *s = std::getenv("PINNIPED_SLOW");
  int f = s ? std::atoi(s) : 1;
  return f > 0 ? f : 1;
}

// A serving certificate for the given names/IPs, signed by `ca`.
inline CertificateAndKey serving_cert(const CertificateAndKey &ca, const std::vector<std::string> &names,
                                      bool server_auth = true) {
  CertificateTemplate t;
  t.common_name = names.empty() ? "server" : names[0];
  t.server_auth = server_auth;
  t.client_auth = !server_auth;
  t.key_usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
  for (const auto &n : names) (detail::is_ip_literal(n) ? t.ip_addresses : t.dns_names).push_back(n);
  auto now = Clock::now();
  t.not_before = now - std::chrono::minutes(5);
  t.not_after = now + std::chrono::hours(24);
  return issue_with_ca(ca, t);
}

// A client certificate (clientAuth) with the given CN and O's.
inline CertificateAndKey client_cert(const CertificateAndKey &ca, const std::string &cn,
                                     const std::vector<std::string> &orgs = {}) {
  CertificateTemplate t;
  t.common_name = cn;
  t.organizations = orgs;
  t.client_auth = true;
  auto now = Clock::now();
  t.not_before = now - std::chrono::minutes(5);
  t.not_after = now + std::chrono::hours(24);
  return issue_with_ca(ca, t);
}

// Single-quotes a word for the shell.
inline std::string shell_quote(const std::string &s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Reads a shell env file of KEY='value' lines (tests/e2e/cluster.sh's env).
inline std::map<std::string, std::string> read_env_file(const std::string &path) {
  std::map<std::string, std::string> env;
  std::istringstream in(pinniped::read_file(path));
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos || line.rfind("export", 0) == 0) continue;
    std::string v = line.substr(eq + 1);
    if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
    env[line.substr(0, eq)] = v;
  }
  return env;
}

// Starts `argv` (argv[0] a path) as a child process with no signal blocked
// and returns its pid once the child has reached exec (or has exited 127,
// the exec having failed). `in_child` runs between fork and exec: only
// async-signal-safe calls there. Under qemu-user a child forked from a
// suite with several threads sometimes hangs before its exec, in a futex
// wait that never ends (seen on arm64, through popen's posix_spawn). So the
// start is watched through a close-on-exec pipe, and a child that has not
// reached exec in 20 s is killed and started again, three times at most.
// Starts are serialized, so that no other child holds that pipe open.
inline pid_t spawn(const std::vector<std::string> &argv, const std::function<void()> &in_child = {}) {
  static std::mutex starting;
  std::vector<char *> args;
  for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  std::lock_guard<std::mutex> lock(starting);
  for (int attempt = 0; attempt < 3; attempt++) {
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    pid_t pid = fork();
    if (pid < 0) {
      ::close(gate[0]);
      ::close(gate[1]);
      throw std::runtime_error("fork failed");
    }
    if (pid == 0) {
      sigset_t none;  // whatever the suite blocks
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      if (in_child) in_child();
      execv(args[0], args.data());
      _exit(127);
    }
    ::close(gate[1]);
    pollfd p{gate[0], POLLIN, 0};
    int r;
    do r = ::poll(&p, 1, 20000);
    while (r < 0 && errno == EINTR);
    ::close(gate[0]);
    if (r > 0) return pid;  // the pipe closed: exec (or exit)
    ::kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    std::cerr << "spawn: " << argv[0] << " did not reach exec in 20 s; killed, starting it again\n";
  }
  throw std::runtime_error("spawn: " + argv[0] + " never reached exec");
}

// Runs `cmd` through the shell and returns its stdout; exit status in *rc.
inline std::string run(const std::string &cmd, int *rc = nullptr) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_t pid;
  try {
    pid = spawn({"/bin/sh", "-c", cmd}, [&] { dup2(out[1], 1); });
  } catch (...) {
    ::close(out[0]);
    ::close(out[1]);
    throw;
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (rc) *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return text;
}

// Polls `cond` every `every` until it holds or `limit` passes; its last
// answer. An exception from `cond` counts as "not yet".
inline bool eventually(const std::function<bool()> &cond, Millis limit, Millis every = Millis(20)) {
  auto holds = [&] {
    try {
      return cond();
    } catch (const std::exception &) {
      return false;
    }
  };
  auto until = Steady::now() + limit;
  while (Steady::now() < until) {
    if (holds()) return true;
    std::this_thread::sleep_for(every);
  }
  return holds();
}

// Whether `program` is on PATH.
inline bool have(const std::string &program) {
  int rc = 0;
  run("command -v " + shell_quote(program) + " >/dev/null 2>&1", &rc);
  return rc == 0;
}

// --- the e2e cluster (tests/e2e/cluster.sh), shared by the e2e suite and
// the benchmarks that run on it.

// `kubectl apply -k DIR` with the admin kubeconfig until it is accepted: CRDs
// and objects of their kinds in one apply can race the CRDs becoming
// established. Throws after 5 tries.
inline void apply_kustomization(const std::string &kubeconfig, const std::string &dir) {
  std::string out;
  for (int i = 0; i < 5; i++) {
    int rc = 0;
    out = run("kubectl --kubeconfig " + shell_quote(kubeconfig) + " apply -k " + shell_quote(dir) + " 2>&1", &rc);
    if (rc == 0) return;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  throw std::runtime_error("kubectl apply -k " + dir + " failed: " + out);
}

// kube-controller-manager with only its CSR signing controller, as k3s runs
// it: kube-apiserver-client requests signed with one CA certificate
// (CSR_SIGNING_CERT: k3s's client-ca.nochain.crt) and the client CA's key;
// `duration` is --cluster-signing-duration ("": its default, a year).
// Kubernetes 1.20 ignores spec.expirationSeconds: 10m stands in for a
// cluster that honours it.
inline std::vector<std::string> controller_manager_argv(const std::map<std::string, std::string> &env,
                                                        const std::string &duration) {
  std::vector<std::string> argv = {env.at("KUBE_CONTROLLER_MANAGER"),
                                   "--kubeconfig",
                                   env.at("KUBECONFIG"),
                                   "--controllers",
                                   "csrsigning",
                                   "--cluster-signing-kube-apiserver-client-cert-file",
                                   env.at("CSR_SIGNING_CERT"),
                                   "--cluster-signing-kube-apiserver-client-key-file",
                                   env.at("SIGNER_KEY"),
                                   "--leader-elect=false",
                                   "--port",
                                   "0",
                                   "--secure-port",
                                   "0"};
  if (!duration.empty()) argv.insert(argv.end(), {"--cluster-signing-duration", duration});
  return argv;
}

// The command line of a benchmark on the e2e cluster: --pinniped BIN (made
// absolute), --e2e-dir DIR (default $E2E_DIR), --runs N (at least
// `min_runs`). nullopt, after a line on stderr, when either is missing.
struct ClusterBenchArgs {
  std::string pinniped = "build/pinniped", e2e_dir;
  int runs = 0;
};
inline std::optional<ClusterBenchArgs> cluster_bench_args(int argc, char **argv, const char *name, int runs,
                                                          int min_runs) {
  ClusterBenchArgs a;
  a.runs = runs;
  if (const char *d = std::getenv("E2E_DIR")) a.e2e_dir = d;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--pinniped")
      a.pinniped = argv[i + 1];
    else if (f == "--e2e-dir")
      a.e2e_dir = argv[i + 1];
    else if (f == "--runs")
      a.runs = std::max(min_runs, std::atoi(argv[i + 1]));
  }
  char real[4096];
  if (!realpath(a.pinniped.c_str(), real)) {
    std::fprintf(stderr, "%s: %s not found\n", name, a.pinniped.c_str());
    return std::nullopt;
  }
  a.pinniped = real;
  if (a.e2e_dir.empty()) {
    std::fprintf(stderr, "%s: needs the e2e cluster (--e2e-dir DIR of tests/e2e/cluster.sh up)\n", name);
    return std::nullopt;
  }
  return a;
}

// A TokenReview webhook served over real TLS on 127.0.0.1, whose answers a
// test scripts. By default it authenticates the tokens in `users` and
// echoes the request's apiVersion.
class FakeIdp {
 public:
  using Handler = std::function<void(const httplib::Request &, httplib::Response &)>;

  explicit FakeIdp(std::vector<std::string> names = {"127.0.0.1", "localhost"}, const std::string &bind = "127.0.0.1") {
    ca_ = make_self_signed_ca("fake-idp-ca", std::chrono::hours(24));
    auto leaf = serving_cert(ca_, names);
    TlsServerOptions o;
    o.threads = 8;
    o.idle_timeout = std::chrono::seconds(5);
    server_ = std::make_unique<TlsServer>(o);
    server_->set_credentials({leaf.cert_pem, leaf.key_pem, ""});
    server_->Post(".*", [this](const httplib::Request &req, httplib::Response &res) {
      count_++;
      Handler h;
      {
        std::lock_guard<std::mutex> lk(mu_);
        h = handler_;
      }
      if (h) return h(req, res);
      default_handler(req, res);
    });
    port_ = server_->bind_to_any_port(bind);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(Millis(1));
  }
  ~FakeIdp() {
    server_->shutdown();
    thread_.join();
  }

  void set_handler(Handler h) {
    std::lock_guard<std::mutex> lk(mu_);
    handler_ = std::move(h);
  }
  void add_user(const std::string &token, UserInfo u) {
    std::lock_guard<std::mutex> lk(mu_);
    users_[token] = std::move(u);
  }
  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/authenticate"; }
  const std::string &ca_pem() const { return ca_.cert_pem; }
  std::string ca_data() const { return detail::base64_encode(ca_.cert_pem); }
  int requests() const { return count_.load(); }
  TlsServer &server() { return *server_; }

  // The TokenReview answer the default handler gives.
  void default_handler(const httplib::Request &req, httplib::Response &res) {
    TokenReview in;
    try {
      in = TokenReview::from_json(json::parse(req.body));
    } catch (const Error &e) {
      res.status = 400;
      res.set_content(e.what(), "text/plain");
      return;
    }
    TokenReview out;
    out.api_version = in.api_version;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = users_.find(in.token);
      if (it != users_.end()) {
        out.authenticated = true;
        out.user = it->second;
      }
    }
    res.status = 200;
    res.set_content(out.to_json(false).serialize(), "application/json");
  }

 private:
  CertificateAndKey ca_;
  std::unique_ptr<TlsServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  Handler handler_;
  std::map<std::string, UserInfo> users_;
  std::atomic<int> count_{0};
};

// A child process with stdout+stderr in a log file; killed on destruction.
class Process {
 public:
  Process(const std::vector<std::string> &argv, const std::string &log_path) : log_path_(log_path) {
    const char *log = log_path.c_str();
    pid_ = spawn(argv, [log] {
      int fd = ::open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
    });
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Process(const Process &) = delete;
  Process &operator=(const Process &) = delete;

  pid_t pid() const { return pid_; }
  // Only while the child runs: its pid, once reaped, may be reused, even as
  // the thread ID of one of our own threads (kill() would then signal us).
  void signal(int sig) {
    if (pid_ > 0 && running()) ::kill(pid_, sig);
  }
  // Waits up to `timeout` for the process to end; its exit code or -1.
  int wait(Millis timeout) {
    if (exited_) return code_;
    auto until = Steady::now() + timeout;
    while (Steady::now() < until) {
      int st = 0;
      pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return code_;
      }
      std::this_thread::sleep_for(Millis(10));
    }
    return -1;
  }
  bool running() {
    if (exited_) return false;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      exited_ = true;
      code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return false;
    }
    return true;
  }
  std::string log() const {
    try {
      return pinniped::read_file(log_path_);
    } catch (...) {
      return "";
    }
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
  std::string log_path_;
};

// The port a server started as `proc` writes to `port_file` (--port-file),
// once it has; 0 when the process ends or `limit` passes first.
inline int wait_for_port_file(Process &proc, const std::string &port_file, Millis limit) {
  auto until = Steady::now() + limit;
  while (Steady::now() < until) {
    if (access(port_file.c_str(), R_OK) == 0) {
      int port = std::atoi(pinniped::read_file(port_file).c_str());
      if (port > 0) return port;
    }
    if (!proc.running()) return 0;
    std::this_thread::sleep_for(Millis(10));
  }
  return 0;
}

inline std::string pinniped_bin() {
  const char *b = std::getenv("PINNIPED_BIN");
  return b ? b : "build/pinniped";
}

// The ELF file behind pinniped_bin(): the same path, except for cross-built
// suites, where pinniped_bin() is a qemu-user wrapper script.
inline std::string pinniped_elf() {
  const char *b = std::getenv("PINNIPED_BIN_FILE");
  return b ? b : pinniped_bin();
}

// The shipped static binary of the architecture under test, and the command
// prefix (qemu-user, or nothing) that runs it.
inline std::string pinniped_static() {
  const char *b = std::getenv("PINNIPED_STATIC");
  return b ? b : "build/static/amd64/pinniped";
}
inline std::string static_runner() {
  const char *r = std::getenv("PINNIPED_STATIC_RUNNER");
  return r && *r ? std::string(r) + " " : "";
}

// WebhookAuthenticator YAML for the concierge's --authenticators file.
inline std::string authenticator_yaml(const std::string &name, const std::string &endpoint, const std::string &ca_data,
                                      const std::string &extra_spec = "") {
  std::string y =
      "apiVersion: authentication.concierge.pinniped.dev/v1alpha1\n"
      "kind: WebhookAuthenticator\n"
      "metadata:\n  name: " +
      name + "\nspec:\n  endpoint: " + endpoint + "\n";
  if (!ca_data.empty()) y += "  tls:\n    certificateAuthorityData: " + ca_data + "\n";
  return y + extra_spec;
}

// A form or a URL query read back (the product only writes them:
// pinniped::detail::form_encode).
inline std::multimap<std::string, std::string> form_decode(const std::string &text) {
  std::multimap<std::string, std::string> out;
  for (const auto &pair : pinniped::detail::split(text, '&')) {
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    out.emplace(pinniped::detail::percent_decode(pair.substr(0, eq), true),
                eq == std::string::npos ? "" : pinniped::detail::percent_decode(pair.substr(eq + 1), true));
  }
  return out;
}

// The real `pinniped concierge` as a child process on 127.0.0.1:<any>.
class ConciergeProcess {
 public:
  ConciergeProcess(const TempDir &dir, const std::vector<std::string> &extra, bool wait_ready = true) {
    std::remove(dir.file("port").c_str());
    std::vector<std::string> argv = {pinniped_bin(), "concierge",      "--listen",         "127.0.0.1:0",
                                     "--port-file",  dir.file("port"), "--serving-ca-out", dir.file("serving-ca.pem")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(argv, dir.file("concierge.log"));
    if (!wait_ready) return;
    port_ = wait_for_port_file(*proc_, dir.file("port"), std::chrono::seconds(10 * slow_factor()));
    if (port_ <= 0) throw std::runtime_error("concierge did not start; log:\n" + proc_->log());
    ca_pem_ = dir.read("serving-ca.pem");
  }
  int port() const { return port_; }
  std::string base() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string &ca_pem() const { return ca_pem_; }
  Process &process() { return *proc_; }
  std::string log() const { return proc_->log(); }

  // A fresh HTTPS client for this concierge.
  std::unique_ptr<HttpsClient> client() const {
    ClientTlsOptions t;
    t.ca_pem = ca_pem_;
    return std::make_unique<HttpsClient>(base(), t);
  }
  HttpResponse request(const std::string &method, const std::string &path, const std::string &body,
                       httplib::Headers headers = {{"Content-Type", "application/json"}}) const {
    return client()->request(method, path, headers, body, std::chrono::seconds(30 * slow_factor()));
  }

 private:
  std::unique_ptr<Process> proc_;
  int port_ = 0;
  std::string ca_pem_;
};

inline const std::string kTcrPath = "/apis/login.concierge.pinniped.dev/v1alpha1/tokencredentialrequests";

// A TokenCredentialRequest body for `token` and authenticator `name`.
inline std::string tcr_body(const std::string &token, const std::string &name = "my-idp") {
  TokenCredentialRequest r;
  r.api_version = "login.concierge.pinniped.dev/v1alpha1";
  r.token = token;
  r.authenticator = {"authentication.concierge.pinniped.dev", "WebhookAuthenticator", name};
  return r.to_json(true).serialize();
}

// The value of one sample (series with its labels) of a Prometheus text
// page; -1 when absent.
inline double metric_sample(const std::string &page, const std::string &series) {
  size_t at = page.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::atof(page.c_str() + at + 1 + series.size() + 1);
}

// Both halves of a test signer: an EC (k3s-like) or RSA (kubeadm-like)
// CA made by openssl, so that our parser meets foreign encodings.
struct OpensslSigner {
  std::string cert_file, key_file;
};
inline OpensslSigner openssl_signer(const TempDir &dir, const std::string &name, const std::string &kind,
                                    const std::string &subject) {
  std::string key = dir.file(name + ".key"), crt = dir.file(name + ".crt");
  std::string gen = kind == "rsa" ? "openssl genrsa -out '" + key + "' 2048 2>/dev/null"
                                  : "openssl ecparam -name prime256v1 -genkey -noout -out '" + key + "' 2>/dev/null";
  int rc = 0;
  run(gen, &rc);
  if (rc != 0) throw std::runtime_error("openssl key generation failed");
  run("openssl req -x509 -new -key '" + key + "' -subj '" + subject + "' -days 30 -out '" + crt +
          "' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
          " 2>/dev/null",
      &rc);
  if (rc != 0) throw std::runtime_error("openssl req failed");
  return {crt, key};
}

// --- the OIDC test stack (tests/oidc: oidc-provider on Node, headless chromium)

// The folder of provider.mjs and browser.mjs: $PINNIPED_TEST_OIDC_STACK, else
// tests/oidc of the working directory (the repository).
// An absolute path: scripts import modules from it wherever they run.
inline std::string oidc_stack() {
  std::string d = pinniped::detail::env_or_empty("PINNIPED_TEST_OIDC_STACK");
  if (d.empty()) d = "tests/oidc";
  char real[PATH_MAX];
  return ::realpath(d.c_str(), real) ? std::string(real) : d;
}
inline std::string node_bin() {
  std::string n = pinniped::detail::find_executable("node");
  if (n.empty()) throw std::runtime_error("node is not on PATH (tools/oidc-deps.sh)");
  return n;
}
// A missing stack fails the test that needs it (never a silent skip).
inline void require_oidc_stack() {
  for (const char *f : {"/provider.mjs", "/browser.mjs", "/open-browser.sh", "/node_modules/oidc-provider",
                        "/node_modules/playwright-core"})
    if (::access((oidc_stack() + f).c_str(), R_OK) != 0)
      throw std::runtime_error("the OIDC test stack is missing " + oidc_stack() + f + " (run tools/oidc-deps.sh)");
  if (::access("/usr/bin/chromium", X_OK) != 0)
    throw std::runtime_error("/usr/bin/chromium is missing (run tools/oidc-deps.sh)");
}

// provider.mjs as a child process on 127.0.0.1, with a certificate from the
// header's CA; SIGTERM at the end (and its own --lifetime as a backstop).
class OidcTestProvider {
 public:
  explicit OidcTestProvider(const TempDir &dir, std::vector<std::string> extra = {}) {
    require_oidc_stack();
    // A provider started again in the same folder keeps its certificate.
    std::string chain = dir.file("provider.pem"), key = dir.file("provider.key");
    ca_file = dir.file("provider-ca.pem");
    if (::access(ca_file.c_str(), R_OK) != 0) {
      auto ca = pinniped::make_self_signed_ca("pinniped oidc test CA", std::chrono::hours(24));
      auto leaf = serving_cert(ca, {"127.0.0.1"});
      // The chain, so that chromium sees the CA it is pinned to.
      dir.write("provider.pem", leaf.cert_pem + ca.cert_pem);
      dir.write("provider.key", leaf.key_pem);
      dir.write("provider-ca.pem", ca.cert_pem);
    }
    ca_pem = dir.read("provider-ca.pem");
    std::vector<std::string> argv = {
        node_bin(), oidc_stack() + "/provider.mjs", "--cert", chain, "--key", key, "--lifetime", "900"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(argv, dir.file("provider-" + std::to_string(counter()++) + ".log"));
    bool up = eventually(
        [&] {
          std::istringstream lines(proc_->log());
          for (std::string l; std::getline(lines, l);)
            if (l.rfind("{\"issuer\":", 0) == 0) {
              issuer = pinniped::json::get_string(pinniped::json::parse(l), "issuer", "issuer");
              return true;
            }
          return !proc_->running();
        },
        std::chrono::seconds(30 * slow_factor()), Millis(50));
    if (!up || issuer.empty()) throw std::runtime_error("provider.mjs did not start:\n" + proc_->log());
  }
  ~OidcTestProvider() {
    proc_->signal(SIGTERM);
    proc_->wait(std::chrono::seconds(3));
  }
  OidcTestProvider(const OidcTestProvider &) = delete;
  OidcTestProvider &operator=(const OidcTestProvider &) = delete;
  std::string log() const { return proc_->log(); }

  std::string issuer, ca_pem, ca_file;

 private:
  static int &counter() {
    static int n = 0;
    return n;
  }
  std::unique_ptr<Process> proc_;
};

// Runs browser.mjs MODE URL USER PASSWORD [CODE]; its exit code and output.
inline std::pair<int, std::string> drive_browser(const OidcTestProvider &p, const std::string &mode,
                                                 const std::string &url, const std::string &code = "",
                                                 const std::string &user = "alice",
                                                 const std::string &password = "alice-password") {
  int rc = 0;
  std::string out =
      run("PINNIPED_TEST_OIDC_CA=" + shell_quote(p.ca_file) + " " + shell_quote(node_bin()) + " " +
              shell_quote(oidc_stack() + "/browser.mjs") + " " + mode + " " + shell_quote(url) + " " +
              shell_quote(user) + " " + shell_quote(password) + (code.empty() ? "" : " " + shell_quote(code)) + " 2>&1",
          &rc);
  return {rc, out};
}

}  // namespace testing
