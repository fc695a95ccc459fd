//! AFL++ target: [`sited_fuzz::site_file`] (`cargo afl build`, then `cargo afl fuzz`: see `make fuzz`).

fn main() {
    afl::fuzz!(|data: &[u8]| sited_fuzz::site_file(data));
}
