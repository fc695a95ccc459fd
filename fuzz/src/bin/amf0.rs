//! AFL++ target: [`sited_fuzz::amf0`] (`cargo afl build`, then `cargo afl fuzz`: see `make fuzz`).

fn main() {
    afl::fuzz!(|data: &[u8]| sited_fuzz::amf0(data));
}
