#include "config/manifest.hpp"

#include "config/toml_fields.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <system_error>

namespace accellm::config {
namespace {

using detail::toml_fields;

bool plain_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

bool plain_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), plain_char);
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

result<manifest_process> read_process(const toml::table& t, std::size_t index,
                                      std::string_view source) {
  const std::string path = "process[" + std::to_string(index) + "]";
  toml_fields f{t, path, source};
  ACCELLM_TRY(f.only({"name", "pid", "netns", "dev"}));
  manifest_process p;
  ACCELLM_TRY(f.get("name", p.name));
  ACCELLM_TRY(f.get("pid", p.pid, 1));
  ACCELLM_TRY(f.get("netns", p.netns));
  ACCELLM_TRY(f.get("dev", p.dev));
  if (p.name.empty()) return f.fail_at("name", "is missing or empty");
  if (p.pid == 0) return f.fail_at("pid", "is missing");
  if (p.netns.empty() != p.dev.empty()) {
    return f.fail_at(p.netns.empty() ? "dev" : "netns",
                     "is given without " + std::string{p.netns.empty() ? "netns" : "dev"});
  }
  if (!p.netns.empty() && !plain_name(p.netns)) {
    return f.fail_at("netns", "'" + p.netns + "' is not a plain name ([A-Za-z0-9_.-])");
  }
  if (!p.dev.empty() && !plain_name(p.dev)) {
    return f.fail_at("dev", "'" + p.dev + "' is not a plain name ([A-Za-z0-9_.-])");
  }
  return p;
}

}  // namespace

result<cluster_manifest> parse_manifest(std::string_view text, std::string_view source) {
  auto root = detail::parse_toml(text, source);
  if (!root) return std::move(root).err();
  toml_fields f{*root, "", source};
  ACCELLM_TRY(f.only({"cluster", "started_unix_s", "process"}));
  cluster_manifest m;
  ACCELLM_TRY(f.get("cluster", m.cluster));
  ACCELLM_TRY(f.get("started_unix_s", m.started_unix_s));
  const toml::node* procs = root->get("process");
  const toml::array* list = procs != nullptr ? procs->as_array() : nullptr;
  if (procs != nullptr && list == nullptr)
    return f.fail_at("process", "must be [[process]] tables");
  if (list == nullptr || list->empty()) return f.fail_at("process", "lists no process");
  std::set<std::string> names;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const toml::table* t = list->get(i)->as_table();
    if (t == nullptr) return f.fail_at("process", i, "is not a table");
    auto p = read_process(*t, i, source);
    if (!p) return std::move(p).err();
    if (!names.insert(p->name).second) {
      return f.fail_at("process", i, "repeats the name '" + p->name + "'");
    }
    m.processes.push_back(std::move(*p));
  }
  return m;
}

result<cluster_manifest> load_manifest(const std::filesystem::path& path) {
  auto text = detail::read_text(path);
  if (!text) return std::move(text).err();
  return parse_manifest(*text, path.string());
}

std::string to_toml(const cluster_manifest& m) {
  char started[48];
  std::snprintf(started, sizeof started, "%.3f", m.started_unix_s);
  std::string out = "# The processes of a running accellm cluster (accellm chaos acts on them).\n";
  out += "cluster = " + quoted(m.cluster) + "\nstarted_unix_s = " + started + "\n";
  for (const manifest_process& p : m.processes) {
    out += "\n[[process]]\nname = " + quoted(p.name) + "\npid = " + std::to_string(p.pid) + "\n";
    if (!p.netns.empty()) out += "netns = " + quoted(p.netns) + "\ndev = " + quoted(p.dev) + "\n";
  }
  return out;
}

std::filesystem::path default_manifest(std::string_view name) {
  std::string safe{name.empty() ? "cluster" : name};
  std::replace_if(
      safe.begin(), safe.end(), [](char c) { return !plain_char(c); }, '_');
  std::error_code ec;
  auto dir = std::filesystem::temp_directory_path(ec);
  if (ec) dir = "/tmp";
  return dir / ("accellm-" + safe + ".manifest.toml");
}

}  // namespace accellm::config
