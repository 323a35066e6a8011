//! `proxy-injector`: arguments in, dispatch to the CLI or the webhook; nothing else.

use proxy_injector::cli::Command;

/// Both front-ends allocate and free many small JSON values per document or review; glibc's
/// malloc spent about a third of `inject --manual`'s time on them (BENCHMARKS.md §2c).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match proxy_injector::cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1, as Linkerd's CLI does; --help and --version exit 0.
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    if let Command::Webhook(args) = cli.command {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("Error: starting the async runtime: {e}");
                std::process::exit(1);
            }
        };
        if let Err(e) = runtime.block_on(proxy_injector::webhook::run(*args)) {
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let out = proxy_injector::cli::run(cli, &mut std::io::stdin().lock());
    std::process::exit(proxy_injector::cli::emit(&out));
}
