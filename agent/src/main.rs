//! The `kairos` command-line tool.

fn main() -> std::process::ExitCode {
    kairos_agent::cli::main()
}
