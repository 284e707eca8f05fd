// Exchange benchmark: the real concierge (child process) and a TokenReview
// webhook on loopback, TokenCredentialRequests over keep-alive TLS at
// several concurrencies. Prints throughput, latency, the concierge's peak
// RSS, and the crypto bound measured in the same run (P-256 key generation
// plus one signature per request, same library, same core count), with the
// ratio achieved/bound. Never fails on time: it prints numbers.
#include <sys/stat.h>

#include <cstdio>

#include "tests/support.hpp"

using namespace testing;

namespace {

struct Run {
  int clients = 0;
  double seconds = 0;
  size_t ok = 0, failed = 0;
  std::vector<double> latencies_ms;
  double rps() const { return seconds > 0 ? ok / seconds : 0; }
  double pct(double p) {
    if (latencies_ms.empty()) return 0;
    std::sort(latencies_ms.begin(), latencies_ms.end());
    size_t i = std::min(latencies_ms.size() - 1, static_cast<size_t>(p * latencies_ms.size()));
    return latencies_ms[i];
  }
};

// `clients` threads, each on its own kept-alive connection. With a target
// rate (> 0) each thread paces itself (open loop); else as fast as possible.
Run drive(const ConciergeProcess &c, int clients, Millis duration, double target_rps) {
  Run r;
  r.clients = clients;
  std::mutex mu;
  std::string body = tcr_body("bench-token");
  auto start = Steady::now();
  auto until = start + duration;
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; i++) {
    ts.emplace_back([&, i] {
      auto cli = c.client();
      std::vector<double> lat;
      size_t ok = 0, failed = 0;
      auto interval = target_rps > 0 ? std::chrono::duration<double>(clients / target_rps)
                                     : std::chrono::duration<double>(0);
      auto next = Steady::now() + std::chrono::duration_cast<Steady::duration>(interval * (i / double(clients)));
      while (Steady::now() < until) {
        if (target_rps > 0) {
          std::this_thread::sleep_until(next);
          next += std::chrono::duration_cast<Steady::duration>(interval);
        }
        auto t0 = Steady::now();
        try {
          auto res = cli->request("POST", kTcrPath, {{"Content-Type", "application/json"}}, body,
                                  std::chrono::seconds(10));
          bool good = res.status == 201 && res.body.find("clientCertificateData") != std::string::npos;
          good ? ok++ : failed++;
        } catch (const Error &) {
          failed++;
        }
        lat.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
      }
      std::lock_guard<std::mutex> lk(mu);
      r.ok += ok;
      r.failed += failed;
      r.latencies_ms.insert(r.latencies_ms.end(), lat.begin(), lat.end());
    });
  }
  for (auto &t : ts) t.join();
  r.seconds = std::chrono::duration<double>(Steady::now() - start).count();
  return r;
}

// Key generation + one signature with the same signer, on `threads` threads.
double crypto_bound(const std::string &cert_pem, const std::string &key_pem, int threads, Millis duration) {
  auto signer = Signer::from_pem(cert_pem, key_pem);
  std::atomic<size_t> n{0};
  auto until = Steady::now() + duration;
  auto start = Steady::now();
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; i++)
    ts.emplace_back([&] {
      while (Steady::now() < until) {
        auto cert = signer->issue("bench-user", {"group-a", "group-b"}, std::chrono::minutes(5), ClientKey::generate());
        if (!cert.cert_pem.empty()) n++;
      }
    });
  for (auto &t : ts) t.join();
  return n / std::chrono::duration<double>(Steady::now() - start).count();
}

long vm_hwm_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

long file_size(const std::string &p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : -1;
}

}  // namespace

int main(int argc, char **argv) {
  std::string pinniped = "build/pinniped", static_bin;
  double seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--pinniped") pinniped = argv[i + 1];
    else if (a == "--static") static_bin = argv[i + 1];
    else if (a == "--seconds") seconds = std::atof(argv[i + 1]);
  }
  // The static binary is what ships; measure it when it is there.
  std::string bin = !static_bin.empty() && file_size(static_bin) > 0 ? static_bin : pinniped;
  setenv("PINNIPED_BIN", bin.c_str(), 1);
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  Millis dur(static_cast<int64_t>(seconds * 1000));

  TempDir dir;
  FakeIdp idp;
  idp.add_user("bench-token", {"bench-user", "", {"group-a", "group-b"}, {}});
  auto ca = make_self_signed_ca("bench-cluster-signer", std::chrono::hours(24));
  dir.write("signer.crt", ca.cert_pem);
  dir.write("signer.key", ca.key_pem);
  dir.write("auth.yaml", authenticator_yaml("my-idp", idp.url(), idp.ca_data()));
  ConciergeProcess c(dir, {"--signer-cert", dir.file("signer.crt"), "--signer-key", dir.file("signer.key"),
                           "--authenticators", dir.file("auth.yaml"), "--log-level", "warn"});

  std::printf("pinniped exchange benchmark: %s, %d cores, %.1f s per point\n", bin.c_str(), cores, seconds);
  double bound = crypto_bound(ca.cert_pem, ca.key_pem, cores, dur);
  std::printf("crypto bound (P-256 keygen + ECDSA sign, %d threads): %.0f /s\n\n", cores, bound);

  drive(c, 2, Millis(500), 0);  // warm up connections and the key pool
  std::printf("%8s %10s %9s %9s %9s %8s\n", "clients", "req/s", "p50 ms", "p99 ms", "failed", "/bound");
  double peak = 0;
  for (int clients : {1, 2, 4, 8, 16, 32}) {
    Run r = drive(c, clients, dur, 0);
    peak = std::max(peak, r.rps());
    std::printf("%8d %10.0f %9.2f %9.2f %9zu %7.0f%%\n", clients, r.rps(), r.pct(0.5), r.pct(0.99), r.failed,
                100 * r.rps() / bound);
  }
  Run half = drive(c, 4, dur, peak / 2);
  std::printf("\nat half of peak (%.0f req/s offered, 4 clients): %.0f req/s, p50 %.2f ms, p99 %.2f ms, %zu failed\n",
              peak / 2, half.rps(), half.pct(0.5), half.pct(0.99), half.failed);
  long hwm = vm_hwm_kib(c.process().pid());
  std::printf("\nsummary\n");
  std::printf("  peak throughput      %8.0f req/s   (bound %.0f /s, ratio %.2f; target >= 0.80)\n", peak, bound,
              peak / bound);
  std::printf("  p99 at half peak     %8.2f ms      (target <= 5 ms)\n", half.pct(0.99));
  std::printf("  concierge peak RSS   %8.2f MiB     (VmHWM; target <= 8 MiB)\n", hwm / 1024.0);
  if (!static_bin.empty() && file_size(static_bin) > 0) {
    int rc = 0;
    long gz = std::atol(run("gzip -9c '" + static_bin + "' | wc -c", &rc).c_str());
    std::printf("  static binary        %8.2f MiB     (%.2f MiB gzipped; target <= 3 MiB)\n",
                file_size(static_bin) / 1048576.0, gz / 1048576.0);
  }
  c.process().signal(SIGTERM);
  c.process().wait(std::chrono::seconds(10));
  return 0;
}
