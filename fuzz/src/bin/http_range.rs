//! AFL++ target: [`sited_fuzz::http_range`] (`cargo afl build`, then `cargo afl fuzz`: see `make fuzz`).

fn main() {
    afl::fuzz!(|data: &[u8]| sited_fuzz::http_range(data));
}
