#include "engine/this_thread.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace catchall {

void NameThisThread(std::string_view name) {
  std::string cut(name.substr(0, kMaxThreadNameLength));
  // Cannot fail once the name fits: the only other error is a bad thread id.
  ::pthread_setname_np(::pthread_self(), cut.c_str());
}

Status LowerThisThreadsPriority() {
  // setpriority with a thread id changes that thread alone on Linux.
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19) != 0) {
    return Status::IoError(std::generic_category().message(errno));
  }
  return Status::Ok();
}

}  // namespace catchall
