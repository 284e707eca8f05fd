// docs/: the committed diagrams are what tools/render-docs.sh makes of their
// sources, every relative link and image of the Markdown resolves, and the
// flags and metric names the pages mention exist in the code. Run from the
// repository root (as `make test` does).
#include <catch2/catch.hpp>
#include <set>

#include "tests/support.hpp"

using testing::run;
using testing::shell_quote;
using testing::TempDir;

namespace {

bool lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Names in `dir` ending with `suffix`, sorted, as "dir/name".
std::vector<std::string> files_in(const std::string &dir, const std::string &suffix) {
  std::vector<std::string> out;
  if (DIR *d = opendir(dir.c_str())) {
    while (const dirent *e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
        out.push_back(dir + "/" + n);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string dir_of(const std::string &path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool is_fence(const std::string &line) {
  size_t i = line.find_first_not_of(' ');
  return i != std::string::npos && i <= 3 && (line.compare(i, 3, "```") == 0 || line.compare(i, 3, "~~~") == 0);
}

// The Markdown prose of a file: fenced blocks and `code spans` blanked out
// (a code span may run over lines, never past a blank line).
std::string prose(const std::string &text) {
  std::string out;
  std::istringstream in(text);
  bool fence = false, code = false;
  for (std::string line; std::getline(in, line);) {
    if (is_fence(line)) {
      fence = !fence;
      out += "\n";
      continue;
    }
    if (fence) {
      out += "\n";
      continue;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) code = false;
    for (char c : line) {
      if (c == '`') code = !code;
      out += code || c == '`' ? ' ' : c;
    }
    out += "\n";
  }
  return out;
}

struct Link {
  std::string target;
  bool image;
};

// Link and image targets of Markdown prose: [text](target "title"),
// ![alt](target), reference definitions "[name]: target", src="..." and
// href="...".
std::vector<Link> link_targets(const std::string &p) {
  std::vector<Link> out;
  auto token = [&](size_t i) {
    while (i < p.size() && (p[i] == ' ' || p[i] == '\t')) i++;
    bool angle = i < p.size() && p[i] == '<';
    if (angle) i++;
    size_t start = i;
    while (i < p.size() && !std::isspace(static_cast<unsigned char>(p[i])) && p[i] != ')' && !(angle && p[i] == '>'))
      i++;
    return p.substr(start, i - start);
  };
  for (size_t i = 0; i < p.size(); i++) {
    if (p[i] == '[') {
      // The matching ']' within the paragraph.
      int depth = 0;
      size_t j = i;
      for (; j < p.size(); j++) {
        if (p[j] == '[') depth++;
        if (p[j] == ']' && --depth == 0) break;
        if (p.compare(j, 2, "\n\n") == 0) {
          j = p.size();
          break;
        }
      }
      if (j + 1 >= p.size()) continue;
      bool line_start = i == 0 || p[i - 1] == '\n';
      bool image = i > 0 && p[i - 1] == '!';
      if (p[j + 1] == '(')
        out.push_back({token(j + 2), image});
      else if (p[j + 1] == ':' && line_start)
        out.push_back({token(j + 2), false});
    }
    for (const char *attr : {"src=\"", "href=\""}) {
      size_t n = std::strlen(attr);
      if (p.compare(i, n, attr) == 0) {
        size_t end = p.find('"', i + n);
        if (end != std::string::npos) out.push_back({p.substr(i + n, end - i - n), attr[0] == 's'});
      }
    }
  }
  return out;
}

bool has_scheme(const std::string &t) {
  size_t colon = t.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  for (size_t i = 0; i < colon; i++)
    if (!std::isalnum(static_cast<unsigned char>(t[i])) && t[i] != '+' && t[i] != '-' && t[i] != '.') return false;
  return true;
}

// GitHub's heading anchors: lower case, punctuation dropped, spaces to '-',
// repeated headings numbered.
std::set<std::string> anchors(const std::string &text) {
  std::set<std::string> out;
  std::map<std::string, int> seen;
  std::istringstream in(text);
  bool fence = false;
  for (std::string line; std::getline(in, line);) {
    if (is_fence(line)) fence = !fence;
    if (fence || line.empty() || line[0] != '#') continue;
    size_t i = line.find_first_not_of('#');
    if (i == std::string::npos || i > 6 || line[i] != ' ') continue;
    std::string title = line.substr(i + 1);
    while (!title.empty() && (title.back() == '#' || title.back() == ' ')) title.pop_back();
    std::string slug;
    for (unsigned char c : title) {
      if (std::isalnum(c) || c == '-' || c == '_' || c >= 0x80)
        slug += static_cast<char>(std::tolower(c));
      else if (c == ' ')
        slug += '-';
    }
    int n = seen[slug]++;
    out.insert(n == 0 ? slug : slug + "-" + std::to_string(n));
  }
  return out;
}

// Every "--flag" (a word of its own) in a text.
std::set<std::string> flags_in(const std::string &text) {
  std::set<std::string> out;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; };
  for (size_t i = 0; i + 2 < text.size(); i++) {
    if (text.compare(i, 2, "--") != 0 || (i > 0 && word(text[i - 1])) || text[i + 2] < 'a' || text[i + 2] > 'z')
      continue;
    size_t j = i + 2;
    while (j < text.size() && (lower_or_digit(text[j]) || text[j] == '-')) j++;
    std::string f = text.substr(i, j - i);
    while (f.back() == '-') f.pop_back();
    out.insert(f);
    i = j;
  }
  return out;
}

// Every pinniped_* identifier in a text.
std::set<std::string> metric_names_in(const std::string &text) {
  std::set<std::string> out;
  const std::string prefix = "pinniped_";
  for (size_t at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
    if (at > 0 && (std::isalnum(static_cast<unsigned char>(text[at - 1])) || text[at - 1] == '_')) continue;
    size_t j = at + prefix.size();
    while (j < text.size() && (lower_or_digit(text[j]) || text[j] == '_')) j++;
    out.insert(text.substr(at, j - at));
  }
  return out;
}

// True when `text` has `flag` not followed by another flag character.
bool has_flag(const std::string &text, const std::string &flag) {
  for (size_t at = text.find(flag); at != std::string::npos; at = text.find(flag, at + 1)) {
    char next = at + flag.size() < text.size() ? text[at + flag.size()] : ' ';
    if (!lower_or_digit(next) && next != '-') return true;
  }
  return false;
}

// Flags of other programs that the pages name, with their owner.
const std::set<std::string> kForeignFlags = {
    "--client-ca-file",  // kube-apiserver
    "--anonymous-auth",  // kube-apiserver
};

void require_root() {
  if (!exists("pinniped.hpp") || !exists("docs"))
    FAIL("run from the repository root (pinniped.hpp and docs/ not found in the working directory)");
}

}  // namespace

TEST_CASE("every docs/*.dot has its rendered .svg and every .svg its source", "[docs]") {
  require_root();
  auto dots = files_in("docs", ".dot");
  REQUIRE_FALSE(dots.empty());
  for (const auto &dot : dots) {
    INFO(dot);
    CHECK(exists(dot.substr(0, dot.size() - 4) + ".svg"));
  }
  for (const auto &svg : files_in("docs", ".svg")) {
    INFO(svg);
    CHECK(exists(svg.substr(0, svg.size() - 4) + ".dot"));
  }
}

TEST_CASE("each committed diagram is byte for byte what render-docs.sh makes of its source", "[docs]") {
  require_root();
  int rc = 0;
  run("command -v dot >/dev/null 2>&1", &rc);
  if (rc != 0) {
    WARN("dot not found: diagrams not re-rendered (install graphviz, make deps)");
    return;
  }
  TempDir tmp;
  for (const auto &dot : files_in("docs", ".dot")) {
    std::string name = dot.substr(5, dot.size() - 9);  // docs/NAME.dot
    std::string fresh = tmp.file(name + ".svg"), committed = "docs/" + name + ".svg";
    std::string out = run("tools/render-docs.sh -o " + shell_quote(fresh) + " " + shell_quote(dot) + " 2>&1", &rc);
    INFO(dot << ": " << out);
    REQUIRE(rc == 0);
    REQUIRE(exists(committed));
    std::string a = pinniped::read_file(fresh), b = pinniped::read_file(committed);
    INFO(committed << " is stale: run `make docs` and commit it");
    CHECK(a == b);
    // Deterministic: no Graphviz version stamp, and a second run gives the same bytes.
    CHECK(a.find("Generated by graphviz") == std::string::npos);
    run("tools/render-docs.sh -o " + shell_quote(fresh) + " " + shell_quote(dot) + " 2>&1", &rc);
    REQUIRE(rc == 0);
    CHECK(pinniped::read_file(fresh) == a);
  }
  // No temporary files left beside the output.
  auto leftovers = run("ls -A " + shell_quote(tmp.path) + " | grep -c tmp", &rc);
  CHECK(std::atoi(leftovers.c_str()) == 0);
}

TEST_CASE("render-docs.sh says in one line what to install when dot is missing", "[docs]") {
  require_root();
  int rc = 0;
  std::string out = run("env PATH=/nonexistent /bin/sh tools/render-docs.sh 2>&1", &rc);
  CHECK(rc != 0);
  CHECK(out.find("install graphviz (make deps)") != std::string::npos);
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
}

TEST_CASE("relative links and images in README.md and docs/*.md point at files that exist", "[docs]") {
  require_root();
  auto pages = files_in("docs", ".md");
  pages.insert(pages.begin(), "README.md");
  std::map<std::string, std::set<std::string>> anchor_cache;
  auto anchors_of = [&](const std::string &md) -> const std::set<std::string> & {
    auto it = anchor_cache.find(md);
    if (it == anchor_cache.end()) it = anchor_cache.emplace(md, anchors(pinniped::read_file(md))).first;
    return it->second;
  };
  size_t checked = 0;
  std::map<std::string, std::vector<std::string>> images;
  for (const auto &page : pages) {
    std::string text = pinniped::read_file(page);
    for (const auto &link : link_targets(prose(text))) {
      std::string target = link.target;
      INFO(page << " links to \"" << target << "\"");
      if (target.empty() || has_scheme(target)) continue;
      std::string fragment;
      if (auto hash = target.find('#'); hash != std::string::npos) {
        fragment = target.substr(hash + 1);
        target = target.substr(0, hash);
      }
      if (auto q = target.find('?'); q != std::string::npos) target = target.substr(0, q);
      for (size_t at; (at = target.find("%20")) != std::string::npos;) target.replace(at, 3, " ");
      std::string path = target.empty() ? page : target[0] == '/' ? target.substr(1) : dir_of(page) + "/" + target;
      checked++;
      CHECK(exists(path));
      if (!fragment.empty() && exists(path) && path.size() > 3 && path.compare(path.size() - 3, 3, ".md") == 0) {
        INFO("anchors of " << path << " do not include #" << fragment);
        CHECK(anchors_of(path).count(fragment) == 1);
      }
      if (link.image) images[page].push_back(target);
    }
  }
  CHECK(checked > 0);
  // The architecture page shows its rendered diagram.
  const auto &arch = images["docs/architecture.md"];
  CHECK(std::find(arch.begin(), arch.end(), "architecture.svg") != arch.end());
}

TEST_CASE("every --flag the architecture and operations pages mention is one the program takes", "[docs]") {
  require_root();
  // The flags of every command, as its help prints them from the table the
  // parser reads.
  std::string help;
  for (const char *cmd : {"concierge", "login static", "get kubeconfig", "whoami", "local-user-authenticator",
                          "local-user-authenticator add-user", "completion", "version"}) {
    int rc = 0;
    help += run(shell_quote(testing::pinniped_bin()) + " " + cmd + " --help 2>&1", &rc);
    INFO("pinniped " << cmd << " --help");
    CHECK(rc == 0);
  }
  size_t seen = 0;
  for (const char *page : {"docs/operations.md", "docs/architecture.md"}) {
    for (const auto &flag : flags_in(pinniped::read_file(page))) {
      if (kForeignFlags.count(flag)) continue;
      INFO(page << " mentions " << flag << ", which no command's help lists");
      CHECK(has_flag(help, flag));
      seen++;
    }
  }
  CHECK(seen > 10);
}

TEST_CASE("every metric the operations page names is one pinniped.hpp exposes, and each one is documented", "[docs]") {
  require_root();
  std::string header = pinniped::read_file("pinniped.hpp");
  std::string ops = pinniped::read_file("docs/operations.md");
  auto documented = metric_names_in(ops);
  CHECK(documented.size() >= 8);
  for (const auto &m : documented) {
    INFO("docs/operations.md names " << m << ", which pinniped.hpp does not expose");
    CHECK(header.find(m) != std::string::npos);
  }
  for (const auto &m : metric_names_in(pinniped::read_file("docs/architecture.md"))) {
    INFO("docs/architecture.md names " << m << ", which pinniped.hpp does not expose");
    CHECK(header.find(m) != std::string::npos);
  }
  // The other way round: each metric's "# HELP" line has its row in the page.
  const std::string help = "# HELP ";
  size_t exposed = 0;
  for (size_t at = header.find(help); at != std::string::npos; at = header.find(help, at + 1)) {
    size_t start = at + help.size(), end = start;
    while (end < header.size() && (lower_or_digit(header[end]) || header[end] == '_')) end++;
    std::string name = header.substr(start, end - start);
    if (name.rfind("pinniped_", 0) != 0) continue;
    exposed++;
    INFO(name << " is exposed at /metrics but docs/operations.md does not mention it");
    CHECK(documented.count(name) == 1);
  }
  CHECK(exposed >= 8);
}
