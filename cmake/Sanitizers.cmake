# ACCELLM_SANITIZE=ON builds everything with AddressSanitizer and
# UndefinedBehaviorSanitizer; any UB report aborts the test that caused it.
include_guard(GLOBAL)
option(ACCELLM_SANITIZE "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
if(ACCELLM_SANITIZE)
  set(accellm_san_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined
                        -fno-omit-frame-pointer)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${accellm_san_flags}>")
  add_link_options(${accellm_san_flags})
endif()
