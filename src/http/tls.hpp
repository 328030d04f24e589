// http/tls: the certificate for https mode. A browser allows the microphone only on https or on
// localhost, so a phone on the LAN needs https; with no certificate of the person's own, the
// server makes a self-signed one (EC P-256, SHA-256) for this machine's names and addresses and
// keeps it in the data folder, so the browser's exception stays valid across restarts.
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"

namespace mc::http {

struct TlsFiles {
    std::string cert_file;    // PEM certificate (chain).
    std::string key_file;     // PEM private key.
    std::string fingerprint;  // SHA-256 of the certificate's DER, "AB:CD:..." as browsers show it.
    bool generated = false;   // Made (or made again) by this call.
};

// This machine's host name and non-loopback IP addresses (for the certificate's names).
std::vector<std::string> local_names();

// The certificate in `dir` (cert.pem, key.pem), made when absent, unreadable, expiring within 30
// days, not matching its key, or not naming each of `names` (DNS names or IP addresses; localhost,
// 127.0.0.1 and ::1 are always included). The key file is written with mode 0600.
Result<TlsFiles> ensure_self_signed(const std::string& dir, const std::vector<std::string>& names);

// Checks a person's own certificate and key (PEM): both readable, the key matching the
// certificate. Errors name the file (field "server.tls_cert" / "server.tls_key").
Result<TlsFiles> check_certificate(const std::string& cert_file, const std::string& key_file);

}  // namespace mc::http
