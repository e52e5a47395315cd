// tinygrok: the command line. Each subcommand is a file in grok/cli/: `train` runs a grokking
// experiment from a preset plus flags; `eval CHECKPOINT` prints a checkpoint's loss and accuracy;
// `analyze RUN` measures what a run did; `sweep SPEC` runs a grid of runs.
#include <cstdio>
#include <exception>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "grok/cli/command.h"

namespace {

// CLI11's "--p: At Most 1 required but received 2" (a flag given twice) and "--betas: At least
// 2 required but received 1" in the words of the rest of tinygrok's errors; others as they are.
// (Read word by word: std::regex makes GCC 12 warn inside libstdc++ in the sanitizer build.)
std::string parse_error_text(const CLI::Error& e) {
  const std::string what = e.what();
  std::istringstream words(what);
  std::string option, at, bound, takes, required, but, received, got, more;
  words >> option >> at >> bound >> takes >> required >> but >> received >> got;
  const auto is_count = [](const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!words || (words >> more) || option.size() < 2 || option.back() != ':' || at != "At" ||
      (bound != "Most" && bound != "least") || !is_count(takes) || required != "required" ||
      but != "but" || received != "received" || !is_count(got))
    return what;
  option.pop_back();
  if (takes == "1" && bound == "Most")
    return option + " is given " + (got == "2" ? "twice" : got + " times") + ": give it once";
  return option + " takes " + takes + (takes == "1" ? " value" : " values") + ", got " + got;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tg::grok::cli;
  CLI::App app{"tinygrok: watch a network memorise modular arithmetic, then generalise"};
  app.require_subcommand(1);
  // One line, like every other error of tinygrok (CLI11's default adds a second).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "tinygrok: " + parse_error_text(e) + " (see --help)\n";
  });
  std::vector<std::unique_ptr<Command>> commands;
  commands.push_back(make_train_command(app));
  commands.push_back(make_eval_command(app));
  commands.push_back(make_sweep_command(app));
  commands.push_back(make_analyze_command(app));

  // A word where the subcommand goes that is none of them: say so, rather than CLI11's "a
  // subcommand is required".
  const auto is_command = [&](const char* word) {
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      if (sub->check_name(word)) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
    std::fprintf(stderr,
                 "tinygrok: unknown command '%s' (train, eval, sweep, analyze; see --help)\n",
                 argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0 through here; a malformed flag exits 2, as every other bad input does
    // (CLI11's own codes, 104 to 114, would say nothing more).
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    for (const auto& command : commands)
      if (command->app()->parsed()) return command->run();
    return 1;  // unreachable: CLI11 requires one subcommand
  } catch (const std::exception& e) {  // tg::Error and the rest: one line, exit code 2
    std::fprintf(stderr, "tinygrok: %s\n", e.what());
    return 2;
  }
}
