// A tiny TokenReview webhook for `make demo`: serves the users given as
// --user TOKEN=NAME:GROUP,GROUP on 127.0.0.1 over TLS, writes its URL and
// CA next to each other, and runs until SIGTERM. Not for production: use a
// real IDP (or the local-user-authenticator).
#include <csignal>

#include "tests/support.hpp"

int main(int argc, char **argv) {
  std::string dir = ".";
  testing::FakeIdp idp;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], v = argv[i + 1];
    if (flag == "--dir") {
      dir = v;
    } else if (flag == "--user") {
      auto eq = v.find('='), colon = v.find(':', eq);
      if (eq == std::string::npos || colon == std::string::npos) {
        std::fprintf(stderr, "demo-idp: --user wants TOKEN=NAME:GROUP,GROUP\n");
        return 2;
      }
      pinniped::UserInfo u;
      u.username = v.substr(eq + 1, colon - eq - 1);
      for (auto &g : pinniped::detail::split(v.substr(colon + 1), ','))
        if (!g.empty()) u.groups.push_back(g);
      idp.add_user(v.substr(0, eq), u);
    }
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::ofstream(dir + "/idp-ca.pem") << idp.ca_pem();
  std::ofstream(dir + "/idp-url.tmp") << idp.url() << "\n";
  std::rename((dir + "/idp-url.tmp").c_str(), (dir + "/idp-url").c_str());
  int sig = 0;
  sigwait(&sigs, &sig);
  return 0;
}
