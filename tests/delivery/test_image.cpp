// The OCI image archive of `make image` (tools/oci-image.py): what skopeo,
// umoci and containerd see in it, that it holds exactly the shipped static
// binaries, that it rebuilds byte for byte, and that the tool refuses bad
// input. PINNIPED_IMAGE names the archive, PINNIPED_STATIC_DIR the folder of
// <arch>/pinniped it was built from.
#include <sys/prctl.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <regex>
#include <set>

#include "tests/support.hpp"

using namespace testing;

namespace {

const std::string kTool = "tools/oci-image.py";
const std::string kRef = "localhost/pinniped:0.1.0";

std::string image_archive() {
  const char *p = std::getenv("PINNIPED_IMAGE");
  return p ? p : "build/image/pinniped.oci.tar";
}
std::string static_dir() {
  const char *p = std::getenv("PINNIPED_STATIC_DIR");
  return p ? p : "build/static";
}
std::string static_binary(const std::string &arch) { return static_dir() + "/" + arch + "/pinniped"; }

// One row per platform: the Makefile's name, and OCI's.
struct Platform {
  std::string arch, oci_arch, variant, qemu;
};
const std::vector<Platform> kPlatforms = {
    {"amd64", "amd64", "", ""},
    {"arm64", "arm64", "", "qemu-aarch64-static"},
    {"armhf", "arm", "v7", "qemu-arm-static"},
};
std::string skopeo_platform(const Platform &p) {
  return "--override-os linux --override-arch " + p.oci_arch +
         (p.variant.empty() ? "" : " --override-variant " + p.variant);
}

std::string slurp(const std::string &path) { return pinniped::read_file(path, 256u << 20); }
std::string sha256_hex(const std::string &data) { return detail::hex(detail::sha256(data)); }

picojson::value parse_json(const std::string &text) {
  INFO(text);
  return json::parse(text);
}
const picojson::value &at(const picojson::value &v, const std::string &key) {
  INFO("key " << key << " in " << v.serialize());
  REQUIRE(v.is<picojson::object>());
  const auto &o = v.get<picojson::object>();
  auto it = o.find(key);
  REQUIRE(it != o.end());
  return it->second;
}
std::string str(const picojson::value &v, const std::string &key) {
  const auto &s = at(v, key);
  REQUIRE(s.is<std::string>());
  return s.get<std::string>();
}
const picojson::array &arr(const picojson::value &v, const std::string &key) {
  const auto &a = at(v, key);
  REQUIRE(a.is<picojson::array>());
  return a.get<picojson::array>();
}
std::vector<std::string> strings(const picojson::value &v, const std::string &key) {
  std::vector<std::string> out;
  for (const auto &e : arr(v, key)) {
    REQUIRE(e.is<std::string>());
    out.push_back(e.get<std::string>());
  }
  return out;
}
std::string platform_of(const picojson::value &p) {
  std::string s = str(p, "os") + "/" + str(p, "architecture");
  if (p.contains("variant")) s += "/" + str(p, "variant");
  return s;
}

// The archive unpacked as a plain OCI layout, and blobs read by digest.
struct Layout {
  TempDir dir;
  explicit Layout(const std::string &archive) {
    int rc = 0;
    std::string out = run("tar -xf " + shell_quote(archive) + " -C " + shell_quote(dir.path) + " 2>&1", &rc);
    INFO(out);
    REQUIRE(rc == 0);
  }
  std::string blob_path(const std::string &digest) const {
    REQUIRE(digest.rfind("sha256:", 0) == 0);
    return dir.file("blobs/sha256/" + digest.substr(7));
  }
  std::string blob(const std::string &digest) const {
    std::string data = slurp(blob_path(digest));
    CHECK("sha256:" + sha256_hex(data) == digest);  // content-addressed, really
    return data;
  }
  picojson::value json_blob(const std::string &digest) const { return parse_json(blob(digest)); }
  // index.json's single descriptor: the multi-platform index.
  picojson::value top() const { return parse_json(slurp(dir.file("index.json"))); }
  std::string index_digest() const {
    auto t = top();
    REQUIRE(arr(t, "manifests").size() == 1);
    return str(arr(t, "manifests")[0], "digest");
  }
  // The manifest of one platform, found through the index.
  picojson::value manifest(const Platform &p) const {
    auto index = json_blob(index_digest());
    for (const auto &m : arr(index, "manifests")) {
      const auto &plat = at(m, "platform");
      if (str(plat, "architecture") == p.oci_arch) return json_blob(str(m, "digest"));
    }
    FAIL("no manifest for " << p.oci_arch);
    return {};
  }
};

// What a gzip layer holds, as python3's tarfile reads it: one line per
// entry, plus the gzip header's flags and mtime and the tar's sha256.
struct LayerEntry {
  std::string name, type, mode, uname, gname, sha256;
  long uid = -1, gid = -1, mtime = -1;
};
struct LayerInfo {
  std::vector<LayerEntry> entries;
  int gzip_flags = -1;
  long gzip_mtime = -1;
  std::string tar_sha256;
};
LayerInfo read_layer(const TempDir &scratch, const std::string &blob_path) {
  std::string script =
      scratch.write("layer.py",
                    "import gzip, hashlib, struct, sys, tarfile\n"
                    "raw = open(sys.argv[1], 'rb').read()\n"
                    "print('gzip', raw[3], struct.unpack_from('<I', raw, 4)[0])\n"
                    "print('tar', hashlib.sha256(gzip.decompress(raw)).hexdigest())\n"
                    "with tarfile.open(sys.argv[1], 'r:gz') as t:\n"
                    "    for m in t.getmembers():\n"
                    "        data = t.extractfile(m).read() if m.isreg() else b''\n"
                    "        print('entry', m.name, m.type.decode(), oct(m.mode), m.uid, m.gid,\n"
                    "              repr(m.uname), repr(m.gname), m.mtime, hashlib.sha256(data).hexdigest())\n");
  int rc = 0;
  std::string out = run("python3 " + shell_quote(script) + " " + shell_quote(blob_path) + " 2>&1", &rc);
  INFO(out);
  REQUIRE(rc == 0);
  LayerInfo info;
  std::istringstream in(out);
  for (std::string kind; in >> kind;) {
    if (kind == "gzip") {
      in >> info.gzip_flags >> info.gzip_mtime;
    } else if (kind == "tar") {
      in >> info.tar_sha256;
    } else if (kind == "entry") {
      LayerEntry e;
      in >> e.name >> e.type >> e.mode >> e.uid >> e.gid >> e.uname >> e.gname >> e.mtime >> e.sha256;
      info.entries.push_back(e);
    }
  }
  return info;
}

long epoch_of(const std::string &s) {
  struct tm tm = {};
  REQUIRE(strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr);
  return static_cast<long>(timegm(&tm));
}

// Runs tools/oci-image.py; its stdout (the summary) or its stderr on failure.
std::string oci_image(const std::string &args, int *rc, bool want_stderr = false) {
  return run("python3 " + kTool + " " + args + (want_stderr ? " 2>&1 >/dev/null" : " 2>&1"), rc);
}
std::string platform_args(const std::vector<Platform> &ps) {
  std::string s;
  for (const auto &p : ps) s += " " + p.arch + "=" + shell_quote(static_binary(p.arch));
  return s;
}

// Ends and reaps the containerd shims this process adopted (as subreaper).
void reap_shims() {
  auto until = Steady::now() + std::chrono::seconds(10);
  for (bool any = true; any && Steady::now() < until;) {
    any = false;
    DIR *proc = opendir("/proc");
    if (!proc) return;
    while (dirent *e = readdir(proc)) {
      pid_t pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      std::string stat;
      try {
        stat = pinniped::read_file("/proc/" + std::string(e->d_name) + "/stat");
      } catch (...) {
        continue;
      }
      // "pid (comm) state ppid ..."
      auto close = stat.rfind(')');
      if (close == std::string::npos || stat.find("(containerd-shim") == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 1));
      std::string state;
      pid_t ppid = 0;
      rest >> state >> ppid;
      if (ppid != ::getpid()) continue;
      any = true;
      if (state != "Z" && Steady::now() + std::chrono::seconds(5) > until) ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, WNOHANG);
    }
    closedir(proc);
    if (any) std::this_thread::sleep_for(Millis(50));
  }
}

}  // namespace

TEST_CASE("the archive is one image index of linux/amd64, linux/arm64 and linux/arm/v7") {
  REQUIRE(access(image_archive().c_str(), R_OK) == 0);
  int rc = 0;
  std::string raw = run("skopeo inspect --raw oci-archive:" + shell_quote(image_archive()) + " 2>&1", &rc);
  INFO(raw);
  REQUIRE(rc == 0);
  auto index = parse_json(raw);
  CHECK(str(index, "mediaType") == "application/vnd.oci.image.index.v1+json");
  std::multiset<std::string> platforms;
  for (const auto &m : arr(index, "manifests")) {
    CHECK(str(m, "mediaType") == "application/vnd.oci.image.manifest.v1+json");
    platforms.insert(platform_of(at(m, "platform")));
  }
  CHECK(platforms == std::multiset<std::string>{"linux/amd64", "linux/arm64", "linux/arm/v7"});

  // index.json names the image for `ctr images import` and points at that
  // very index.
  Layout layout(image_archive());
  CHECK(slurp(layout.dir.file("oci-layout")) == "{\"imageLayoutVersion\":\"1.0.0\"}");
  auto top = layout.top();
  REQUIRE(arr(top, "manifests").size() == 1);
  const auto &desc = arr(top, "manifests")[0];
  CHECK(str(desc, "mediaType") == "application/vnd.oci.image.index.v1+json");
  CHECK(str(at(desc, "annotations"), "io.containerd.image.name") == kRef);
  CHECK(str(at(desc, "annotations"), "org.opencontainers.image.ref.name") == kRef);
  CHECK(layout.blob(str(desc, "digest")) == raw);
}

TEST_CASE("skopeo inspects each platform's image: architecture, labels, one layer, non-root entrypoint") {
  std::string archive = "oci-archive:" + shell_quote(image_archive());
  for (const auto &p : kPlatforms) {
    INFO(p.arch);
    int rc = 0;
    std::string out = run("skopeo inspect " + skopeo_platform(p) + " " + archive + " 2>&1", &rc);
    INFO(out);
    REQUIRE(rc == 0);
    auto image = parse_json(out);
    CHECK(str(image, "Architecture") == p.oci_arch);
    CHECK(str(image, "Os") == "linux");
    CHECK(arr(image, "Layers").size() == 1);
    const auto &labels = at(image, "Labels");
    CHECK(str(labels, "org.opencontainers.image.version") == "0.1.0");
    CHECK(!str(labels, "org.opencontainers.image.source").empty());
    CHECK(std::regex_match(str(labels, "org.opencontainers.image.revision"), std::regex("[0-9a-f]{40}")));
    CHECK(str(labels, "org.opencontainers.image.title") == "pinniped");
    CHECK(str(labels, "org.opencontainers.image.created") == str(image, "Created"));

    std::string cfg_text = run("skopeo inspect --config " + skopeo_platform(p) + " " + archive + " 2>&1", &rc);
    INFO(cfg_text);
    REQUIRE(rc == 0);
    auto cfg = parse_json(cfg_text);
    CHECK(str(cfg, "architecture") == p.oci_arch);
    CHECK((cfg.contains("variant") ? str(cfg, "variant") : "") == p.variant);
    const auto &c = at(cfg, "config");
    CHECK(strings(c, "Entrypoint") == std::vector<std::string>{"/pinniped"});
    std::string user = str(c, "User");
    CHECK(user == "65532:65532");
    CHECK(std::atol(user.c_str()) != 0);  // never root by default
    CHECK(arr(at(cfg, "rootfs"), "diff_ids").size() == 1);
    CHECK(arr(cfg, "history").size() == 1);
  }
}

TEST_CASE("each layer is exactly /pinniped, 0755 and root-owned, byte for byte the shipped static binary") {
  Layout layout(image_archive());
  for (const auto &p : kPlatforms) {
    INFO(p.arch);
    auto manifest = layout.manifest(p);
    CHECK(str(manifest, "mediaType") == "application/vnd.oci.image.manifest.v1+json");
    CHECK(str(at(manifest, "annotations"), "org.opencontainers.image.version") == "0.1.0");
    REQUIRE(arr(manifest, "layers").size() == 1);
    const auto &layer = arr(manifest, "layers")[0];
    CHECK(str(layer, "mediaType") == "application/vnd.oci.image.layer.v1.tar+gzip");
    std::string blob_path = layout.blob_path(str(layer, "digest"));
    CHECK(layout.blob(str(layer, "digest")).size() == at(layer, "size").get<double>());

    LayerInfo info = read_layer(layout.dir, blob_path);
    CHECK(info.gzip_flags == 0);  // no file name, no comment
    CHECK(info.gzip_mtime == 0);
    REQUIRE(info.entries.size() == 1);
    const auto &e = info.entries[0];
    CHECK(e.name == "pinniped");
    CHECK(e.type == "0");  // a regular file
    CHECK(e.mode == "0o755");
    CHECK(e.uid == 0);
    CHECK(e.gid == 0);
    CHECK(e.uname == "''");
    CHECK(e.gname == "''");
    CHECK(e.sha256 == sha256_hex(slurp(static_binary(p.arch))));

    auto cfg = layout.json_blob(str(at(manifest, "config"), "digest"));
    CHECK(e.mtime == epoch_of(str(cfg, "created")));
    CHECK(arr(at(cfg, "rootfs"), "diff_ids")[0].get<std::string>() == "sha256:" + info.tar_sha256);
  }
}

TEST_CASE("the image rebuilds byte for byte from the same binaries and metadata") {
  Layout layout(image_archive());
  // The metadata `make image` used, read back from the image itself.
  auto cfg = layout.json_blob(str(at(layout.manifest(kPlatforms[0]), "config"), "digest"));
  const auto &labels = at(at(cfg, "config"), "Labels");
  std::string name = str(at(arr(layout.top(), "manifests")[0], "annotations"), "io.containerd.image.name");
  std::string meta = "--name " + shell_quote(name.substr(0, name.rfind(':'))) + " --version " +
                     shell_quote(str(labels, "org.opencontainers.image.version")) + " --revision " +
                     shell_quote(str(labels, "org.opencontainers.image.revision")) + " --source " +
                     shell_quote(str(labels, "org.opencontainers.image.source"));
  long epoch = epoch_of(str(labels, "org.opencontainers.image.created"));

  TempDir a, b;
  int rc = 0;
  std::string out_a = oci_image(
      "--out " + a.file("x.tar") + " " + meta + " --created-epoch " + std::to_string(epoch) + platform_args(kPlatforms),
      &rc);
  INFO(out_a);
  REQUIRE(rc == 0);
  // The other run: the epoch from the environment, the platforms in another order.
  std::vector<Platform> reversed(kPlatforms.rbegin(), kPlatforms.rend());
  std::string refused = run("env -u SOURCE_DATE_EPOCH python3 " + kTool + " --out " + b.file("x.tar") + " " + meta +
                                platform_args(reversed) + " 2>&1",
                            &rc);
  INFO(refused);
  CHECK(rc == 1);  // no creation time anywhere: refused rather than guessed
  std::string out_b = run("SOURCE_DATE_EPOCH=" + std::to_string(epoch) + " python3 " + kTool + " --out " +
                              b.file("x.tar") + " " + meta + platform_args(reversed) + " 2>&1",
                          &rc);
  INFO(out_b);
  REQUIRE(rc == 0);
  CHECK(out_a.substr(out_a.find('\n')) == out_b.substr(out_b.find('\n')));  // same digests and sizes

  std::string bytes_a = slurp(a.file("x.tar")), bytes_b = slurp(b.file("x.tar"));
  CHECK(bytes_a == bytes_b);
  Layout rebuilt(a.file("x.tar"));
  CHECK(rebuilt.index_digest() == layout.index_digest());
  CHECK(out_a.find(layout.index_digest()) != std::string::npos);  // the summary names it
  // And the archive `make image` wrote is the same file, bit for bit.
  CHECK(sha256_hex(bytes_a) == sha256_hex(slurp(image_archive())));

  // The creation time is part of the image: another epoch, another digest.
  std::string out_c = oci_image("--out " + a.file("y.tar") + " " + meta + " --created-epoch " +
                                    std::to_string(epoch + 1) + platform_args(kPlatforms),
                                &rc);
  INFO(out_c);
  REQUIRE(rc == 0);
  CHECK(Layout(a.file("y.tar")).index_digest() != layout.index_digest());
}

TEST_CASE("umoci unpacks each platform and the binary runs as the image's non-root user") {
  TempDir d;
  REQUIRE(::chmod(d.path.c_str(), 0755) == 0);  // the image's user walks into it
  for (const auto &p : kPlatforms) {
    INFO(p.arch);
    int rc = 0;
    std::string layout = d.file("oci-" + p.arch), bundle = d.file("bundle-" + p.arch);
    std::string out = run("skopeo copy " + skopeo_platform(p) + " oci-archive:" + shell_quote(image_archive()) +
                              " oci:" + layout + ":0.1.0 2>&1",
                          &rc);
    INFO(out);
    REQUIRE(rc == 0);
    out = run("umoci unpack --rootless --image " + layout + ":0.1.0 " + bundle + " 2>&1", &rc);
    INFO(out);
    REQUIRE(rc == 0);
    REQUIRE(::chmod(bundle.c_str(), 0755) == 0);

    // The runtime config umoci derived from the image: user and command.
    auto spec = parse_json(slurp(bundle + "/config.json"));
    const auto &process = at(spec, "process");
    long uid = static_cast<long>(at(at(process, "user"), "uid").get<double>());
    long gid = static_cast<long>(at(at(process, "user"), "gid").get<double>());
    CHECK(uid == 65532);
    CHECK(gid == 65532);
    CHECK(strings(process, "args") == std::vector<std::string>{"/pinniped"});

    // The root filesystem: the binary and nothing else.
    CHECK(run("cd " + bundle + "/rootfs && find . -mindepth 1 | sort") == "./pinniped\n");
    CHECK(sha256_hex(slurp(bundle + "/rootfs/pinniped")) == sha256_hex(slurp(static_binary(p.arch))));

    std::string ids = std::to_string(uid) + ":" + std::to_string(gid);
    std::string cmd;
    if (geteuid() != 0) {
      cmd = (p.qemu.empty() ? "" : p.qemu + " ") + bundle + "/rootfs/pinniped version";  // already not root
    } else if (p.qemu.empty()) {
      // As a container would: the empty rootfs as /, as the image's user.
      cmd = "chroot --userspec=" + ids + " " + bundle + "/rootfs /pinniped version";
    } else {
      cmd = "setpriv --reuid " + std::to_string(uid) + " --regid " + std::to_string(gid) + " --clear-groups " + p.qemu +
            " " + bundle + "/rootfs/pinniped version";
    }
    out = run(cmd + " 2>&1", &rc);
    INFO(cmd << " -> " << out);
    CHECK(rc == 0);
    CHECK(out.rfind("pinniped 0.1.0 ", 0) == 0);
  }
}

TEST_CASE("tools/oci-image.py refuses a binary of another architecture, a dynamic one and a missing file") {
  TempDir d;
  d.write("notes.txt", "not a program\n");
  struct Row {
    std::string pair, says;
  };
  std::vector<Row> rows = {
      {"arm64=" + static_binary("amd64"),
       "arm64: " + static_binary("amd64") + ": ELF binary is for x86-64, expected AArch64"},
      {"armhf=" + static_binary("arm64"), "ELF binary is for AArch64, expected 32-bit ARM"},
      {"amd64=" + static_binary("armhf"), "ELF binary is for 32-bit ARM, expected x86-64"},
      {"arm64=" + static_binary("armhf"), "ELF binary is for 32-bit ARM, expected AArch64"},
      {"amd64=/nonexistent/pinniped", "amd64: /nonexistent/pinniped: no such file"},
      {"amd64=" + d.file("notes.txt"), "not an ELF file"},
      {"riscv64=" + static_binary("amd64"), "unknown platform 'riscv64'"},
      {"amd64", "expected PLATFORM=PATH"},
  };
  // A dynamic program of this machine's own architecture: /bin/true.
  std::string host = run("dpkg --print-architecture 2>/dev/null");
  host.erase(host.find_last_not_of("\n") + 1);
  if (host == "amd64" || host == "arm64" || host == "armhf")
    rows.push_back({host + "=/bin/true", "dynamically linked"});
  const std::string meta = " --name localhost/pinniped --version 0.1.0 --revision x --source y --created-epoch 1 ";
  for (const auto &r : rows) {
    int rc = 0;
    std::string out = d.file("out.tar");
    std::string err = oci_image("--out " + out + meta + r.pair, &rc, true);
    INFO(r.pair << " -> " << err);
    CHECK(rc == 1);
    CHECK(err.find(r.says) != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
    CHECK(access(out.c_str(), F_OK) != 0);  // nothing written
  }
  // A good binary next to a bad one refuses the whole archive.
  int rc = 0;
  std::string err = oci_image(
      "--out " + d.file("out.tar") + meta + "amd64=" + static_binary("amd64") + " arm64=/nonexistent", &rc, true);
  INFO(err);
  CHECK(rc == 1);
  CHECK(err.find("arm64: /nonexistent: no such file") != std::string::npos);
  CHECK(access(d.file("out.tar").c_str(), F_OK) != 0);
}

TEST_CASE("containerd imports the archive as localhost/pinniped:0.1.0, gives it the image's user, and runs it") {
  if (geteuid() != 0) {
    WARN("not root: containerd needs root here; skipped");
    SUCCEED();
    return;
  }
  REQUIRE(have("containerd"));  // make deps installs it
  REQUIRE(have("ctr"));
  Layout layout(image_archive());
  std::string index_digest = layout.index_digest();

  // containerd's shims detach to PID 1, which need not reap them here:
  // adopt them instead, and reap them when done.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  TempDir d;
  bool had_run_dir = access("/run/containerd", F_OK) == 0;
  std::string sock = d.file("c.sock");
  // Everything private to this folder: no CRI, no /var/lib, no /opt.
  std::string config = "version = 2\n";
  config += "root = \"" + d.file("root") + "\"\n";
  config += "state = \"" + d.file("state") + "\"\n";
  config += "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n";
  config += "[grpc]\n  address = \"" + sock + "\"\n";
  config += "[ttrpc]\n  address = \"" + sock + ".ttrpc\"\n";
  config += "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"" + d.file("opt") + "\"\n";
  d.write("config.toml", config);
  std::string containerd = run("command -v containerd");
  containerd.erase(containerd.find_last_not_of("\n") + 1);
  Process daemon({containerd, "--config", d.file("config.toml")}, d.file("containerd.log"));
  // Stopped before the folder goes: SIGTERM, then the mounts and the shim
  // socket folder it may leave behind.
  struct Stop {
    Process &daemon;
    const TempDir &d;
    bool had_run_dir;
    ~Stop() {
      daemon.signal(SIGTERM);
      daemon.wait(std::chrono::seconds(15));
      reap_shims();
      ::prctl(PR_SET_CHILD_SUBREAPER, 0);
      run("awk '{print $2}' /proc/mounts | grep '^" + d.path + "/' | sort -r | xargs -r -n1 umount -l 2>/dev/null");
      if (!had_run_dir) run("find /run/containerd -depth -type d -empty -delete 2>/dev/null");
    }
  } stop{daemon, d, had_run_dir};

  std::string ctr = "timeout 60 ctr -a " + sock + " -n pinniped-test ";
  int rc = 1;
  for (int i = 0; i < 200 && rc != 0 && daemon.running(); i++) {
    run(ctr + "version >/dev/null 2>&1", &rc);
    if (rc != 0) std::this_thread::sleep_for(Millis(100));
  }
  INFO(daemon.log());
  REQUIRE(rc == 0);

  std::string out =
      run(ctr + "images import --all-platforms --snapshotter native " + shell_quote(image_archive()) + " 2>&1", &rc);
  INFO(out);
  REQUIRE(rc == 0);
  std::string ls = run(ctr + "images ls 2>&1", &rc);
  INFO(ls);
  REQUIRE(rc == 0);
  std::string line;
  std::istringstream lines(ls);
  for (std::string l; std::getline(lines, l);)
    if (l.rfind(kRef + " ", 0) == 0) line = l;
  REQUIRE(!line.empty());
  CHECK(line.find(index_digest) != std::string::npos);
  CHECK(line.find("linux/amd64,linux/arm/v7,linux/arm64") != std::string::npos);
  // Every platform's blobs arrived, not just this machine's.
  for (const auto &p : kPlatforms) {
    auto manifest = layout.manifest(p);
    std::string config = str(at(manifest, "config"), "digest"), layer = str(arr(manifest, "layers")[0], "digest");
    std::string content = run(ctr + "content ls 2>&1");
    INFO(p.arch << ": " << content);
    CHECK(content.find(config) != std::string::npos);
    CHECK(content.find(layer) != std::string::npos);
  }

  // The container spec containerd derives from the image: user and command.
  out = run(ctr + "containers create --snapshotter native " + kRef + " pinniped-spec 2>&1", &rc);
  INFO(out);
  REQUIRE(rc == 0);
  auto info = parse_json(run(ctr + "containers info pinniped-spec"));
  const auto &process = at(at(info, "Spec"), "process");
  CHECK(at(at(process, "user"), "uid").get<double>() == 65532);
  CHECK(at(at(process, "user"), "gid").get<double>() == 65532);
  CHECK(strings(process, "args") == std::vector<std::string>{"/pinniped"});
  run(ctr + "containers rm pinniped-spec 2>&1");

  // And it runs (for this machine's platform) under runc.
  std::string runc_dir = d.file("runc"), fifo_dir = d.file("fifo");
  out = run(ctr + "run --rm --snapshotter native --runc-root " + runc_dir + " --fifo-dir " + fifo_dir + " " + kRef +
                " pinniped-run /pinniped version 2>&1",
            &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.rfind("pinniped 0.1.0 ", 0) == 0);
}
