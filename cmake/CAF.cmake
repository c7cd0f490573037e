# Imported targets for CAF 0.17 as Debian 12 ships it (no CMake package, no
# pkg-config file). The targets are named like the exports of CAF >= 0.18 so an
# upgrade only replaces this file:
#   CAF::core  CAF::io  CAF::openssl
# Include directories are marked SYSTEM (imported targets do that), which keeps
# CAF's own C++20 deprecation warnings out of our -Werror build.

include_guard(GLOBAL)
find_package(Threads REQUIRED)

find_path(CAF_INCLUDE_DIR caf/all.hpp)
find_library(CAF_CORE_LIBRARY caf_core)
find_library(CAF_IO_LIBRARY caf_io)
find_library(CAF_OPENSSL_LIBRARY caf_openssl)

if(NOT CAF_INCLUDE_DIR OR NOT CAF_CORE_LIBRARY OR NOT CAF_IO_LIBRARY OR NOT CAF_OPENSSL_LIBRARY)
  message(FATAL_ERROR
    "CAF 0.17 not found (headers: ${CAF_INCLUDE_DIR}, core: ${CAF_CORE_LIBRARY}, "
    "io: ${CAF_IO_LIBRARY}, openssl: ${CAF_OPENSSL_LIBRARY}). "
    "Run deploy/install-deps.sh (Debian package libcaf-dev).")
endif()

# Version guard: caf/config.hpp holds "#define CAF_VERSION 1706" for 0.17.6.
file(STRINGS "${CAF_INCLUDE_DIR}/caf/config.hpp" caf_version_line
     REGEX "^#define CAF_VERSION [0-9]+$")
string(REGEX REPLACE "^#define CAF_VERSION ([0-9]+)$" "\\1" caf_version_number "${caf_version_line}")
if(NOT caf_version_number MATCHES "^[0-9]+$")
  message(FATAL_ERROR "cannot read CAF_VERSION from ${CAF_INCLUDE_DIR}/caf/config.hpp")
endif()
math(EXPR caf_major "${caf_version_number} / 10000")
math(EXPR caf_minor "(${caf_version_number} / 100) % 100")
math(EXPR caf_patch "${caf_version_number} % 100")
set(CAF_VERSION "${caf_major}.${caf_minor}.${caf_patch}")
if(NOT caf_major EQUAL 0 OR NOT caf_minor EQUAL 17)
  message(FATAL_ERROR "accellm needs CAF 0.17.x (atoms, inspect and type registration "
                      "changed in 0.18); found ${CAF_VERSION}")
endif()
message(STATUS "CAF ${CAF_VERSION}: ${CAF_CORE_LIBRARY}")

add_library(CAF::core SHARED IMPORTED)
set_target_properties(CAF::core PROPERTIES
  IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES Threads::Threads)

add_library(CAF::io SHARED IMPORTED)
set_target_properties(CAF::io PROPERTIES
  IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
  INTERFACE_LINK_LIBRARIES CAF::core)

find_package(OpenSSL REQUIRED COMPONENTS SSL Crypto)
add_library(CAF::openssl SHARED IMPORTED)
set_target_properties(CAF::openssl PROPERTIES
  IMPORTED_LOCATION "${CAF_OPENSSL_LIBRARY}"
  INTERFACE_LINK_LIBRARIES "CAF::io;OpenSSL::SSL;OpenSSL::Crypto")
