// core/log: one process-wide logger writing to stderr and, once opened, to data-dir/logs/mycandy.log.
// Thread safety: every function may be called from any thread (one mutex around the sinks).
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace mc::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

// Opens (appends to) the log file. Returns false with `error` set when the file cannot be opened.
bool open_file(const std::string& path, std::string& error);
void close_file();
void set_level(Level level);
bool parse_level(std::string_view name, Level& out);
void write(Level level, std::string_view message);

template <class... Args>
std::string concat(Args&&... args) {
    std::ostringstream out;
    (out << ... << args);
    return out.str();
}

template <class... Args> void debug(Args&&... a) { write(Level::Debug, concat(std::forward<Args>(a)...)); }
template <class... Args> void info(Args&&... a) { write(Level::Info, concat(std::forward<Args>(a)...)); }
template <class... Args> void warn(Args&&... a) { write(Level::Warn, concat(std::forward<Args>(a)...)); }
template <class... Args> void error(Args&&... a) { write(Level::Error, concat(std::forward<Args>(a)...)); }

}  // namespace mc::log
