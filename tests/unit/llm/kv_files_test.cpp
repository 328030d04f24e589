// llm::kv_files: the saved KV states stay within their byte budget, least recently used first.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "llm/kv_files.hpp"

namespace mc::llm {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, size_t bytes, int age_s) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << std::string(bytes, 'k');
    fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::seconds(age_s));
}

class KvFiles : public ::testing::Test {
protected:
    void SetUp() override {
        dir = fs::temp_directory_path() / ("mc-kv-" + std::to_string(::getpid()) + "-" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir);
    }
    void TearDown() override { fs::remove_all(dir); }
    fs::path dir;
};

// Regression (issue 9, item 10): one state file per chat, never removed (~1 GiB each for an 8B model).
TEST_F(KvFiles, TheLeastRecentlyUsedStatesGoFirstAndTheNewestStays) {
    write(dir / "model-a-2048" / "old.state", 400, 300);
    write(dir / "model-a-2048" / "mid.state", 400, 200);
    write(dir / "model-b-4096" / "other.state", 400, 250);
    write(dir / "model-a-2048" / "new.state", 400, 0);
    write(dir / "model-a-2048" / "cut.state.tmp", 999, 100);  // A write cut off by a crash.
    const auto r = kv_files::enforce_budget(dir.string(), 900, (dir / "model-a-2048" / "new.state").string());
    EXPECT_EQ(r.removed_files, 2);
    EXPECT_EQ(r.kept_bytes, 800u);
    EXPECT_FALSE(fs::exists(dir / "model-a-2048" / "old.state"));
    EXPECT_FALSE(fs::exists(dir / "model-b-4096"));  // Emptied folder of another model is removed.
    EXPECT_TRUE(fs::exists(dir / "model-a-2048" / "mid.state"));
    EXPECT_TRUE(fs::exists(dir / "model-a-2048" / "new.state"));
    EXPECT_FALSE(fs::exists(dir / "model-a-2048" / "cut.state.tmp"));
}

TEST_F(KvFiles, TheFileJustWrittenIsKeptEvenOverBudgetAndTouchingKeepsAFile) {
    write(dir / "m" / "a.state", 500, 100);
    write(dir / "m" / "b.state", 500, 50);
    kv_files::touch((dir / "m" / "a.state").string());  // a was just restored: now the most recent.
    auto r = kv_files::enforce_budget(dir.string(), 600, (dir / "m" / "c.state").string());
    EXPECT_EQ(r.removed_files, 1);
    EXPECT_TRUE(fs::exists(dir / "m" / "a.state"));
    EXPECT_FALSE(fs::exists(dir / "m" / "b.state"));
    r = kv_files::enforce_budget(dir.string(), 0, (dir / "m" / "a.state").string());
    EXPECT_TRUE(fs::exists(dir / "m" / "a.state"));
    EXPECT_EQ(r.kept_bytes, 500u);
}

}  // namespace
}  // namespace mc::llm
