# accellm::warnings: the warning set every accellm target compiles with.
# ACCELLM_WERROR=ON (CI) turns them into errors.
include_guard(GLOBAL)
option(ACCELLM_WERROR "Treat compiler warnings as errors" OFF)

add_library(accellm_warnings INTERFACE)
add_library(accellm::warnings ALIAS accellm_warnings)
target_compile_options(accellm_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${ACCELLM_WERROR}>>:-Werror>
  $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${ACCELLM_WERROR}>>:-Werror=all-warnings>)
