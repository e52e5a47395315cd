// One subcommand of the `tinygrok` program: it declares its flags on a CLI11 subcommand and, when
// that subcommand is the one given, runs. Each command lives in its own file beside this one;
// grok/main.cpp only lists them.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

namespace tg::grok::cli {

class Command {
 public:
  virtual ~Command() = default;
  virtual CLI::App* app() const = 0;  // the subcommand, for "was it given?"
  virtual int run() = 0;              // the process exit code; errors throw tg::Error
};

std::unique_ptr<Command> make_train_command(CLI::App& parent);
std::unique_ptr<Command> make_eval_command(CLI::App& parent);
std::unique_ptr<Command> make_sweep_command(CLI::App& parent);
std::unique_ptr<Command> make_analyze_command(CLI::App& parent);

}  // namespace tg::grok::cli
