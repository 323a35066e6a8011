//! `proxy-injector`: arguments in, dispatch to the CLI; nothing else.

use clap::Parser;

fn main() {
    let cli = proxy_injector::cli::Cli::parse();
    let out = proxy_injector::cli::run(cli, &mut std::io::stdin().lock());
    std::process::exit(proxy_injector::cli::emit(&out));
}
