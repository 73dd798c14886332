// Runs the fuzz target over files and folders given on the command line (a regression run of the
// corpus without libFuzzer, for compilers that lack it). Also feeds every truncation and a set of
// single-byte corruptions of each file, so the decoder's error paths run in every build.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void RunOne(const std::string& bytes) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

size_t RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() > (1 << 20)) bytes.resize(1 << 20);
  size_t runs = 0;
  RunOne(bytes);
  ++runs;
  // Truncations (every byte for small files, a stride for large ones).
  size_t stride = bytes.size() < 4096 ? 1 : bytes.size() / 4096;
  for (size_t n = 0; n < bytes.size(); n += stride, ++runs) RunOne(bytes.substr(0, n));
  // Deterministic single-byte corruptions.
  uint64_t state = 0x9e3779b97f4a7c15ULL ^ bytes.size();
  for (int i = 0; i < 2000 && !bytes.empty(); ++i, ++runs) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    std::string mutated = bytes;
    mutated[(state >> 17) % mutated.size()] ^= static_cast<char>(1 + (state >> 40) % 255);
    RunOne(mutated);
  }
  return runs;
}

}  // namespace

int main(int argc, char** argv) {
  size_t files = 0, runs = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path arg(argv[i]);
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg)) {
        if (!entry.is_regular_file() || entry.path().extension() == ".md" ||
            entry.path().extension() == ".gz") {
          continue;
        }
        runs += RunFile(entry.path());
        ++files;
      }
    } else {
      runs += RunFile(arg);
      ++files;
    }
  }
  std::printf("fuzz replay: %zu files, %zu inputs, no crash\n", files, runs);
  return files > 0 ? 0 : 1;
}
