// api/access_guard: who may talk to the server — the decision made for every request before it is
// routed. Defends against other web pages the person opens (cross-site writes, DNS rebinding) and,
// with server.api_token, against other devices on the network.
// Thread safety: pure function of the request and an immutable policy.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "http/server.hpp"

namespace mc::api {

struct AccessPolicy {
    std::string token;           // server.api_token; "" = none required.
    bool loopback_only = true;   // Listening on 127.0.0.1/localhost/::1 only.
    std::vector<std::string> allowed_hosts;    // Extra names the Host header may carry.
    std::vector<std::string> allowed_origins;  // Extra origins that may send state-changing requests.
};

// Splits a comma-separated settings value, trimming blanks and dropping empty entries.
std::vector<std::string> split_list(const std::string& csv);

// nullopt: let the request through. Otherwise the response to send instead:
//  - 403 when, listening on loopback only, the Host header names another host (DNS rebinding);
//  - 403 for a state-changing request (not GET/HEAD) whose Origin is neither this server's own
//    (scheme://Host) nor allowed, or that the browser marks as cross-site;
//  - 302 with the token cookie for /ui?token=<token>, and 401 without the token when one is set.
std::optional<http::Response> check_access(const http::Request& req, const AccessPolicy& policy);

}  // namespace mc::api
