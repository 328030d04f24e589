// Runs a fuzz target over files (its seed corpus and saved findings) without libFuzzer, so the
// normal g++ build and ctest replay the corpus on every run.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
    int files = 0;
    for (int a = 1; a < argc; ++a) {
        std::vector<std::filesystem::path> paths;
        if (std::filesystem::is_directory(argv[a])) {
            for (const auto& e : std::filesystem::recursive_directory_iterator(argv[a])) {
                if (e.is_regular_file()) paths.push_back(e.path());
            }
        } else {
            paths.emplace_back(argv[a]);
        }
        for (const auto& p : paths) {
            std::ifstream in(p, std::ios::binary);
            const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
            ++files;
        }
    }
    std::printf("replayed %d inputs\n", files);
    return files > 0 ? 0 : 1;
}
