// The runs of a sweep: planning each run directory, starting `tinygrok train` children (fork and
// exec), waiting for them, reading what they left, and passing Ctrl-C on.
#include "grok/sweep/runner.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/strict_json.h"
#include "grok/run_lock.h"

namespace tg::grok::sweep {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::atomic<bool> stop_requested{false};
extern "C" void on_stop_signal(int) { stop_requested = true; }

// config.json's form of a configuration, without the thread count and the fields the run ignores
// (an older sweep passed --layers 3 to an mlp run, and its config.json says so).
json comparable(TrainConfig config) {
  config.threads = 0;
  json fields = to_json(config);
  for (auto it = fields.begin(); it != fields.end();)
    it = why_field_has_no_effect(config, it.key()).empty() ? std::next(it) : fields.erase(it);
  return fields;
}

enum class ConfigMatch { Same, Different, Unreadable };

ConfigMatch compare_config(const fs::path& run_dir, const TrainConfig& config) {
  std::ifstream in(run_dir / "config.json");
  if (!in.good()) return ConfigMatch::Unreadable;
  try {
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const json saved = parse_json_refusing_repeated_keys<json>(text, "");
    return comparable(config_from_json(saved)) == comparable(config) ? ConfigMatch::Same
                                                                      : ConfigMatch::Different;
  } catch (const std::exception&) {  // damaged, edited, or of a format this version cannot read
    return ConfigMatch::Unreadable;
  }
}

bool finished_summary(const fs::path& run_dir) {
  try {
    return finished(read_run_result(0, run_dir.string()).status);
  } catch (const Error&) {
    return false;
  }
}

// A running child.
struct Job {
  RunAction action = RunAction::Start;
  pid_t pid = -1;
  fs::path run_dir, log;  // log: where the child writes until it ends (see start())
};

const char* action_name(RunAction action) {
  switch (action) {
    case RunAction::Skip: return "skipped";
    case RunAction::Resume: return "resumed";
    case RunAction::Start: return "started";
    case RunAction::Redo: return "redone";
    case RunAction::Damaged: return "kept";
  }
  return "?";
}

// Starts `program args...` with stdin from /dev/null and stdout and stderr into `log`, in a
// process group of its own, so that only the sweep decides which signal it gets: mpirun, for one,
// ends a rank with SIGTERM to the rank's whole group, which would kill a run without its
// checkpoint. Should the sweep itself die, the child gets SIGINT (PR_SET_PDEATHSIG), checkpoints
// and stops rather than running on unowned.
pid_t spawn(const std::string& program, const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // Opened here, so that a failure is reported here; the child only moves them into place.
  const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  check(log_fd >= 0, "sweep: cannot write ", log.string(), ": ", std::strerror(errno));
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {  // the child: async-signal-safe calls only until exec
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGINT);
    if (getppid() != parent) _exit(130);  // the sweep died before prctl took effect
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execv(program.c_str(), argv.data());
    const char failed[] = "sweep: cannot run the tinygrok program (exec failed)\n";
    [[maybe_unused]] const ssize_t written = write(2, failed, sizeof failed - 1);
    _exit(127);
  }
  const int fork_error = errno;
  close(log_fd);
  if (null_fd >= 0) close(null_fd);
  check(pid > 0, "sweep: cannot start ", program, ": ", std::strerror(fork_error));
  setpgid(pid, pid);  // the child does the same: whichever runs first, no signal finds it between
  return pid;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A child writes its log beside its run directory (train --force would delete one inside it);
// when it ends, the log joins RUN/train.log after those of earlier attempts. Returns the log.
std::string move_log(const fs::path& log, const fs::path& run_dir) {
  const std::string text = read_text(log);
  fs::create_directories(run_dir);
  std::ofstream(run_dir / "train.log", std::ios::app) << text;
  fs::remove(log);
  return text;
}

// The last `count` lines of `text`, each indented, on lines of their own.
std::string last_lines(const std::string& text, size_t count) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string tail;
  for (size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); ++i)
    tail += "\n    " + lines[i];
  return tail;
}

std::string describe(const RunResult& r) {
  const json& v = r.values;
  if (r.status == "interrupted")
    return v.contains("steps") ? cat("interrupted at step ", v["steps"].dump(), "; it resumes "
                                     "from its checkpoint when the sweep runs again")
                               : std::string("interrupted before its first checkpoint; it starts "
                                             "again when the sweep runs again");
  std::string text = r.status;
  text += v.contains("T_g") ? cat(", T_g ", v["T_g"].dump()) : std::string(", did not grok");
  if (v.contains("T_m")) text += cat(" (T_m ", v["T_m"].dump(), ")");
  if (v.contains("test_acc")) {
    char acc[32];
    std::snprintf(acc, sizeof acc, "%.3f", v["test_acc"].get<double>());
    text += cat(", test acc ", acc);
  }
  if (v.contains("wall_seconds")) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f", v["wall_seconds"].get<double>());
    text += cat(", ", seconds, " s");
  }
  return text;
}

}  // namespace

RunAction plan_run(const std::string& run_dir, const TrainConfig& config) {
  const fs::path dir(run_dir);
  if (!fs::exists(dir)) return RunAction::Start;
  const bool checkpoint = fs::exists(dir / "checkpoint" / "model.safetensors");
  switch (compare_config(dir, config)) {
    case ConfigMatch::Different: return RunAction::Redo;
    case ConfigMatch::Unreadable:  // a run writes config.json first: this is damage, not a start
      return checkpoint || finished_summary(dir) ? RunAction::Damaged : RunAction::Redo;
    case ConfigMatch::Same: break;
  }
  if (finished_summary(dir)) return RunAction::Skip;
  return checkpoint ? RunAction::Resume : RunAction::Redo;
}

std::vector<RunResult> run_points(const SweepSpec& spec, const std::vector<GridPoint>& points,
                                  const std::string& runs_dir, const RunnerOptions& options,
                                  bool* interrupted) {
  fs::create_directories(runs_dir);
  std::vector<RunResult> results(points.size());
  std::deque<size_t> pending;
  size_t done = 0;
  auto report = [&](const std::string& line) {
    std::fprintf(stderr, "%ssweep: %s\n", options.prefix.c_str(), line.c_str());
  };
  for (size_t i = 0; i < points.size(); ++i) {
    results[i].index = points[i].index;
    const fs::path dir = fs::path(runs_dir) / points[i].name;
    // A directory another process writes is planned once it is free (below).
    if (!run_dir_in_use(dir.string()) &&
        plan_run(dir.string(), points[i].config) == RunAction::Skip) {
      results[i] = read_run_result(points[i].index, dir.string());
      results[i].action = action_name(RunAction::Skip);
      ++done;
      report(cat("[", done, "/", points.size(), "] ", points[i].name,
                 ": skipped, finished before: ", describe(results[i])));
    } else {
      pending.push_back(i);
    }
  }

  // The children have process groups of their own (see spawn): Ctrl-C at the terminal, kill or
  // mpirun reach the sweep alone, which passes SIGINT on below.
  stop_requested = false;
  struct sigaction stop {}, old_int {}, old_term {};
  stop.sa_handler = on_stop_signal;
  sigemptyset(&stop.sa_mask);
  sigaction(SIGINT, &stop, &old_int);
  sigaction(SIGTERM, &stop, &old_term);

  std::vector<std::pair<size_t, Job>> running;  // (index into points, job)
  std::set<size_t> told_waiting;  // pending points reported as waiting for their directory
  bool passed_on = false;
  auto finish = [&](size_t i, const Job& job, int wait_status) {
    const std::string log = move_log(job.log, job.run_dir);

    RunResult& r = results[i];
    r.action = action_name(job.action);
    const int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
    std::string why;
    try {
      if (code == 0 || code == 3 || code == 130) {
        r = read_run_result(points[i].index, job.run_dir.string());
        r.action = action_name(job.action);
      }
    } catch (const Error& e) {
      why = e.what();
    }
    const bool ended_well = why.empty() && ((code == 0 && (r.status == "completed" ||
                                                           r.status == "grokked")) ||
                                            (code == 3 && r.status == "nan_loss"));
    if (code == 130 || (WIFSIGNALED(wait_status) && stop_requested)) {
      r.status = "interrupted";
    } else if (!ended_well) {
      r.status = "failed";
      r.values = json::object();
      if (why.empty())
        why = WIFSIGNALED(wait_status) ? cat("killed by signal ", WTERMSIG(wait_status))
                                       : cat("exit code ", code);
    }
    ++done;
    if (r.status == "failed")
      report(cat("[", done, "/", points.size(), "] ", points[i].name, ": FAILED (", why,
                 "); the end of ", (job.run_dir / "train.log").string(), ":", last_lines(log, 8)));
    else
      report(cat("[", done, "/", points.size(), "] ", points[i].name, ": ", describe(r)));
  };

  while (!pending.empty() || !running.empty()) {
    if (stop_requested && !passed_on) {
      for (const auto& [i, job] : running) kill(job.pid, SIGINT);
      passed_on = true;
      if (!pending.empty())
        report(cat("interrupted: stopping the ", running.size(), " running run(s) at their next "
                   "step (they write a checkpoint); ", pending.size(), " not started"));
    }
    while (!stop_requested && !pending.empty() &&
           running.size() < static_cast<size_t>(std::max(1, options.workers))) {
      // The first pending point whose run directory no other process holds (RunLock): a run
      // that a killed sweep's SIGINT is still stopping, or another sweep's. Its point waits
      // rather than failing as "in use", and may then find the run finished.
      auto next = pending.begin();
      for (; next != pending.end(); ++next) {
        const fs::path dir = fs::path(runs_dir) / points[*next].name;
        if (!run_dir_in_use(dir.string())) break;
        if (told_waiting.insert(*next).second)
          report(cat(points[*next].name, ": waiting: another process is writing ", dir.string(),
                     " (a run still stopping after its sweep was killed, or another sweep)"));
      }
      if (next == pending.end()) break;
      const size_t i = *next;
      pending.erase(next);
      Job job;
      job.run_dir = fs::path(runs_dir) / points[i].name;
      job.log = fs::path(runs_dir) / ("." + points[i].name + ".train.log");
      if (fs::exists(job.log)) move_log(job.log, job.run_dir);  // left by a sweep that was killed
      job.action = plan_run(job.run_dir.string(), points[i].config);
      if (job.action == RunAction::Skip) {  // finished by whoever held it
        results[i] = read_run_result(points[i].index, job.run_dir.string());
        results[i].action = action_name(RunAction::Skip);
        ++done;
        report(cat("[", done, "/", points.size(), "] ", points[i].name,
                   ": skipped, finished by another process: ", describe(results[i])));
        continue;
      }
      if (job.action == RunAction::Damaged) {
        results[i].status = "failed";
        results[i].action = action_name(RunAction::Damaged);
        ++done;
        report(cat("[", done, "/", points.size(), "] ", points[i].name, ": FAILED (",
                   (job.run_dir / "config.json").string(), " is missing or cannot be read, beside "
                   "the run's checkpoint or summary: left as it is; repair it, or remove ",
                   job.run_dir.string(), " to run this point again)"));
        continue;
      }
      std::vector<std::string> args{"train"};
      if (job.action == RunAction::Resume) {
        args.insert(args.end(), {"--resume", job.run_dir.string(), "--threads",
                                 std::to_string(points[i].config.threads)});
      } else {
        const std::vector<std::string> flags = train_arguments(spec, points[i]);
        args.insert(args.end(), flags.begin(), flags.end());
        args.insert(args.end(), {"--out", job.run_dir.string()});
        if (job.action == RunAction::Redo) args.push_back("--force");
      }
      args.push_back("--quiet");
      try {
        job.pid = spawn(options.program, args, job.log);
      } catch (const Error& e) {  // this run failed; the others may still start
        results[i].status = "failed";
        ++done;
        report(cat("[", done, "/", points.size(), "] ", points[i].name, ": FAILED (", e.what(),
                   ")"));
        continue;
      }
      report(cat(points[i].name, ": ",
                 job.action == RunAction::Resume ? "resuming from its checkpoint"
                 : job.action == RunAction::Redo ? "starting again (the directory held a partial "
                                                   "or different run)"
                                                 : "starting"));
      running.emplace_back(i, std::move(job));
    }
    if (running.empty()) {
      if (stop_requested || pending.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // every pending run is held
      continue;
    }
    // Polling keeps Ctrl-C prompt without races between the signal and a blocking wait.
    int wait_status = 0;
    const pid_t pid = waitpid(-1, &wait_status, WNOHANG);
    if (pid <= 0) {
      check(pid == 0 || errno == EINTR, "sweep: waitpid: ", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    for (size_t r = 0; r < running.size(); ++r)
      if (running[r].second.pid == pid) {
        finish(running[r].first, running[r].second, wait_status);
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(r));
        break;
      }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  *interrupted = stop_requested;
  return results;
}

}  // namespace tg::grok::sweep
