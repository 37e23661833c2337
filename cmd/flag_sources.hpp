// Where kvpaxosd's and kvctl's flags come from besides the command line:
// environment variables (KVPAXOS_CLIENT_ADDR for --client-addr) and, for
// kvpaxosd, a TOML file (--config-file). The command line wins over the
// environment, which wins over the file (CLI11's order), so a unit file's
// EnvironmentFile or a one-off flag can override a shared config file.
#pragma once

#include <CLI/CLI.hpp>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>

namespace kvpaxos {

// "client-addr" -> "KVPAXOS_CLIENT_ADDR" for prefix "KVPAXOS".
inline std::string env_name_of(const std::string& prefix, const std::string& long_name) {
  std::string name = prefix + "_";
  for (const char c : long_name) {
    name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

// Every long option of `app` itself (not of its subcommands, not positional
// arguments) also reads PREFIX_NAME when the command line does not give it.
// `skip` names options that must come from the command line (--help, and
// anything that only makes sense typed).
inline void read_flags_from_environment(CLI::App& app, const std::string& prefix,
                                        const std::set<std::string>& skip) {
  for (CLI::Option* option : app.get_options()) {
    if (option->get_lnames().empty()) continue;
    const std::string& name = option->get_lnames().front();
    if (skip.count(name) > 0 || !option->get_envname().empty()) continue;
    option->envname(env_name_of(prefix, name));
  }
}

// CLI11 (2.1) reads the config file before the environment, so its option
// never sees PREFIX_CONFIG_FILE by itself: this makes the variable's file the
// option's default when the command line names none. Returns what is wrong
// with the variable (a file that cannot be read), or nothing.
inline std::optional<std::string> read_config_file_from_environment(CLI::App& app,
                                                                    const std::string& prefix) {
  CLI::Option* config = app.get_config_ptr();
  if (config == nullptr || config->get_lnames().empty()) return std::nullopt;
  const std::string variable = env_name_of(prefix, config->get_lnames().front());
  const char* file = std::getenv(variable.c_str());
  if (file == nullptr || *file == '\0') return std::nullopt;
  if (!std::ifstream(file)) {
    return variable + "=" + file + " names no readable file; fix the path or unset it";
  }
  config->default_str(file);
  return std::nullopt;
}

// A parse error in words that say which source was wrong. CLI11 reports a
// key of the config file that names no flag as "INI was not able to parse
// KEY".
inline std::string describe_parse_error(const CLI::ParseError& e, const std::string& config_file) {
  if (e.get_name() != "ConfigError") return e.what();
  std::string what = e.what();
  const std::string unknown = "INI was not able to parse ";
  if (what.rfind(unknown, 0) == 0) what = "unknown key '" + what.substr(unknown.size()) + "'";
  return "--config-file " + config_file + ": " + what +
         " (its keys are the long flag names without the dashes, e.g. client-addr = "
         "\"127.0.0.1:7201\"; --dump-config prints them all)";
}

// The flags in effect as a TOML --config-file, with their help as comments.
// A flag that is off or a text that is empty is written commented out: read
// back, `join=false` would still count as given (and clash with the flags
// --join excludes), and `data-dir=""` would ask for an empty directory.
inline std::string dump_config(const CLI::App& app) {
  std::istringstream lines(app.config_to_str(/*default_also=*/true, /*write_description=*/true));
  std::string out;
  for (std::string line; std::getline(lines, line);) {
    const bool unset = line.ends_with("=false") || line.ends_with("=\"\"");
    out += (unset && line.front() != '#' ? "# " : "") + line + "\n";
  }
  return out;
}

}  // namespace kvpaxos
