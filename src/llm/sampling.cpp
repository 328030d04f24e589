#include <cmath>
#include <cstdio>
#include <string>

#include "llm/engine.hpp"

namespace mc::llm {
namespace {

// A bound as people write it: 32768, 0.5, -2 (std::to_string(double) wrote "32768.000000").
std::string number_text(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return buf;
}

Result<void> range(const char* field, double v, double lo, double hi) {
    if (!std::isfinite(v) || v < lo || v > hi) {
        std::string message = "'";
        message += field;
        message += "' must be between " + number_text(lo) + " and " + number_text(hi);
        return fail(ErrorCode::InvalidInput, message, field);
    }
    return {};
}

}  // namespace

Result<void> validate(const Sampling& s) {
    const std::pair<const char*, std::tuple<double, double, double>> checks[] = {
        {"temperature", {s.temperature, 0.0, 5.0}},
        {"top_k", {static_cast<double>(s.top_k), 0.0, 100000.0}},
        {"top_p", {s.top_p, 0.0, 1.0}},
        {"min_p", {s.min_p, 0.0, 1.0}},
        {"repeat_penalty", {s.repeat_penalty, 0.0, 5.0}},
        {"repeat_last_n", {static_cast<double>(s.repeat_last_n), -1.0, 1048576.0}},
        {"presence_penalty", {s.presence_penalty, -2.0, 2.0}},
        {"frequency_penalty", {s.frequency_penalty, -2.0, 2.0}},
        {"dry_multiplier", {s.dry_multiplier, 0.0, 10.0}},
        {"dry_base", {s.dry_base, 1.0, 10.0}},
        {"dry_allowed_length", {static_cast<double>(s.dry_allowed_length), 0.0, 1000.0}},
        {"dry_penalty_last_n", {static_cast<double>(s.dry_last_n), -1.0, 1048576.0}},
        {"seed", {static_cast<double>(s.seed), -1.0, 4294967295.0}},
        {"max_tokens", {static_cast<double>(s.max_tokens), 1.0, 32768.0}},
    };
    for (const auto& [field, c] : checks) {
        if (auto r = range(field, std::get<0>(c), std::get<1>(c), std::get<2>(c)); !r) return r;
    }
    if (s.stop.size() > kMaxStops) {
        return fail(ErrorCode::InvalidInput, "'stop' may hold at most " + std::to_string(kMaxClientStops) + " strings", "stop");
    }
    for (const auto& stop : s.stop) {
        if (stop.empty() || stop.size() > kMaxServerStopBytes) {
            return fail(ErrorCode::InvalidInput, "each 'stop' string must be 1 to 256 bytes", "stop");
        }
    }
    return {};
}

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::Stop: return "stop";
        case FinishReason::Length: return "length";
        case FinishReason::Cancelled: return "cancelled";
    }
    return "stop";
}

}  // namespace mc::llm
