# ACCELLM_SANITIZE=ON builds everything with AddressSanitizer and
# UndefinedBehaviorSanitizer. Tests run with ACCELLM_SANITIZER_ENV, under which
# any report stops the test; cmake/ubsan.supp silences known UB inside
# third-party headers (halt_on_error instead of -fno-sanitize-recover, because
# only recoverable checks honour suppressions).
include_guard(GLOBAL)
option(ACCELLM_SANITIZE "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
set(ACCELLM_SANITIZER_ENV "")
if(ACCELLM_SANITIZE)
  set(accellm_san_flags -fsanitize=address,undefined -fno-omit-frame-pointer)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${accellm_san_flags}>")
  add_link_options(${accellm_san_flags})
  set(ACCELLM_SANITIZER_ENV
      "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
      "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=${PROJECT_SOURCE_DIR}/cmake/ubsan.supp")
endif()
