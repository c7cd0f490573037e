// The sanitizers' options, compiled into every test binary of the sanitizer
// build (ACCELLM_SANITIZE; tests/CMakeLists.txt), so that a test stops at its
// first report whether ctest runs it or someone runs the binary by hand.
// ASAN_OPTIONS and UBSAN_OPTIONS in the environment still come on top.
// halt_on_error rather than -fno-sanitize-recover, because only recoverable
// checks honour cmake/ubsan.supp, which silences known UB inside third-party
// headers.

extern "C" const char* __asan_default_options() {
  return "detect_leaks=1:abort_on_error=1";
}

extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:suppressions=" ACCELLM_UBSAN_SUPPRESSIONS;
}
