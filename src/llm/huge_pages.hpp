#pragma once
// Model weights in 2 MiB pages (Linux transparent huge pages).
//
// Decode reads every weight once per token. With 4 KiB pages a 1 GB model spans 250,000 pages,
// far more than the TLB holds, so the processor walks page tables all through each step; in 2 MiB
// pages the same weights take 500. Under the common setting transparent_hugepage=madvise the
// kernel gives a mapping huge pages only when asked (MADV_HUGEPAGE) before its pages are touched,
// and a file's page cache only where the file system and kernel support large folios. So the
// engine reads the weights into anonymous memory (llama.cpp's load mode "none") and asks for huge
// pages between allocation and reading: `WeightPages` does that from the first progress callback
// of the load, when llama.cpp has allocated every weight buffer and read none, and faults the
// pages in on several threads before the loader's reads copy into them.
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

// Faults in the 2 MiB-aligned part of each range, writable, on `threads` threads at once
// (MADV_POPULATE_WRITE; Linux 5.14 and later, else nothing happens): allocating and zeroing the
// huge pages then runs in parallel instead of inside the loader's single-threaded reads.
void populate(const std::vector<Range>& ranges, int threads);

// Bytes of these ranges the kernel backs with huge pages now (AnonHugePages in /proc/self/smaps).
size_t huge_bytes(const std::vector<Range>& ranges);

// "always", "madvise" or "never" (the kernel's setting); "" where the kernel has none.
std::string kernel_mode();

class WeightPages {
public:
    // Mappings of at least min_bytes that appear during the load count as weight buffers
    // (glibc serves allocations of 32 MiB and more with a mapping of their own); one that begins
    // where one began before only grew (a malloc arena) and does not count.
    explicit WeightPages(int threads = 1, size_t min_bytes = size_t(32) << 20);
    // Call from the load's progress callback: the first call advises the new mappings and faults
    // them in on `threads` threads.
    void on_progress();
    const std::vector<Range>& advised() const { return m_advised; }
    size_t advised_bytes() const { return m_advised_bytes; }

private:
    int m_threads;
    size_t m_min_bytes;
    std::vector<Range> m_before;
    std::vector<Range> m_advised;
    size_t m_advised_bytes = 0;
    bool m_done = false;
};

}  // namespace mc::llm::huge_pages
