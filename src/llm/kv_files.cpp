#include "llm/kv_files.hpp"

#include <algorithm>
#include <filesystem>
#include <vector>

namespace mc::llm::kv_files {

namespace fs = std::filesystem;

void touch(const std::string& path) {
    std::error_code ec;
    fs::last_write_time(path, fs::file_time_type::clock::now(), ec);
}

Trimmed enforce_budget(const std::string& cache_dir, uint64_t budget_bytes, const std::string& keep) {
    Trimmed out;
    std::error_code ec;
    if (cache_dir.empty() || !fs::is_directory(cache_dir, ec)) return out;
    struct File {
        fs::path path;
        uint64_t size;
        fs::file_time_type time;
    };
    std::vector<File> files;
    std::vector<fs::path> folders;
    const fs::path keep_path = keep.empty() ? fs::path() : fs::path(keep);
    for (const auto& dir : fs::directory_iterator(cache_dir, ec)) {
        if (!dir.is_directory(ec)) continue;
        folders.push_back(dir.path());
        for (const auto& f : fs::directory_iterator(dir.path(), ec)) {
            if (!f.is_regular_file(ec)) continue;
            const auto ext = f.path().extension();
            if (ext == ".tmp") {
                fs::remove(f.path(), ec);  // Only the inference thread writes, and it is here.
                continue;
            }
            if (ext != ".state") continue;
            files.push_back({f.path(), static_cast<uint64_t>(f.file_size(ec)), f.last_write_time(ec)});
        }
    }
    uint64_t total = 0;
    for (const auto& f : files) total += f.size;
    std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.time < b.time; });
    for (const auto& f : files) {
        if (total <= budget_bytes) break;
        if (f.path == keep_path) continue;
        if (fs::remove(f.path, ec)) {
            total -= f.size;
            ++out.removed_files;
        }
    }
    for (const auto& d : folders) {
        if (!keep.empty() && keep_path.parent_path() == d) continue;
        if (fs::is_empty(d, ec)) fs::remove(d, ec);
    }
    out.kept_bytes = total;
    return out;
}

}  // namespace mc::llm::kv_files
