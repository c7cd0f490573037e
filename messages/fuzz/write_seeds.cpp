// fuzz_decode_seeds DIR: writes every example blob as a seed for fuzz_decode
// (two bytes of type, little-endian, then the message).
#include "messages/codec.hpp"

#include <cstdio>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  for (const auto& blob : accellm::messages::example_blobs()) {
    const std::string path = std::string{argv[1]} + "/example-" + std::to_string(blob.type);
    std::ofstream out{path, std::ios::binary};
    const char type[2] = {static_cast<char>(blob.type & 0xff), static_cast<char>(blob.type >> 8)};
    out.write(type, 2);
    out.write(reinterpret_cast<const char*>(blob.bytes.data()),
              static_cast<std::streamsize>(blob.bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
  }
  return 0;
}
