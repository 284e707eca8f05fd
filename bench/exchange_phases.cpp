// One TokenCredentialRequest exchange, phase by phase, for an instruction
// counter: tools/phases.sh runs `bench-exchange-phases N` under callgrind
// with N = 1 and N = 1 + COUNT and reads the functions of each phase (TLS
// handshakes, JSON, the webhook call, key generation, the signature, PEM)
// per exchange from the difference. Nothing here is timed.
//
// In this process: a pinniped::Concierge (signer files made here, the
// authenticators file naming the webhook, one worker thread so that the
// warm-up exchange prepares the curve group every later exchange uses) and
// the client, which calls exchange_token: a new connection, hence a server
// handshake, per exchange. The TokenReview webhook (testing::FakeIdp, real
// TLS on loopback) runs in a child process, a fresh exec of this program
// that callgrind does not follow, so that its instructions are not counted
// as the concierge's: the webhook is the identity provider's cost.
//
//   bench-exchange-phases N [--keep-alive] [--key-pool K]
//     1 warm-up exchange, then N; exit 0 when all got a certificate.
//     --keep-alive: one kept-alive client connection for all exchanges
//     (no handshake per exchange). --key-pool K: keys made ahead by the
//     pool's thread (default 0: key generation inside the exchange).
#include <climits>
#include <cstdio>

#include "tests/support.hpp"

using namespace testing;

namespace {

const char *kToken = "bench-token";

// The webhook, until killed: writes its CA and then its port into `dir`.
int run_idp(const std::string &dir) {
  FakeIdp idp;
  idp.add_user(kToken, {"bench-user", "", {"group-a", "group-b"}, {}});
  std::ofstream(dir + "/idp-ca.pem.tmp") << idp.ca_pem();
  std::rename((dir + "/idp-ca.pem.tmp").c_str(), (dir + "/idp-ca.pem").c_str());
  std::ofstream(dir + "/idp-port.tmp") << idp.port() << "\n";
  std::rename((dir + "/idp-port.tmp").c_str(), (dir + "/idp-port").c_str());
  for (;;) pause();
}

// The client side of one exchange, as `pinniped login static` does it. Kept
// out of line: tools/phases.sh reads the client's instructions from its name.
__attribute__((noinline)) bool client_exchange(const ExchangeOptions &o) {
  ClusterCredential c = exchange_token(o, kToken);
  return !c.client_certificate_data.empty();
}

// The same over one kept-alive connection (--keep-alive).
__attribute__((noinline)) bool client_exchange_kept_alive(HttpsClient &cli, const std::string &body) {
  auto res = cli.request("POST", kTcrPath, {{"Accept", "application/json"}, {"Content-Type", "application/json"}}, body,
                         std::chrono::seconds(60));
  if (res.status != 201) return false;
  auto out = TokenCredentialRequest::from_json(json::parse(res.body));
  return out.credential && !out.credential->client_certificate_data.empty();
}

}  // namespace

int main(int argc, char **argv) {
  if (argc == 3 && std::string(argv[1]) == "--idp") return run_idp(argv[2]);
  int n = -1;
  bool keep_alive = false;
  size_t key_pool = 0;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--keep-alive")
      keep_alive = true;
    else if (a == "--key-pool" && i + 1 < argc)
      key_pool = static_cast<size_t>(std::atoi(argv[++i]));
    else if (n < 0 && !a.empty() && std::isdigit(static_cast<unsigned char>(a[0])))
      n = std::atoi(a.c_str());
    else
      n = -2;
  }
  if (n < 0) {
    std::fprintf(stderr, "usage: bench-exchange-phases N [--keep-alive] [--key-pool K]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  TempDir dir;
  char self[PATH_MAX];
  if (!realpath(argv[0], self)) {
    std::fprintf(stderr, "bench-exchange-phases: cannot find %s\n", argv[0]);
    return 1;
  }
  Process idp({self, "--idp", dir.path}, dir.file("idp.log"));
  int idp_port = wait_for_port_file(idp, dir.file("idp-port"), std::chrono::seconds(30));
  if (idp_port <= 0) {
    std::fprintf(stderr, "bench-exchange-phases: the webhook did not start:\n%s", idp.log().c_str());
    return 1;
  }
  std::string idp_url = "https://127.0.0.1:" + std::to_string(idp_port) + "/authenticate";

  auto signer = make_self_signed_ca("bench-cluster-signer", std::chrono::hours(24));
  ConciergeConfig cfg;
  cfg.listen_host = "127.0.0.1";
  cfg.port = 0;
  cfg.signer_cert_file = dir.write("signer.crt", signer.cert_pem);
  cfg.signer_key_file = dir.write("signer.key", signer.key_pem);
  cfg.strategy = ConciergeConfig::Strategy::signer_files;
  cfg.authenticators_file =
      dir.write("auth.yaml", authenticator_yaml("my-idp", idp_url, detail::base64_encode(dir.read("idp-ca.pem"))));
  cfg.key_pool = key_pool;
  cfg.server.threads = 1;
  cfg.reload_interval = std::chrono::hours(1);  // no file polling between the two runs' exchanges
  Logger log(Logger::Level::warn);              // as bench/exchange.cpp runs it: no audit line
  Concierge concierge(cfg, log);
  concierge.start();
  std::thread serving([&] { concierge.run(); });

  ExchangeOptions o;
  o.endpoint = "https://127.0.0.1:" + std::to_string(concierge.port());
  o.tls.ca_pem = concierge.serving_ca_pem();
  o.authenticator_name = "my-idp";
  o.timeout = std::chrono::seconds(60);  // callgrind runs ~50x slower
  std::unique_ptr<HttpsClient> kept;
  std::string body = tcr_body(kToken);
  if (keep_alive) kept = std::make_unique<HttpsClient>(o.endpoint, o.tls);

  int failed = 0;
  for (int i = 0; i < 1 + n; i++) {
    try {
      bool ok = keep_alive ? client_exchange_kept_alive(*kept, body) : client_exchange(o);
      if (!ok) failed++;
    } catch (const Error &e) {
      std::fprintf(stderr, "bench-exchange-phases: exchange %d: %s\n", i, e.what());
      failed++;
    }
  }
  kept.reset();
  concierge.shutdown();
  serving.join();
  idp.signal(SIGKILL);
  idp.wait(std::chrono::seconds(10));
  std::printf("bench-exchange-phases: %d exchanges (1 warm-up)%s, %d failed\n", 1 + n,
              keep_alive ? " over one kept-alive connection" : ", a new connection each", failed);
  return failed == 0 ? 0 : 1;
}
