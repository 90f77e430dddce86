#pragma once

// Work an event-loop thread runs once it has handled everything that was
// ready: the moment Redis writes its append-only file before it answers, so
// that one write serves every request of the round.
//
// The HTTP server's I/O threads run rounds: while one of them handles a
// request, DeferToEndOfRound schedules a task to run on that same thread
// after the requests ready now (each task once per round, however often it
// was deferred). Elsewhere it does nothing and says so, and the caller does
// the work its usual way.

namespace catchall {

class RoundTask {
 public:
  virtual ~RoundTask() = default;
  // Runs on the I/O thread (or, at shutdown, on the thread stopping the
  // server). It must not block for long: the thread's connections wait.
  virtual void RunAtEndOfRound() = 0;

 protected:
  RoundTask() = default;
  RoundTask(const RoundTask&) = default;
  RoundTask& operator=(const RoundTask&) = default;
};

// Returns true if the calling thread runs rounds; `task` then runs at the end
// of the current one, and must outlive it. Returns false otherwise.
bool DeferToEndOfRound(RoundTask* task);

}  // namespace catchall
