//! AFL++ target: [`sited_fuzz::rtsp_request`] (`cargo afl build`, then `cargo afl fuzz`: see `make fuzz`).

fn main() {
    afl::fuzz!(|data: &[u8]| sited_fuzz::rtsp_request(data));
}
