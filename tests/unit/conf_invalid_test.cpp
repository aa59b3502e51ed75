// Every file in conf_invalid/ is one broken config; it must fail with exactly the problems its `# expect:` lines name.
//
// Header format, one line per expected problem:
//   # expect: LINE: FRAGMENT
// The load must throw config_error with as many problems as expect lines, and
// for each line a problem reported at LINE whose "FILE:LINE: key 'KEY': MESSAGE"
// text contains FRAGMENT.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "conf/config.hpp"

namespace pgsluice::test {
namespace {

namespace fs = std::filesystem;

const fs::path corpus_dir = fs::path(PGSLUICE_SOURCE_DIR) / "tests/unit/conf_invalid";

struct expectation {
  std::uint32_t line;
  std::string fragment;
};

std::vector<expectation> read_expectations(const fs::path& file) {
  std::vector<expectation> out;
  std::ifstream in(file);
  std::string text;
  const std::string marker = "# expect: ";
  while (std::getline(in, text)) {
    if (!text.starts_with(marker)) continue;
    const std::string rest = text.substr(marker.size());
    const auto colon = rest.find(": ");
    if (colon == std::string::npos) continue;
    out.push_back({static_cast<std::uint32_t>(std::stoul(rest.substr(0, colon))), rest.substr(colon + 2)});
  }
  return out;
}

std::vector<fs::path> corpus() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(corpus_dir)) {
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class invalid_config : public ::testing::TestWithParam<fs::path> {};

TEST_P(invalid_config, fails_naming_key_and_line) {
  const fs::path file = GetParam();
  const auto expected = read_expectations(file);
  ASSERT_FALSE(expected.empty()) << file << " has no '# expect: LINE: FRAGMENT' line";
  try {
    conf::load_config(file);
    FAIL() << file << " loaded, but should have failed";
  } catch (const conf::config_error& e) {
    const auto& problems = e.problems();
    EXPECT_EQ(problems.size(), expected.size()) << "problems reported:\n" << e.what();
    for (const auto& want : expected) {
      bool found = false;
      for (const auto& p : problems) {
        const std::string text = p.to_string();
        EXPECT_TRUE(text.starts_with(file.string() + ":")) << text;
        if (p.line == want.line && text.find(want.fragment) != std::string::npos) found = true;
      }
      EXPECT_TRUE(found) << "expected at line " << want.line << ": " << want.fragment << "\nreported:\n" << e.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(corpus, invalid_config, ::testing::ValuesIn(corpus()),
                         [](const ::testing::TestParamInfo<fs::path>& info) { return info.param.stem().string(); });

TEST(invalid_config_corpus, is_not_empty) { EXPECT_GE(corpus().size(), 40u); }

}  // namespace
}  // namespace pgsluice::test
