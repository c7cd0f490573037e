// The manifest `accellm up` writes and `accellm chaos` reads: what is
// written reads back the same, and a bad file is refused naming the entry.
#include "config/manifest.hpp"

#include <gtest/gtest.h>

#include <string>

namespace accellm::config {
namespace {

cluster_manifest sample() {
  return {.cluster = "netns \"lab\"",
          .started_unix_s = 1764150000.25,
          .processes = {{.name = "coordinator", .pid = 10, .netns = "ns-c", .dev = "eth0"},
                        {.name = "w0", .pid = 11, .netns = {}, .dev = {}}}};
}

TEST(Manifest, WhatIsWrittenReadsBack) {
  const cluster_manifest m = sample();
  auto back = parse_manifest(to_toml(m), "m.toml");
  ASSERT_TRUE(back.ok()) << back.err().what() << "\n" << to_toml(m);
  EXPECT_EQ(*back, m);
}

void expect_error(const std::string& text, const std::string& part) {
  auto r = parse_manifest(text, "m.toml");
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.err().code(), errc::config);
  EXPECT_NE(r.err().message().find(part), std::string::npos) << r.err().message();
}

TEST(Manifest, BadEntriesAreNamed) {
  const std::string head = "cluster = \"c\"\nstarted_unix_s = 1\n";
  expect_error(head, "'process' lists no process");
  expect_error(head + "[[process]]\nname = \"w0\"\n", "'process[0].pid' is missing");
  expect_error(head + "[[process]]\npid = 3\n", "'process[0].name' is missing or empty");
  expect_error(head + "[[process]]\nname = \"w0\"\npid = 0\n", "process[0].pid");
  expect_error(head + "[[process]]\nname = \"w0\"\npid = 3\nnetns = \"n\"\n",
               "'process[0].netns' is given without dev");
  expect_error(head + "[[process]]\nname = \"w0\"\npid = 3\nnetns = \"a b\"\ndev = \"e\"\n",
               "is not a plain name");
  expect_error(head + "[[process]]\nname = \"w0\"\npid = 3\n[[process]]\nname = \"w0\"\npid = 4\n",
               "repeats the name 'w0'");
  expect_error(head + "[[process]]\nname = \"w0\"\npid = 3\nuid = 0\n",
               "unknown key 'process[0].uid'");
  expect_error("cluster = \n", "TOML syntax error");
}

TEST(Manifest, AMissingFileIsAnIoError) {
  auto r = load_manifest("/nonexistent/accellm.manifest.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::io_failure);
  EXPECT_NE(r.err().message().find("/nonexistent/accellm.manifest.toml"), std::string::npos);
}

}  // namespace
}  // namespace accellm::config

namespace accellm::config {
namespace {

// `accellm up` and `accellm chaos --cluster NAME` agree on this path; a
// name's unusual characters cannot leave the temporary directory.
TEST(Manifest, TheDefaultPathIsInTheTemporaryDirectory) {
  const auto p = default_manifest("my lab/../x");
  EXPECT_EQ(p.filename(), "accellm-my_lab_.._x.manifest.toml");
  EXPECT_EQ(p.parent_path(), std::filesystem::temp_directory_path());
  EXPECT_EQ(default_manifest("").filename(), "accellm-cluster.manifest.toml");
}

}  // namespace
}  // namespace accellm::config
