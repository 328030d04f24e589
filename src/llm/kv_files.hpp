// llm/kv_files: the folder of saved KV states (one file per chat, in one subfolder per model and
// context size) kept within a byte budget: least recently used files go first, folders of other
// models and context sizes are removed once empty, and leftovers of interrupted writes are deleted.
// Thread safety: pure file operations; the inference thread is the only caller.
#pragma once

#include <cstdint>
#include <string>

namespace mc::llm::kv_files {

// Marks a state file or folder as just used (its modification time), so the budget keeps it.
void touch(const std::string& path);

struct Trimmed {
    uint64_t kept_bytes = 0;
    int removed_files = 0;
};

// Deletes the least recently used *.state files under `cache_dir` until they take at most
// `budget_bytes`, never `keep` (the file just written). Removes *.tmp files (a write that was cut
// off) and empty subfolders other than `keep`'s.
Trimmed enforce_budget(const std::string& cache_dir, uint64_t budget_bytes, const std::string& keep);

}  // namespace mc::llm::kv_files
