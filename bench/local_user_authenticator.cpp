// local-user-authenticator benchmark: the real binary (child process, users
// file, brake off) answering TokenReviews over keep-alive TLS, compared with
// a bare bcrypt loop of the same cost on the same number of threads as
// cores; and the time of an unknown user against a wrong password over many
// interleaved tries (the goal: within 5%). Never fails on time: it prints.
#include <cmath>
#include <cstdio>
#include <numeric>

#include "tests/support.hpp"

using namespace testing;

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Verifications per second of bcrypt alone, on `threads` threads.
double bare_bcrypt(const std::string &password, const std::string &hash, int threads, Millis duration) {
  std::atomic<size_t> n{0};
  auto start = Steady::now();
  auto until = start + duration;
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; i++)
    ts.emplace_back([&] {
      while (Steady::now() < until) {
        if (bcrypt_verify(password, hash)) n++;
      }
    });
  for (auto &t : ts) t.join();
  return n / std::chrono::duration<double>(Steady::now() - start).count();
}

std::string body(const std::string &token) {
  TokenReview r;
  r.token = token;
  return r.to_json(true).serialize();
}

const httplib::Headers kHeaders = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};

// Authentications per second: `clients` threads on kept-alive connections.
double drive(const std::string &base, const std::string &ca, const std::string &token, int clients, Millis duration,
             size_t *failed) {
  std::atomic<size_t> ok{0}, bad{0};
  auto start = Steady::now();
  auto until = start + duration;
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; i++)
    ts.emplace_back([&] {
      ClientTlsOptions t;
      t.ca_pem = ca;
      HttpsClient c(base, t);
      std::string b = body(token);
      while (Steady::now() < until) {
        try {
          auto res = c.request("POST", "/authenticate", kHeaders, b, std::chrono::seconds(30));
          (res.status == 200 && res.body.find("\"authenticated\":true") != std::string::npos ? ok : bad)++;
        } catch (const Error &) {
          bad++;
        }
      }
    });
  for (auto &t : ts) t.join();
  *failed = bad;
  return ok / std::chrono::duration<double>(Steady::now() - start).count();
}

}  // namespace

int main(int argc, char **argv) {
  std::string pinniped = "build/pinniped";
  double seconds = 3;
  int cost = 10, tries = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--pinniped")
      pinniped = argv[i + 1];
    else if (a == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else if (a == "--cost")
      cost = std::atoi(argv[i + 1]);
    else if (a == "--tries")
      tries = std::atoi(argv[i + 1]);
  }
  setenv("PINNIPED_BIN", pinniped.c_str(), 1);
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  Millis dur(static_cast<int64_t>(seconds * 1000));

  const std::string password = "bench-password";
  std::string hash = bcrypt_hash(password, cost);
  TempDir dir;
  dir.write("users", users_file_line({"bench", hash, {"group-a"}}) + "\n");
  std::remove(dir.file("port").c_str());
  Process p({pinniped, "local-user-authenticator", "--listen", "127.0.0.1:0", "--port-file", dir.file("port"),
             "--serving-ca-out", dir.file("ca.pem"), "--users-file", dir.file("users"), "--brake-burst", "0",
             "--log-level", "warn"},
            dir.file("lua.log"));
  int port = 0;
  for (int i = 0; i < 2000 && port <= 0 && p.running(); i++) {
    std::this_thread::sleep_for(Millis(10));
    if (access(dir.file("port").c_str(), R_OK) == 0) port = std::atoi(dir.read("port").c_str());
  }
  if (port <= 0) {
    std::fprintf(stderr, "local-user-authenticator did not start:\n%s\n", p.log().c_str());
    return 1;
  }
  std::string base = "https://127.0.0.1:" + std::to_string(port), ca = dir.read("ca.pem");

  std::printf("local-user-authenticator benchmark: %s, %d cores, bcrypt cost %d, %.1f s per point\n", pinniped.c_str(),
              cores, cost, seconds);
  double bound = bare_bcrypt(password, hash, cores, dur);
  std::printf("bare bcrypt loop (%d threads): %.1f verifications/s\n\n", cores, bound);
  size_t failed = 0;
  drive(base, ca, "bench:" + password, 1, Millis(300), &failed);  // warm up
  std::printf("%8s %14s %9s %8s\n", "clients", "auths/s", "failed", "/bcrypt");
  for (int clients : {cores, 2 * cores, 4 * cores}) {
    double rps = drive(base, ca, "bench:" + password, clients, dur, &failed);
    std::printf("%8d %14.1f %9zu %8.2f\n", clients, rps, failed, bound > 0 ? rps / bound : 0);
  }

  // Unknown user against wrong password, interleaved, one connection.
  ClientTlsOptions t;
  t.ca_pem = ca;
  HttpsClient c(base, t);
  std::vector<double> unknown, wrong;
  for (int i = 0; i < tries; i++) {
    auto t0 = Steady::now();
    c.request("POST", "/authenticate", kHeaders, body("nobody-" + std::to_string(i) + ":guess"),
              std::chrono::seconds(30));
    unknown.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
    t0 = Steady::now();
    c.request("POST", "/authenticate", kHeaders, body("bench:guess-" + std::to_string(i)), std::chrono::seconds(30));
    wrong.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
  }
  double mu = median(unknown), mw = median(wrong);
  double su = std::accumulate(unknown.begin(), unknown.end(), 0.0) / unknown.size();
  double sw = std::accumulate(wrong.begin(), wrong.end(), 0.0) / wrong.size();
  std::printf("\nunknown user vs wrong password over %d tries each (over HTTPS):\n", tries);
  std::printf("  median %.2f ms vs %.2f ms: ratio %.3f (goal within 5%%: %s)\n", mu, mw, mw > 0 ? mu / mw : 0,
              mw > 0 && std::fabs(mu / mw - 1) <= 0.05 ? "yes" : "no");
  std::printf("  mean   %.2f ms vs %.2f ms: ratio %.3f\n", su, sw, sw > 0 ? su / sw : 0);
  p.signal(SIGTERM);
  p.wait(std::chrono::seconds(10));
  return 0;
}
