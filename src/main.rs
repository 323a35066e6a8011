//! `proxy-injector`: arguments in, dispatch to the CLI; nothing else.

use clap::Parser;

fn main() {
    let cli = match proxy_injector::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1, as Linkerd's CLI does; --help and --version exit 0.
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let out = proxy_injector::cli::run(cli, &mut std::io::stdin().lock());
    std::process::exit(proxy_injector::cli::emit(&out));
}
