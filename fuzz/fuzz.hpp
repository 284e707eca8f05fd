// What every fuzz target shares: the input as a string, the one exception
// that bad input may raise, and a scratch folder for parsers that read files.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "pinniped.hpp"

namespace fuzz {

inline std::string text(const uint8_t *data, size_t size) {
  return std::string(reinterpret_cast<const char *>(data), size);
}

// pinniped::Error is the library's answer to bad input. Anything else that
// escapes (std::out_of_range, std::overflow_error, ...) reaches
// std::terminate, which libFuzzer reports as a crash: a finding.
template <class F>
void expect_error_only(F &&f) {
  try {
    f();
  } catch (const pinniped::Error &) {
  }
}

// One private folder per fuzzing process (under $TMPDIR: fuzz.mk points that
// into build/fuzz/), removed when the process exits normally.
inline const std::string &scratch_dir() {
  // Never destroyed: the atexit handler runs after static destructors.
  static const std::string *dir = [] {
    const char *base = std::getenv("TMPDIR");
    auto *d = new std::string(std::string(base && *base ? base : "/tmp") + "/pinniped-fuzz-XXXXXX");
    if (!mkdtemp(&(*d)[0])) std::abort();
    std::atexit([] { (void)!std::system(("rm -rf '" + scratch_dir() + "'").c_str()); });
    return d;
  }();
  return *dir;
}

// Splits at the first 0 byte: two inputs from one (the second empty if none).
inline std::pair<std::string, std::string> split_at_nul(const std::string &s) {
  auto z = s.find('\0');
  if (z == std::string::npos) return {s, ""};
  return {s.substr(0, z), s.substr(z + 1)};
}

}  // namespace fuzz
