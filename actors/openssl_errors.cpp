// OpenSSL requires the calling thread's error queue to be empty before
// SSL_read, SSL_write, SSL_accept and SSL_connect, or SSL_get_error() may
// report an error left behind by another connection. CAF 0.17's OpenSSL
// sessions do not clear it, so when one TLS peer went away, every other
// connection served by the same network thread was closed as failed
// (remote_link_unreachable): a live TLS cluster fell apart whenever a client
// left. These definitions interpose on libssl's (the binaries that link this
// library export them to libcaf_openssl): clear the queue, then call the real
// function. Nothing else changes.
#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

template <class Fn>
Fn real(const char* name) {
  void* f = dlvsym(RTLD_NEXT, name, "OPENSSL_3.0.0");
  if (f == nullptr) f = dlsym(RTLD_NEXT, name);
  return reinterpret_cast<Fn>(f);
}

}  // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto next = real<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return next(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto next = real<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return next(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static const auto next = real<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return next(ssl);
}

int SSL_connect(SSL* ssl) {
  static const auto next = real<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return next(ssl);
}

}  // extern "C"

namespace accellm::actors::detail {

// Referenced by apply(), so that the linker keeps this object (and the
// definitions above) in every binary that uses the transport.
bool openssl_errors_cleared() noexcept {
  return true;
}

}  // namespace accellm::actors::detail
