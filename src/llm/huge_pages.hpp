#pragma once
// Model weights in 2 MiB pages (Linux transparent huge pages).
//
// Decode reads every weight once per token. With 4 KiB pages a 1 GB model spans 250,000 pages,
// far more than the TLB holds, so the kernel walks page tables all through each step; in 2 MiB
// pages the same weights take 500. The kernel only gives a mapping huge pages when it was asked to
// (MADV_HUGEPAGE; most distributions ship transparent_hugepage=madvise) before its pages are
// touched, and a file's page cache only where the file system and kernel support large folios,
// so the engine reads the weights into anonymous memory (llama.cpp's load mode "none") and asks
// for huge pages for it between allocation and reading: `WeightPages` does that from the first
// progress callback of the load, when llama.cpp has allocated every weight buffer and read none.
//
// Thread safety: one WeightPages per load, used by the loading thread.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mc::llm::huge_pages {

struct Range {
    uintptr_t begin = 0;
    uintptr_t end = 0;  // One past the last byte.
    size_t size() const { return end - begin; }
};

// The anonymous, private, writable mappings of this process of at least min_bytes, from `maps`
// (the text of /proc/self/maps; "" = read it now).
std::vector<Range> anonymous_mappings(size_t min_bytes, const std::string& maps = "");

// Asks for huge pages for the 2 MiB-aligned part of each range (MADV_HUGEPAGE). Returns the
// bytes asked for (0 where the kernel has no transparent huge pages).
size_t advise(const std::vector<Range>& ranges);

// Bytes of these ranges the kernel backs with huge pages now (AnonHugePages in /proc/self/smaps).
size_t huge_bytes(const std::vector<Range>& ranges);

// "always", "madvise" or "never" (the kernel's setting); "" where the kernel has none.
std::string kernel_mode();

class WeightPages {
public:
    // Mappings of at least min_bytes that appear during the load count as weight buffers
    // (glibc serves allocations of 32 MiB and more with a mapping of their own).
    explicit WeightPages(size_t min_bytes = size_t(32) << 20);
    // Call from the load's progress callback: the first call advises the new mappings.
    void on_progress();
    const std::vector<Range>& advised() const { return m_advised; }
    size_t advised_bytes() const { return m_advised_bytes; }

private:
    size_t m_min_bytes;
    std::vector<Range> m_before;
    std::vector<Range> m_advised;
    size_t m_advised_bytes = 0;
    bool m_done = false;
};

}  // namespace mc::llm::huge_pages
