#include "support/threads.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace catchall::testing {

std::vector<std::string> NamesOfOtherThreads(pid_t pid) {
  const std::string process = pid == 0 ? std::string("self") : std::to_string(pid);
  const std::string main_task = std::filesystem::canonical("/proc/" + process).filename();
  std::vector<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + process + "/task")) {
    if (task.path().filename() == main_task) continue;
    std::string comm;
    std::getline(std::ifstream(task.path() / "comm"), comm);
    names.push_back(comm);
  }
  return names;
}

std::vector<int> NiceOfThreads(const std::string& name, pid_t pid) {
  std::vector<int> nice;
  const std::string tasks =
      pid == 0 ? std::string("/proc/self/task") : "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::string comm;
    std::getline(std::ifstream(task.path() / "comm"), comm);
    if (comm != name) continue;
    std::string stat;
    std::getline(std::ifstream(task.path() / "stat"), stat);
    // Fields after the ")" that ends the name: state is field 3, nice 19.
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 19 && rest >> field; ++i) {
    }
    nice.push_back(std::stoi(field));
  }
  return nice;
}

}  // namespace catchall::testing
