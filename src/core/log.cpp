#include "core/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace mc::log {
namespace {

std::mutex g_mutex;
FILE* g_file = nullptr;
Level g_level = Level::Info;

const char* level_name(Level level) {
    switch (level) {
        case Level::Debug: return "debug";
        case Level::Info: return "info";
        case Level::Warn: return "warn";
        case Level::Error: return "error";
    }
    return "info";
}

}  // namespace

bool open_file(const std::string& path, std::string& error) {
    std::lock_guard lock(g_mutex);
    FILE* file = std::fopen(path.c_str(), "a");
    if (!file) {
        error = "cannot open log file " + path;
        return false;
    }
    if (g_file) std::fclose(g_file);
    g_file = file;
    return true;
}

void close_file() {
    std::lock_guard lock(g_mutex);
    if (g_file) std::fclose(g_file);
    g_file = nullptr;
}

void set_level(Level level) {
    std::lock_guard lock(g_mutex);
    g_level = level;
}

bool parse_level(std::string_view name, Level& out) {
    for (Level l : {Level::Debug, Level::Info, Level::Warn, Level::Error}) {
        if (name == level_name(l)) {
            out = l;
            return true;
        }
    }
    return false;
}

void write(Level level, std::string_view message) {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const std::time_t secs = system_clock::to_time_t(now);
    const int millis = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

    std::lock_guard lock(g_mutex);
    if (level < g_level) return;
    std::fprintf(stderr, "%s.%03dZ %-5s %.*s\n", stamp, millis, level_name(level),
                 static_cast<int>(message.size()), message.data());
    if (g_file) {
        std::fprintf(g_file, "%s.%03dZ %-5s %.*s\n", stamp, millis, level_name(level),
                     static_cast<int>(message.size()), message.data());
        std::fflush(g_file);
    }
}

}  // namespace mc::log
