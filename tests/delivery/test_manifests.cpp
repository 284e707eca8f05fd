// The k3s delivery files: the committed single-file manifest is the current
// rendering of its kustomization, narrowed to k3s and otherwise equal to
// manifests/concierge; the HA overlay; the systemd unit and the Service that
// leads kube-apiserver to it; and the commands docs/k3s.md shows. Runs from
// the repository root; needs kubectl (its built-in kustomize).
#include <catch2/catch.hpp>

#include "tests/support.hpp"

using namespace testing;

namespace {

const char *kManifest = "manifests/k3s/pinniped.yaml";
const char *kUnit = "manifests/systemd/pinniped-concierge.service";
const char *kHostService = "manifests/systemd/host-service.yaml";
const char *kImage = "localhost/pinniped:0.1.0";

const picojson::value &null_value() {
  static const picojson::value v;
  return v;
}

// The value at a dotted path; array elements by index ("containers.0.image").
const picojson::value &at(const picojson::value &v, const std::string &path) {
  const picojson::value *cur = &v;
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (cur->is<picojson::object>()) {
      const auto &o = cur->get<picojson::object>();
      auto it = o.find(key);
      if (it == o.end()) return null_value();
      cur = &it->second;
    } else if (cur->is<picojson::array>()) {
      const auto &a = cur->get<picojson::array>();
      char *end = nullptr;
      unsigned long i = std::strtoul(key.c_str(), &end, 10);
      if (key.empty() || *end || i >= a.size()) return null_value();
      cur = &a[i];
    } else {
      return null_value();
    }
    if (dot == std::string::npos) return *cur;
    start = dot + 1;
  }
}
std::string str(const picojson::value &v, const std::string &path) {
  const auto &x = at(v, path);
  return x.is<std::string>() ? x.get<std::string>() : "";
}
int64_t num(const picojson::value &v, const std::string &path) {
  const auto &x = at(v, path);
  if (x.is<int64_t>()) return x.get<int64_t>();
  if (x.is<double>()) return static_cast<int64_t>(x.get<double>());
  return -1;
}
size_t count(const picojson::value &v, const std::string &path) {
  const auto &x = at(v, path);
  return x.is<picojson::array>() ? x.get<picojson::array>().size() : 0;
}
std::vector<std::string> strings(const picojson::value &v, const std::string &path) {
  std::vector<std::string> out;
  const auto &x = at(v, path);
  if (x.is<picojson::array>())
    for (const auto &e : x.get<picojson::array>()) out.push_back(e.is<std::string>() ? e.get<std::string>() : "");
  return out;
}

std::string key_of(const picojson::value &doc) {
  return str(doc, "kind") + "/" + str(doc, "metadata.namespace") + "/" + str(doc, "metadata.name");
}
const picojson::value *find(const std::vector<picojson::value> &docs, const std::string &kind,
                            const std::string &name) {
  for (const auto &d : docs)
    if (str(d, "kind") == kind && str(d, "metadata.name") == name) return &d;
  return nullptr;
}

void require_repo_and_kubectl() {
  INFO("run this suite from the repository root");
  REQUIRE(access("manifests/k3s/base/kustomization.yaml", R_OK) == 0);
  INFO("kubectl (with its built-in kustomize) is needed to render the manifests");
  REQUIRE(have("kubectl"));
}

// Runs a command that prints YAML and parses its documents.
std::vector<picojson::value> render(const std::string &cmd) {
  int rc = 0;
  std::string out = run(cmd + " 2>&1", &rc);
  INFO(cmd << "\n" << out);
  REQUIRE(rc == 0);
  auto docs = parse_yaml_documents(out);
  REQUIRE(!docs.empty());
  return docs;
}

const picojson::value &deployment(const std::vector<picojson::value> &docs) {
  const auto *d = find(docs, "Deployment", "pinniped-concierge");
  REQUIRE(d != nullptr);
  return *d;
}

// Every object of `from` except those of `except_kinds` is in `in`, equal.
void check_same_objects(const std::vector<picojson::value> &from, const std::vector<picojson::value> &in,
                        const std::set<std::string> &except_kinds) {
  std::map<std::string, std::string> have_docs;
  for (const auto &d : in) have_docs[key_of(d)] = d.serialize();
  for (const auto &d : from) {
    if (except_kinds.count(str(d, "kind"))) continue;
    INFO(key_of(d));
    auto it = have_docs.find(key_of(d));
    REQUIRE(it != have_docs.end());
    CHECK(it->second == d.serialize());
  }
}

// The unit file's lines, with backslash continuations joined.
std::vector<std::string> unit_lines(const std::string &text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line, cur;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\\') {
      cur += line.substr(0, line.size() - 1);
      continue;
    }
    out.push_back(cur + line);
    cur.clear();
  }
  return out;
}
std::vector<std::string> words(const std::string &s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// ExecStart's words with the unit's Environment= defaults filled in, as
// systemd does: ${VAR} is one word, $VAR is split into zero or more words.
std::vector<std::string> exec_start(const std::string &unit) {
  std::map<std::string, std::string> env;
  std::string exec;
  for (const auto &l : unit_lines(unit)) {
    if (l.rfind("Environment=", 0) == 0)
      for (const auto &kv : words(l.substr(12))) {
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
    if (l.rfind("ExecStart=", 0) == 0) exec = l.substr(10);
  }
  std::vector<std::string> out;
  for (auto w : words(exec)) {
    if (w.size() > 3 && w.compare(0, 2, "${") == 0 && w.back() == '}') {
      auto it = env.find(w.substr(2, w.size() - 3));
      w = it != env.end() ? it->second : "<unset " + w + ">";
    } else if (w.size() > 1 && w[0] == '$') {
      auto it = env.find(w.substr(1));
      if (it == env.end()) {
        out.push_back("<unset " + w + ">");
      } else {
        for (const auto &part : words(it->second)) out.push_back(part);
      }
      continue;
    }
    out.push_back(w);
  }
  return out;
}
std::string flag_value(const std::vector<std::string> &args, const std::string &flag) {
  for (size_t i = 0; i + 1 < args.size(); i++)
    if (args[i] == flag) return args[i + 1];
  return "";
}
int64_t listen_port(const std::string &unit) {
  std::string listen = flag_value(exec_start(unit), "--listen");
  auto colon = listen.rfind(':');
  return colon == std::string::npos ? -1 : std::atoll(listen.c_str() + colon + 1);
}

std::string abs_path(const std::string &p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : "";
}

}  // namespace

TEST_CASE("manifests/k3s/pinniped.yaml is the current output of tools/k3s-manifest.sh") {
  require_repo_and_kubectl();
  int rc = 0;
  std::string fresh = run("tools/k3s-manifest.sh 2>&1", &rc);
  if (rc != 0) FAIL("tools/k3s-manifest.sh failed:\n" << fresh);
  std::string committed = read_file(kManifest);
  if (fresh != committed) {
    std::string diff = run("tools/k3s-manifest.sh | diff -u " + std::string(kManifest) + " - | head -60");
    FAIL_CHECK("out of date; regenerate it with `make manifests`:\n" << diff);
  }
  // The header says what the file is, and the Makefile knows how to make it.
  CHECK(committed.rfind("# pinniped concierge for k3s", 0) == 0);
  CHECK(committed.find("GENERATED by tools/k3s-manifest.sh") != std::string::npos);
  CHECK(read_file("Makefile").find("manifests/k3s/pinniped.yaml: tools/k3s-manifest.sh") != std::string::npos);
}

TEST_CASE("the k3s manifest is manifests/concierge with only the Deployment narrowed to k3s") {
  require_repo_and_kubectl();
  auto k3s = parse_yaml_documents(read_file(kManifest));
  auto concierge = render("kubectl kustomize manifests/concierge");

  // Nothing else differs: drift from manifests/concierge cannot hide here.
  check_same_objects(concierge, k3s, {"Deployment", "CredentialIssuer"});
  CHECK(k3s.size() + 1 == concierge.size());
  // The concierge creates its CredentialIssuer; no CR races its CRD here.
  CHECK(find(k3s, "CredentialIssuer", "pinniped-concierge-config") == nullptr);
  for (const char *crd : {"webhookauthenticators.authentication.concierge.pinniped.dev",
                          "jwtauthenticators.authentication.concierge.pinniped.dev",
                          "credentialissuers.config.concierge.pinniped.dev"})
    CHECK(find(k3s, "CustomResourceDefinition", crd) != nullptr);

  const auto &d = deployment(k3s);
  const auto &pod = at(d, "spec.template.spec");
  REQUIRE(count(pod, "containers") == 1);
  const auto &c = at(pod, "containers.0");
  CHECK(str(c, "image") == kImage);
  CHECK(str(c, "imagePullPolicy") == "IfNotPresent");
  auto args = strings(c, "args");
  REQUIRE(!args.empty());
  CHECK(args[0] == "concierge");
  CHECK(flag_value(args, "--signer-root") == "/host");

  // One hostPath, k3s's signer folder, mounted read-only where
  // --signer-root /host looks for k3s's files first.
  REQUIRE(count(pod, "volumes") == 1);
  CHECK(str(pod, "volumes.0.hostPath.path") == "/var/lib/rancher/k3s/server/tls");
  CHECK(str(pod, "volumes.0.hostPath.type") == "Directory");
  REQUIRE(count(c, "volumeMounts") == 1);
  CHECK(str(c, "volumeMounts.0.name") == str(pod, "volumes.0.name"));
  CHECK(str(c, "volumeMounts.0.mountPath") == "/host/var/lib/rancher/k3s/server/tls");
  CHECK(at(c, "volumeMounts.0.readOnly").evaluate_as_boolean());
  auto first = known_signer_locations().at(0);
  CHECK(first.distribution == "k3s");
  CHECK(first.cert_path == "/var/lib/rancher/k3s/server/tls/client-ca.crt");
  CHECK(first.key_path == "/var/lib/rancher/k3s/server/tls/client-ca.key");

  // k3s server nodes only: control-plane="true".
  REQUIRE(count(pod, "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms") == 1);
  const auto &term =
      at(pod, "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.0");
  REQUIRE(count(term, "matchExpressions") == 1);
  CHECK(str(term, "matchExpressions.0.key") == "node-role.kubernetes.io/control-plane");
  CHECK(str(term, "matchExpressions.0.operator") == "In");
  CHECK(strings(term, "matchExpressions.0.values") == std::vector<std::string>{"true"});

  // The base's hardening survives the patch.
  CHECK(at(c, "securityContext.readOnlyRootFilesystem").evaluate_as_boolean());
  CHECK(!at(c, "securityContext.allowPrivilegeEscalation").evaluate_as_boolean());
  CHECK(strings(c, "securityContext.capabilities.drop") == std::vector<std::string>{"ALL"});
  CHECK(str(c, "resources.limits.memory") == "64Mi");

  // The Service selects the pods and the APIServices name the Service.
  const auto *svc = find(k3s, "Service", "pinniped-concierge-api");
  REQUIRE(svc != nullptr);
  CHECK(at(*svc, "spec.selector").serialize() == at(d, "spec.template.metadata.labels").serialize());
  int apiservices = 0;
  for (const auto &doc : k3s) {
    if (str(doc, "kind") != "APIService") continue;
    apiservices++;
    INFO(str(doc, "metadata.name"));
    CHECK(str(doc, "spec.service.name") == str(*svc, "metadata.name"));
    CHECK(str(doc, "spec.service.namespace") == str(*svc, "metadata.namespace"));
    CHECK(num(doc, "spec.service.port") == num(*svc, "spec.ports.0.port"));
  }
  CHECK(apiservices == 2);
}

TEST_CASE("tools/k3s-manifest.sh pins the image by digest and refuses a malformed one") {
  require_repo_and_kubectl();
  std::string digest = "sha256:" + std::string(64, 'a');
  auto docs = render("tools/k3s-manifest.sh --digest " + digest);
  CHECK(str(deployment(docs), "spec.template.spec.containers.0.image") == "localhost/pinniped@" + digest);
  // The digest overlay changes nothing else.
  auto base = parse_yaml_documents(read_file(kManifest));
  check_same_objects(base, docs, {"Deployment"});

  for (const std::string &bad :
       std::vector<std::string>{"sha256:abc", "sha256:" + std::string(64, 'A'), "md5:" + std::string(32, 'a'), ""}) {
    INFO(bad);
    int rc = 0;
    std::string out = run("tools/k3s-manifest.sh --digest '" + bad + "' 2>/dev/null", &rc);
    CHECK(rc == 2);
    CHECK(out.empty());
  }
  int rc = 0;
  run("tools/k3s-manifest.sh manifests/nonexistent >/dev/null 2>&1", &rc);
  CHECK(rc == 2);
}

TEST_CASE("the HA overlay: two replicas on different servers, a PDB, one pod replaced at a time") {
  require_repo_and_kubectl();
  auto ha = render("tools/k3s-manifest.sh manifests/k3s/ha");
  const auto &d = deployment(ha);
  CHECK(num(d, "spec.replicas") == 2);
  CHECK(str(d, "spec.strategy.type") == "RollingUpdate");
  CHECK(num(d, "spec.strategy.rollingUpdate.maxSurge") == 0);
  CHECK(num(d, "spec.strategy.rollingUpdate.maxUnavailable") == 1);

  const auto &pod = at(d, "spec.template.spec");
  std::string pod_labels = at(d, "spec.template.metadata.labels").serialize();
  const auto &anti = at(pod, "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution");
  REQUIRE(anti.is<picojson::array>());
  bool per_host = false;
  for (const auto &t : anti.get<picojson::array>())
    if (str(t, "topologyKey") == "kubernetes.io/hostname" &&
        at(t, "labelSelector.matchLabels").serialize() == pod_labels)
      per_host = true;
  CHECK(per_host);
  // Still the base's placement and signer mount.
  CHECK(str(pod,
            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.0."
            "matchExpressions.0.key") == "node-role.kubernetes.io/control-plane");
  CHECK(count(pod, "volumes") == 1);
  CHECK(str(pod, "containers.0.image") == kImage);

  const picojson::value *pdb = nullptr;
  for (const auto &doc : ha)
    if (str(doc, "kind") == "PodDisruptionBudget") pdb = &doc;
  REQUIRE(pdb != nullptr);
  CHECK(str(*pdb, "apiVersion") == "policy/v1");
  CHECK(str(*pdb, "metadata.namespace") == str(d, "metadata.namespace"));
  CHECK(num(*pdb, "spec.minAvailable") == 1);
  CHECK(at(*pdb, "spec.selector.matchLabels").serialize() == pod_labels);

  // Apart from the Deployment and the PDB, the base's objects unchanged.
  auto base = parse_yaml_documents(read_file(kManifest));
  check_same_objects(base, ha, {"Deployment"});
  CHECK(ha.size() == base.size() + 1);
}

TEST_CASE("the CSR-strategy overlay: no hostPath, any node, not root, --strategy csr, and the approve RBAC") {
  require_repo_and_kubectl();
  // kustomize Components need kubectl 1.21+ (Debian 12's 1.20 has kustomize 2).
  int rc = 0;
  std::string probe = run("kubectl kustomize manifests/csr 2>&1", &rc);
  if (rc != 0) {
    WARN("kubectl kustomize cannot render Components here (" << probe.substr(0, 120)
                                                             << "); the CSR overlay was not checked");
    return;
  }
  auto docs = render("kubectl kustomize manifests/csr");
  auto base = render("kubectl kustomize manifests/concierge");
  const auto &d = deployment(docs);
  const auto &pod = at(d, "spec.template.spec");
  CHECK(at(pod, "volumes").is<picojson::null>());
  CHECK(at(pod, "affinity").is<picojson::null>());
  CHECK(at(pod, "tolerations").is<picojson::null>());
  CHECK(at(pod, "containers.0.volumeMounts").is<picojson::null>());
  auto args = strings(pod, "containers.0.args");
  CHECK(flag_value(args, "--strategy") == "csr");
  CHECK(std::find(args.begin(), args.end(), "--signer-root") == args.end());
  CHECK(flag_value(args, "--direct-listen") == "0.0.0.0:10444");
  CHECK(num(pod, "containers.0.securityContext.runAsUser") == 65532);
  CHECK(at(pod, "containers.0.securityContext.runAsNonRoot").serialize() == "true");
  CHECK(at(pod, "containers.0.securityContext.readOnlyRootFilesystem").serialize() == "true");
  // The RBAC: create/watch/delete CSRs, their approval, approve for this signer only.
  const auto *role = find(docs, "ClusterRole", "pinniped-concierge-csr");
  REQUIRE(role != nullptr);
  std::set<std::string> granted;  // "resource[/name] verb"
  REQUIRE(at(*role, "rules").is<picojson::array>());
  for (const auto &r : at(*role, "rules").get<picojson::array>()) {
    CHECK(strings(r, "apiGroups") == std::vector<std::string>{"certificates.k8s.io"});
    auto names = strings(r, "resourceNames");
    for (const auto &res : strings(r, "resources"))
      for (const auto &verb : strings(r, "verbs")) {
        if (names.empty()) granted.insert(res + " " + verb);
        for (const auto &n : names) granted.insert(res + "/" + n + " " + verb);
      }
  }
  CHECK(granted == std::set<std::string>{"certificatesigningrequests create", "certificatesigningrequests get",
                                         "certificatesigningrequests list", "certificatesigningrequests watch",
                                         "certificatesigningrequests delete",
                                         "certificatesigningrequests/approval update",
                                         "signers/kubernetes.io/kube-apiserver-client approve"});
  CHECK(find(docs, "ClusterRoleBinding", "pinniped-concierge-csr") != nullptr);
  // Everything else is the base's.
  check_same_objects(base, docs, {"Deployment"});
  CHECK(docs.size() == base.size() + 2);
  // The program accepts the Deployment's flags (it fails on the missing
  // in-cluster service account, after parsing them).
  std::string bin = pinniped_bin();
  if (access(bin.c_str(), X_OK) == 0) {
    std::string cmd = shell_quote(bin);
    for (const auto &a : args) cmd += " " + shell_quote(a);
    std::string out = run("env -u KUBERNETES_SERVICE_HOST " + cmd + " --kubeconfig /nonexistent 2>&1", &rc);
    INFO(cmd << "\n" << out);
    CHECK(rc == 1);
    CHECK(out.find("unknown flag") == std::string::npos);
  }
}

TEST_CASE("the systemd unit: systemd accepts it and the concierge accepts its flags") {
  REQUIRE(access(kUnit, R_OK) == 0);
  std::string unit = read_file(kUnit);
  std::set<std::string> lines;
  for (const auto &l : unit_lines(unit)) lines.insert(l);
  for (const char *want :
       {"After=k3s.service network-online.target", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
        "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=", "TemporaryFileSystem=/var/lib/rancher:ro",
        "BindReadOnlyPaths=/var/lib/rancher/k3s/server/tls", "ReadOnlyPaths=/etc/rancher/k3s/k3s.yaml",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "MemoryMax=64M"}) {
    INFO(want);
    CHECK(lines.count(want) == 1);
  }

  auto args = exec_start(unit);
  REQUIRE(args.size() > 2);
  CHECK(args[0] == "/usr/local/bin/pinniped");
  CHECK(args[1] == "concierge");
  CHECK(flag_value(args, "--kubeconfig") == "/etc/rancher/k3s/k3s.yaml");
  CHECK(flag_value(args, "--signer-root") == "/");
  CHECK(flag_value(args, "--namespace") == "pinniped-concierge");
  CHECK(listen_port(unit) == 10443);  // not the kubelet's 10250

  // The real program parses every flag (a bad one exits 2 before anything
  // starts); it then fails on the kubeconfig, pointed at a missing file.
  std::string bin = pinniped_bin();
  if (access(bin.c_str(), X_OK) != 0) {
    WARN("no " << bin << " (make): the unit's flags were not run through the program");
  } else {
    TempDir dir;
    std::string cmd = shell_quote(bin);
    for (size_t i = 1; i < args.size(); i++)
      cmd += " " + shell_quote(i > 1 && args[i - 1] == "--kubeconfig" ? dir.file("missing.yaml") : args[i]);
    int rc = 0;
    std::string out = run(cmd + " 2>&1", &rc);
    INFO(cmd << "\n" << out);
    CHECK(rc == 1);
    CHECK(out.find("cannot read " + dir.file("missing.yaml")) != std::string::npos);
  }

  if (!have("systemd-analyze")) {
    WARN("systemd-analyze not installed: the unit was not verified by systemd");
    return;
  }
  // verify wants ExecStart's program to exist: point it at the build's.
  TempDir dir;
  std::string program = access(bin.c_str(), X_OK) == 0 ? abs_path(bin) : "/bin/true";
  std::string copy = unit;
  for (size_t p; (p = copy.find("/usr/local/bin/pinniped ")) != std::string::npos;)
    copy.replace(p, std::strlen("/usr/local/bin/pinniped"), program);
  std::string path = dir.write("pinniped-concierge.service", copy);
  int rc = 0;
  std::string out = run("systemd-analyze verify " + shell_quote(path) + " 2>&1", &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("pinniped-concierge.service") == std::string::npos);

  // And its own score of the sandbox (0 = locked down, 10 = exposed).
  out = run("systemd-analyze security --offline=true " + shell_quote(path) + " 2>&1", &rc);
  auto at_level = out.find("Overall exposure level for pinniped-concierge.service: ");
  if (rc != 0 || at_level == std::string::npos) {
    WARN("systemd-analyze security --offline is not available here:\n" << out);
  } else {
    double level =
        std::atof(out.c_str() + at_level + std::strlen("Overall exposure level for pinniped-concierge.service: "));
    INFO(out);
    CHECK(level > 0.0);
    CHECK(level <= 2.5);
  }
}

TEST_CASE("the host Service leads kube-apiserver to the unit under the name its certificate has") {
  REQUIRE(access(kHostService, R_OK) == 0);
  auto docs = parse_yaml_documents(read_file(kHostService));
  REQUIRE(docs.size() == 2);
  const auto *svc = find(docs, "Service", "pinniped-concierge-api");
  const auto *ep = find(docs, "Endpoints", "pinniped-concierge-api");
  REQUIRE(svc != nullptr);
  REQUIRE(ep != nullptr);
  int64_t port = listen_port(read_file(kUnit));

  CHECK(at(*svc, "spec.selector").is<picojson::null>());  // no pods: the Endpoints are ours
  REQUIRE(count(*svc, "spec.ports") == 1);
  CHECK(num(*svc, "spec.ports.0.port") == 443);
  CHECK(num(*svc, "spec.ports.0.targetPort") == port);
  CHECK(str(*ep, "metadata.namespace") == str(*svc, "metadata.namespace"));
  REQUIRE(count(*ep, "subsets") == 1);
  CHECK(str(*ep, "subsets.0.addresses.0.ip") == "NODE_IP");
  CHECK(str(*ep, "subsets.0.ports.0.name") == str(*svc, "spec.ports.0.name"));
  CHECK(num(*ep, "subsets.0.ports.0.port") == port);

  // The APIServices of manifests/concierge point at this Service...
  auto apis = parse_yaml_documents(read_file("manifests/concierge/apiservices.yaml"));
  REQUIRE(apis.size() == 2);
  for (const auto &a : apis) {
    INFO(str(a, "metadata.name"));
    CHECK(str(a, "spec.service.name") == str(*svc, "metadata.name"));
    CHECK(str(a, "spec.service.namespace") == str(*svc, "metadata.namespace"));
    CHECK(num(a, "spec.service.port") == 443);
  }
  // ...and the concierge, run with the unit's --namespace and the default
  // --app-name, makes its serving certificate for <app>-api.<namespace>.svc,
  // the name kube-apiserver checks.
  ConciergeConfig defaults;
  CHECK(str(*svc, "metadata.name") == defaults.app_name + "-api");
  CHECK(str(*svc, "metadata.namespace") == flag_value(exec_start(read_file(kUnit)), "--namespace"));

  // With NODE_IP filled in, kustomize (kubectl's YAML reader) takes it as is.
  if (!have("kubectl")) {
    WARN("kubectl not installed: host-service.yaml not read by kubectl");
    return;
  }
  TempDir dir;
  std::string text = read_file(kHostService);
  for (size_t p; (p = text.find("NODE_IP\n")) != std::string::npos;) text.replace(p, 7, "192.0.2.10");
  dir.write("host-service.yaml", text);
  dir.write("kustomization.yaml", "resources:\n  - host-service.yaml\n");
  auto rendered = render("kubectl kustomize " + shell_quote(dir.path));
  const auto *ep2 = find(rendered, "Endpoints", "pinniped-concierge-api");
  REQUIRE(ep2 != nullptr);
  CHECK(str(*ep2, "subsets.0.addresses.0.ip") == "192.0.2.10");
}

TEST_CASE("docs/k3s.md: the files it names exist and its pinniped commands use real flags") {
  REQUIRE(access("docs/k3s.md", R_OK) == 0);
  std::string doc = read_file("docs/k3s.md");
  CHECK(doc.find(kImage) != std::string::npos);

  // Repository paths it mentions (not host paths such as .../server/manifests/).
  std::regex path_re("(^|[\\s`(])((manifests|tools)/[A-Za-z0-9_./-]*[A-Za-z0-9_])");
  int paths = 0;
  for (std::sregex_iterator it(doc.begin(), doc.end(), path_re), end; it != end; ++it) {
    paths++;
    INFO((*it)[2].str());
    CHECK(access((*it)[2].str().c_str(), F_OK) == 0);
  }
  CHECK(paths > 5);

  // Commands in its code blocks, continuation lines joined.
  std::vector<std::string> commands;
  bool in_code = false;
  std::string cur;
  std::istringstream in(doc);
  for (std::string line; std::getline(in, line);) {
    std::string t = line.substr(std::min(line.find_first_not_of(' '), line.size()));
    if (t.rfind("```", 0) == 0) {
      in_code = !in_code;
      continue;
    }
    if (!in_code) continue;
    if (!t.empty() && t.back() == '\\') {
      cur += t.substr(0, t.size() - 1) + " ";
      continue;
    }
    commands.push_back(cur + t);
    cur.clear();
  }

  std::string bin = pinniped_bin();
  if (access(bin.c_str(), X_OK) != 0) {
    WARN("no " << bin << " (make): flags in docs/k3s.md not checked");
    return;
  }
  std::regex flag_re("--[a-z][a-z0-9-]*");
  int checked = 0;
  for (const std::string sub : {"get kubeconfig", "whoami", "concierge", "login static"}) {
    std::string help = run(shell_quote(bin) + " " + sub + " --help 2>&1");
    for (const auto &c : commands) {
      auto p = c.find("pinniped " + sub + " ");
      if (p == std::string::npos) continue;
      std::string rest = c.substr(p);
      rest = rest.substr(0, rest.find_first_of("|;#"));
      for (std::sregex_iterator it(rest.begin(), rest.end(), flag_re), end; it != end; ++it) {
        std::string flag = it->str();
        INFO("pinniped " << sub << " " << flag << " in: " << c);
        std::regex in_help(flag + "([^a-z0-9-]|$)");
        CHECK(std::regex_search(help, in_help));
        checked++;
      }
    }
  }
  CHECK(checked >= 4);

  // The test-IDP recipe's sed finds the image it replaces.
  if (have("kubectl")) {
    auto p = doc.find("sed 's|image: pinniped:latest|image: localhost/pinniped:0.1.0|'");
    CHECK(p != std::string::npos);
    std::string lua = run("kubectl kustomize manifests/local-user-authenticator 2>&1");
    CHECK(lua.find("image: pinniped:latest") != std::string::npos);
  }
}
