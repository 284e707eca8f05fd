// A watch stream: one JSON event per line, read as KubeClient::watch and the
// Informer read it (type, object, its key and resourceVersion, an ERROR's code).
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace pinniped;
  for (const auto &line : detail::split(fuzz::text(data, size), '\n')) {
    if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
    fuzz::expect_error_only([&] {
      picojson::value ev = json::parse(line);
      std::string type = json::get_string(ev, "type", "type");
      const auto *o = json::field(ev, "object");
      picojson::value obj = o ? *o : picojson::value();
      if (type == "ERROR") {
        const auto *code = json::field(obj, "code");
        (void)(code && code->is<int64_t>() && code->get<int64_t>() == 410);
        return;
      }
      (void)resource_version(obj);
      (void)object_key(obj);
    });
  }
  return 0;
}
