// A kubeconfig (YAML), with relative file references resolved against a
// scratch folder that holds a few small files. Input: text, optionally a 0
// byte and the context to use.
#include <fstream>

#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string dir = [] {
    const std::string &d = fuzz::scratch_dir();
    for (const char *name : {"ca.crt", "client.crt", "client.key", "token"}) std::ofstream(d + "/" + name) << name;
    return d;
  }();
  auto in = fuzz::split_at_nul(fuzz::text(data, size));  // text, context
  fuzz::expect_error_only([&] { (void)pinniped::KubeConfig::from_kubeconfig(in.first, dir, in.second); });
  return 0;
}
