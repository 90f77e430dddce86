#include "support/api_keys.h"

#include <gtest/gtest.h>
#include <stdio.h>

#include "support/server_process.h"

namespace catchall::testing {

std::string KeyFileLine(const std::string& key, const std::string& scopes) {
  // The key goes through the shell quoted; test keys have no quote in them.
  EXPECT_EQ(key.find('\''), std::string::npos) << key;
  std::string cmd = "printf %s '" + key + "' | '" + ServerProcess::BinaryPath() +
                    "' keys hash --scopes " + scopes;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << cmd;
    return {};
  }
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) out += buf;
  int rc = pclose(pipe);
  EXPECT_EQ(rc, 0) << cmd << ": " << out;
  return out;
}

std::map<std::string, std::string> Bearer(const std::string& key) {
  return {{"Authorization", "Bearer " + key}};
}

}  // namespace catchall::testing
