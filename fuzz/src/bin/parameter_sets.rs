//! AFL++ target: [`sited_fuzz::parameter_sets`] (`cargo afl build`, then `cargo afl fuzz`: see `make fuzz`).

fn main() {
    afl::fuzz!(|data: &[u8]| sited_fuzz::parameter_sets(data));
}
