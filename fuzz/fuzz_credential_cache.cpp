// The exec plugin's credential cache file: a corrupt or foreign file reads
// as empty.
#include <fstream>

#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string path = fuzz::scratch_dir() + "/credentials.yaml";
  // A fixed "now" an hour before the seeds expire (in the past, so that
  // load() keeps them: it drops entries more than a day ahead of the clock).
  static const auto now = *pinniped::parse_rfc3339("2024-01-01T00:00:00Z");
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char *>(data), size);
  pinniped::CredentialCache cache(path);
  fuzz::expect_error_only([&] {
    (void)cache.load();
    (void)cache.get("k1", now);
  });
  return 0;
}
