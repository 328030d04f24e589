#include "llm/huge_pages.hpp"

#include "core/log.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

namespace mc::llm::huge_pages {
namespace {

constexpr uintptr_t kHuge = uintptr_t(2) << 20;

std::string read_file(const char* path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

std::vector<Range> anonymous_mappings(size_t min_bytes, const std::string& maps) {
    const std::string text = maps.empty() ? read_file("/proc/self/maps") : maps;
    std::vector<Range> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        // "begin-end perms offset dev inode [name]": anonymous mappings have inode 0 and no name.
        unsigned long long begin = 0, end = 0, offset = 0, inode = 0;
        char perms[8] = {}, dev[16] = {};
        int name_at = 0;
        if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %llu %n", &begin, &end, perms, &offset, dev, &inode, &name_at) < 6) continue;
        if (inode != 0 || perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p') continue;
        if (name_at > 0 && static_cast<size_t>(name_at) < line.size()) continue;  // [heap], [stack], ...
        if (end - begin < min_bytes) continue;
        out.push_back({static_cast<uintptr_t>(begin), static_cast<uintptr_t>(end)});
    }
    return out;
}

size_t advise(const std::vector<Range>& ranges) {
#ifdef MADV_HUGEPAGE
    size_t total = 0;
    for (const auto& r : ranges) {
        const uintptr_t begin = (r.begin + kHuge - 1) & ~(kHuge - 1);
        const uintptr_t end = r.end & ~(kHuge - 1);
        if (end <= begin) continue;
        if (madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0) total += end - begin;
    }
    return total;
#else
    (void)ranges;
    return 0;
#endif
}

void populate(const std::vector<Range>& ranges, int threads) {
#ifndef MADV_POPULATE_WRITE
    constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14; older headers lack the name.
#endif
    // Whole 2 MiB pages, dealt out in equal runs.
    std::vector<std::pair<uintptr_t, uintptr_t>> pages;
    for (const auto& r : ranges) {
        for (uintptr_t p = (r.begin + kHuge - 1) & ~(kHuge - 1); p + kHuge <= r.end; p += kHuge) pages.emplace_back(p, p + kHuge);
    }
    if (pages.empty()) return;
    const size_t n = std::clamp<size_t>(static_cast<size_t>(std::max(threads, 1)), 1, pages.size());
    auto fault = [&](size_t part) {
        const size_t from = pages.size() * part / n, to = pages.size() * (part + 1) / n;
        for (size_t i = from; i < to;) {
            size_t j = i + 1;  // Adjacent pages in one call.
            while (j < to && pages[j].first == pages[j - 1].second) ++j;
            madvise(reinterpret_cast<void*>(pages[i].first), pages[j - 1].second - pages[i].first, MADV_POPULATE_WRITE);
            i = j;
        }
    };
    std::vector<std::thread> helpers;  // Joined below, before the loader reads into the pages.
    for (size_t part = 1; part < n; ++part) helpers.emplace_back(fault, part);
    fault(0);
    for (auto& t : helpers) t.join();
}

size_t huge_bytes(const std::vector<Range>& ranges) {
    const std::string text = read_file("/proc/self/smaps");
    std::istringstream in(text);
    std::string line;
    bool inside = false;
    size_t total = 0;
    while (std::getline(in, line)) {
        unsigned long long begin = 0, end = 0;
        char dash = 0;
        if (std::sscanf(line.c_str(), "%llx%c%llx", &begin, &dash, &end) == 3 && dash == '-') {
            inside = std::any_of(ranges.begin(), ranges.end(), [&](const Range& r) { return begin < r.end && r.begin < end; });
            continue;
        }
        unsigned long long kb = 0;
        if (inside && std::sscanf(line.c_str(), "AnonHugePages: %llu kB", &kb) == 1) total += static_cast<size_t>(kb) << 10;
    }
    return total;
}

std::string kernel_mode() {
    // "always [madvise] never": the bracketed one is in force.
    const std::string text = read_file("/sys/kernel/mm/transparent_hugepage/enabled");
    const size_t open = text.find('['), close = text.find(']');
    return open == std::string::npos || close == std::string::npos || close < open ? "" : text.substr(open + 1, close - open - 1);
}

WeightPages::WeightPages(int threads, size_t min_bytes) : m_threads(threads), m_min_bytes(min_bytes), m_before(anonymous_mappings(0)) {}

void WeightPages::on_progress() {
    if (m_done) return;
    m_done = true;
    for (const auto& r : anonymous_mappings(m_min_bytes)) {
        // One that began there before only grew (a malloc arena's heap): not a weight buffer.
        const bool old = std::any_of(m_before.begin(), m_before.end(), [&](const Range& b) { return b.begin == r.begin; });
        if (!old) m_advised.push_back(r);
    }
    m_advised_bytes = advise(m_advised);
    if (m_advised_bytes == 0) return;
    const auto started = std::chrono::steady_clock::now();
    populate(m_advised, m_threads);
    std::string sizes;
    for (const auto& r : m_advised) sizes += (sizes.empty() ? "" : " + ") + std::to_string(r.size() >> 20);
    log::debug("weights: ", m_advised_bytes >> 20, " MiB in buffers of ", sizes, " MiB asked for 2 MiB pages, faulted in on ", m_threads,
               " thread(s) in ", std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count(), " ms");
}

}  // namespace mc::llm::huge_pages
