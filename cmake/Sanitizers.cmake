# ACCELLM_SANITIZE=ON builds everything with AddressSanitizer and
# UndefinedBehaviorSanitizer. The test binaries carry the sanitizers' options
# (tests/sanitizer_options.cpp): any report stops the test; cmake/ubsan.supp
# silences known UB inside third-party headers.
include_guard(GLOBAL)
option(ACCELLM_SANITIZE "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
if(ACCELLM_SANITIZE)
  set(accellm_san_flags -fsanitize=address,undefined -fno-omit-frame-pointer)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${accellm_san_flags}>")
  add_link_options(${accellm_san_flags})
endif()
