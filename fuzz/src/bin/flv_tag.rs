//! AFL++ target: [`sited_fuzz::flv_tag`] (`cargo afl build`, then `cargo afl fuzz`: see `make fuzz`).

fn main() {
    afl::fuzz!(|data: &[u8]| sited_fuzz::flv_tag(data));
}
