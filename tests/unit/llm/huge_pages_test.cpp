// Weights in 2 MiB pages (llm/huge_pages): which mappings count, and that the kernel backs the
// advised ones with huge pages.
#include "llm/huge_pages.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>

#include <cstring>

namespace mc::llm::huge_pages {
namespace {

TEST(HugePages, OnlyLargePrivateAnonymousWritableMappingsCount) {
    const std::string maps =
        "555555554000-555555600000 r-xp 00000000 fd:01 1234   /usr/bin/mycandy\n"
        "555557000000-55555b000000 rw-p 00000000 00:00 0      [heap]\n"
        "7f0000000000-7f0004000000 rw-p 00000000 00:00 0 \n"   // 64 MiB, anonymous: counts.
        "7f0004000000-7f0008000000 rw-s 00000000 00:01 77     /dev/zero (deleted)\n"
        "7f0008000000-7f000c000000 r--p 00000000 fd:01 99     /models/m.gguf\n"
        "7f000c000000-7f0010000000 ---p 00000000 00:00 0\n"     // Reserved, not writable.
        "7f0010000000-7f0010800000 rw-p 00000000 00:00 0\n"     // 8 MiB (a thread's stack): too small.
        "7f0020000000-7f0030000000 rw-p 00000000 00:00 0\n"     // 256 MiB, no trailing space: counts.
        "7ffd00000000-7ffd04000000 rw-p 00000000 00:00 0      [stack]\n";
    const auto r = anonymous_mappings(size_t(32) << 20, maps);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].begin, 0x7f0000000000u);
    EXPECT_EQ(r[0].size(), size_t(64) << 20);
    EXPECT_EQ(r[1].begin, 0x7f0020000000u);
    EXPECT_EQ(r[1].size(), size_t(256) << 20);
}

// A buffer allocated during the load (between WeightPages' start and the first progress call) is
// advised, and once written the kernel backs it with huge pages; one that existed before is not.
TEST(HugePages, ABufferAllocatedDuringTheLoadGetsHugePagesOnceWritten) {
    const std::string mode = kernel_mode();
    if (mode != "madvise" && mode != "always") GTEST_SKIP() << "transparent huge pages are '" << mode << "' here";
    constexpr size_t kSize = size_t(64) << 20;
    void* before = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(before, MAP_FAILED);
    WeightPages pages;
    void* during = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(during, MAP_FAILED);
    pages.on_progress();
    pages.on_progress();  // Only the first call advises.
    ASSERT_EQ(pages.advised().size(), 1u);
    EXPECT_EQ(pages.advised()[0].begin, reinterpret_cast<uintptr_t>(during));
    EXPECT_GE(pages.advised_bytes(), kSize - (size_t(2) << 20));  // Its 2 MiB-aligned part.
    std::memset(during, 1, kSize);  // As the loader reads the weights in.
    EXPECT_GE(huge_bytes(pages.advised()), kSize / 2);
    munmap(during, kSize);
    munmap(before, kSize);
}

// A malloc arena's heap grows in place (its writable part extended by mprotect): it began before
// the load and is no weight buffer, however large it grew.
TEST(HugePages, AMappingThatOnlyGrewDuringTheLoadIsNotAdvised) {
    constexpr size_t kReserved = size_t(64) << 20;
    char* heap = static_cast<char*>(mmap(nullptr, kReserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    ASSERT_NE(heap, MAP_FAILED);
    ASSERT_EQ(mprotect(heap, size_t(1) << 20, PROT_READ | PROT_WRITE), 0);
    WeightPages pages;
    ASSERT_EQ(mprotect(heap, size_t(48) << 20, PROT_READ | PROT_WRITE), 0);
    pages.on_progress();
    EXPECT_TRUE(pages.advised().empty()) << pages.advised().size() << " advised, the first at " << pages.advised()[0].begin;
    munmap(heap, kReserved);
}

}  // namespace
}  // namespace mc::llm::huge_pages
