//! The `weir` binary: parses the command line and hands over to [`weir::cli`].

/// jemalloc for the whole process, librdkafka's C allocations included (the
/// `malloc`/`free` symbols are jemalloc's): with glibc's allocator, malloc
/// and free took a quarter of a window job's CPU samples, mostly librdkafka
/// freeing on one thread what it allocated on another; with jemalloc about
/// 7 %.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options (its `malloc_conf` symbol, read at the first
/// allocation; `MALLOC_CONF` in the environment still overrides them): a
/// background thread returns freed pages to the OS after 1 s
/// (`dirty_decay_ms`), at once for lazily freed ones (`muzzy_decay_ms`), so
/// the resident size follows the live heap instead of its peak.
#[export_name = "malloc_conf"]
pub static MALLOC_CONF: &[u8; 60] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() {
    std::process::exit(weir::cli::main());
}
