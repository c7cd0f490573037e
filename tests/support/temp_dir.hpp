// temp_dir: a fresh folder under $TMPDIR for one test (mkdtemp, so parallel
// tests never share one), removed with everything in it when it goes.
//
//   temp_dir dir;
//   auto cluster = dir.write("c.toml", text);          // a text file
//   auto log = dir.write_bytes("bad.trace", bytes);    // a binary one
//   read_trace_log(dir.file("run.trace"));             // a path to be written
//
// Thread contract: a test's own value.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace accellm::testing {

class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "accellm-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  /// The path of `name` in the folder, as a string.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

  /// Writes `text` to `name` in the folder; its path.
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    std::ofstream{path_ / name} << text;
    return path_ / name;
  }

  /// Writes `bytes` to `name` in the folder; its path, as a string.
  std::string write_bytes(const std::string& name, const std::vector<std::uint8_t>& bytes) const {
    std::ofstream out{path_ / name, std::ios::binary};
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    return file(name);
  }

 private:
  std::filesystem::path path_;
};

}  // namespace accellm::testing
