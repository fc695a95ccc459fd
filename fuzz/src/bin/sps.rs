//! AFL++ target: [`sited_fuzz::sps`] (`cargo afl build`, then `cargo afl fuzz`: see `make fuzz`).

fn main() {
    afl::fuzz!(|data: &[u8]| sited_fuzz::sps(data));
}
