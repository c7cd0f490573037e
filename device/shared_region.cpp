#include "device/shared_region.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace accellm::device {

std::string_view to_string(region_kind kind) noexcept {
  switch (kind) {
    case region_kind::host:
      return "host";
    case region_kind::cuda:
      return "cuda";
  }
  return "unknown";
}

status check_span(const shared_region& region, std::uint64_t offset, std::uint64_t bytes,
                  std::string_view where) {
  if (offset <= region.bytes() && bytes <= region.bytes() - offset) return {};
  return fail(errc::out_of_range, std::string{where} + ": " + std::to_string(bytes) +
                                      " bytes at offset " + std::to_string(offset) +
                                      " run past the region's " + std::to_string(region.bytes()));
}

namespace {

error os_error(const std::string& what) {
  return fail(errc::io_failure, what + ": " + std::strerror(errno));
}

result<std::byte*> map(int fd, std::uint64_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED)
    return os_error("shared region: mmap of " + std::to_string(bytes) + " bytes");
  return static_cast<std::byte*>(p);
}

}  // namespace

host_region::host_region(key, unique_fd fd, std::byte* data, std::uint64_t bytes) noexcept
    : fd_(std::move(fd)), data_(data), bytes_(bytes) {}

host_region::~host_region() {
  ::munmap(data_, bytes_);
}

result<std::unique_ptr<host_region>> host_region::create(std::uint64_t bytes, const char* name) {
  if (bytes == 0) return fail(errc::invalid_argument, "shared region: 0 bytes");
  unique_fd fd{::memfd_create(name, MFD_CLOEXEC)};
  if (!fd) return os_error("shared region: memfd_create");
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
    return os_error("shared region: ftruncate to " + std::to_string(bytes) + " bytes");
  auto data = map(fd.get(), bytes);
  if (!data) return std::move(data).err();
  return std::make_unique<host_region>(key{}, std::move(fd), *data, bytes);
}

result<std::unique_ptr<host_region>> host_region::open(unique_fd fd, std::uint64_t bytes) {
  if (!fd) return fail(errc::invalid_argument, "shared region: no descriptor");
  if (bytes == 0) return fail(errc::invalid_argument, "shared region: 0 bytes");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return os_error("shared region: fstat");
  if (!S_ISREG(st.st_mode))
    return fail(errc::invalid_argument, "shared region: the descriptor is not a memory file");
  if (static_cast<std::uint64_t>(st.st_size) < bytes)
    return fail(errc::invalid_argument, "shared region: the file holds " +
                                            std::to_string(st.st_size) + " bytes, the peer said " +
                                            std::to_string(bytes));
  auto data = map(fd.get(), bytes);
  if (!data) return std::move(data).err();
  return std::make_unique<host_region>(key{}, std::move(fd), *data, bytes);
}

result<unique_fd> host_region::share() const {
  unique_fd dup{::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0)};
  if (!dup) return os_error("shared region: dup");
  return dup;
}

}  // namespace accellm::device
