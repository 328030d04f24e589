#include "http/tls.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace mc::http {
namespace {

namespace fs = std::filesystem;

constexpr long kValidDays = 825;   // The longest validity Apple's platforms accept for a server certificate.
constexpr long kRenewDays = 30;    // Made again when fewer days than this are left.

struct Freer {
    void operator()(X509* p) const { X509_free(p); }
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(BIO* p) const { BIO_free(p); }
    void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <class T>
using Owned = std::unique_ptr<T, Freer>;

bool is_ip(const std::string& name) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// The names every certificate carries, then the caller's, each once.
std::vector<std::string> all_names(const std::vector<std::string>& names) {
    std::vector<std::string> out = {"localhost", "127.0.0.1", "::1"};
    for (const auto& n : names) {
        if (n.empty() || n.size() > 253) continue;
        if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    return out;
}

Owned<X509> read_cert(const std::string& path) {
    Owned<BIO> bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) return nullptr;
    return Owned<X509>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

Owned<EVP_PKEY> read_key(const std::string& path) {
    Owned<BIO> bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) return nullptr;
    return Owned<EVP_PKEY>(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::string fingerprint(X509* cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return "";
    std::string out;
    char hex[4];
    for (unsigned int i = 0; i < len; ++i) {
        std::snprintf(hex, sizeof hex, i ? ":%02X" : "%02X", md[i]);
        out += hex;
    }
    return out;
}

bool names_cert(X509* cert, const std::string& name) {
    if (is_ip(name)) return X509_check_ip_asc(cert, name.c_str(), 0) == 1;
    return X509_check_host(cert, name.c_str(), name.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
}

// Why the stored pair cannot be used, or "" when it can.
std::string unusable(const std::string& cert_file, const std::string& key_file, const std::vector<std::string>& names) {
    auto cert = read_cert(cert_file);
    if (!cert) return "no readable certificate";
    auto key = read_key(key_file);
    if (!key) return "no readable key";
    if (X509_check_private_key(cert.get(), key.get()) != 1) return "the key does not match the certificate";
    time_t soon = time(nullptr) + kRenewDays * 24 * 3600;
    if (X509_cmp_time(X509_get0_notAfter(cert.get()), &soon) <= 0) return "it expires within 30 days";
    for (const auto& n : names) {
        if (!names_cert(cert.get(), n)) return "it does not name " + n;
    }
    return "";
}

// Writes `data` to `path` through a temporary file and a rename, with `mode`.
Result<void> write_file(const std::string& path, const std::string& data, mode_t mode) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return fail(ErrorCode::Unavailable, "cannot write " + tmp + ": " + std::strerror(errno));
    size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = errno;
            ::close(fd);
            return fail(ErrorCode::Unavailable, "cannot write " + tmp + ": " + std::strerror(err));
        }
        done += static_cast<size_t>(n);
    }
    ::fchmod(fd, mode);
    if (::fsync(fd) != 0 || ::close(fd) != 0) return fail(ErrorCode::Unavailable, "cannot write " + tmp + ": " + std::strerror(errno));
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) return fail(ErrorCode::Unavailable, "cannot write " + path + ": " + ec.message());
    return {};
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

bool add_ext(X509* cert, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    Owned<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

Result<void> make_self_signed(const std::string& cert_file, const std::string& key_file, const std::vector<std::string>& names) {
    Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
    Owned<X509> cert(X509_new());
    if (!key || !cert) return fail(ErrorCode::Internal, "cannot make a key for the https certificate");
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) return fail(ErrorCode::Internal, "no random bytes for the certificate");
    serial[0] &= 0x7f;  // A positive serial number.
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    const bool serial_ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    std::string san;
    for (const auto& n : names) {
        if (!san.empty()) san += ",";
        san += (is_ip(n) ? "IP:" : "DNS:") + n;
    }
    X509_NAME* subject = X509_get_subject_name(cert.get());
    const bool ok = serial_ok && X509_set_version(cert.get(), 2) == 1 &&
                    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24L * 3600) &&
                    X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValidDays * 24 * 3600) &&
                    X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                               reinterpret_cast<const unsigned char*>("MyCandyLocal"), -1, -1, 0) == 1 &&
                    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                               reinterpret_cast<const unsigned char*>("MyCandyLocal on this machine"), -1, -1, 0) == 1 &&
                    X509_set_issuer_name(cert.get(), subject) == 1 && X509_set_pubkey(cert.get(), key.get()) == 1 &&
                    add_ext(cert.get(), NID_basic_constraints, "critical,CA:TRUE") &&
                    add_ext(cert.get(), NID_subject_key_identifier, "hash") &&
                    add_ext(cert.get(), NID_ext_key_usage, "serverAuth") &&
                    add_ext(cert.get(), NID_subject_alt_name, san) && X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
    if (!ok) return fail(ErrorCode::Internal, "cannot make the https certificate");
    Owned<BIO> cert_pem(BIO_new(BIO_s_mem()));
    Owned<BIO> key_pem(BIO_new(BIO_s_mem()));
    if (!cert_pem || !key_pem || PEM_write_bio_X509(cert_pem.get(), cert.get()) != 1 ||
        PEM_write_bio_PrivateKey(key_pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        return fail(ErrorCode::Internal, "cannot encode the https certificate");
    }
    // The key first: a certificate without its key is never left behind as the newer file.
    if (auto w = write_file(key_file, bio_text(key_pem.get()), 0600); !w) return w;
    return write_file(cert_file, bio_text(cert_pem.get()), 0644);
}

}  // namespace

std::vector<std::string> local_names() {
    std::vector<std::string> out;
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0 && host[0]) out.push_back(host);
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return out;
    for (ifaddrs* a = list; a; a = a->ifa_next) {
        if (!a->ifa_addr || (a->ifa_flags & IFF_LOOPBACK) || !(a->ifa_flags & IFF_UP)) continue;
        char text[INET6_ADDRSTRLEN] = {};
        if (a->ifa_addr->sa_family == AF_INET) {
            inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
        } else if (a->ifa_addr->sa_family == AF_INET6) {
            const auto* in6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
            if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;  // Needs a zone; browsers do not use these.
            inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        } else {
            continue;
        }
        if (text[0] && std::find(out.begin(), out.end(), text) == out.end()) out.push_back(text);
    }
    freeifaddrs(list);
    return out;
}

Result<TlsFiles> ensure_self_signed(const std::string& dir, const std::vector<std::string>& names) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return fail(ErrorCode::Unavailable, "cannot create " + dir + ": " + ec.message());
    TlsFiles files{dir + "/cert.pem", dir + "/key.pem", "", false};
    const auto wanted = all_names(names);
    if (!unusable(files.cert_file, files.key_file, wanted).empty()) {
        if (auto made = make_self_signed(files.cert_file, files.key_file, wanted); !made) return std::unexpected(made.error());
        files.generated = true;
    }
    auto cert = read_cert(files.cert_file);
    if (!cert) return fail(ErrorCode::Internal, "the certificate just written cannot be read: " + files.cert_file);
    files.fingerprint = fingerprint(cert.get());
    return files;
}

Result<TlsFiles> check_certificate(const std::string& cert_file, const std::string& key_file) {
    auto cert = read_cert(cert_file);
    if (!cert) return fail(ErrorCode::InvalidInput, "server.tls_cert: " + cert_file + " is not a readable PEM certificate", "server.tls_cert");
    auto key = read_key(key_file);
    if (!key) return fail(ErrorCode::InvalidInput, "server.tls_key: " + key_file + " is not a readable PEM private key (without a passphrase)", "server.tls_key");
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
        return fail(ErrorCode::InvalidInput, "server.tls_key: " + key_file + " is not the key of " + cert_file, "server.tls_key");
    }
    return TlsFiles{cert_file, key_file, fingerprint(cert.get()), false};
}

}  // namespace mc::http
