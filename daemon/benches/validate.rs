//! Validation cost, side by side with a plain TOML parse of the same file, in one run.
//!
//! Usage: `cargo bench -p sited --bench validate -- FILE [ITERATIONS]`. Prints the median and
//! p90 of each, and their ratio: what checking a site costs over reading it.

use std::time::{Duration, Instant};

fn measure(iterations: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    f();
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[iterations / 2], times[iterations * 9 / 10])
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(path) = args.first() else {
        eprintln!("usage: validate FILE [ITERATIONS]");
        std::process::exit(2);
    };
    let iterations = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(50);
    let text = std::fs::read_to_string(path).expect("read site file");
    let checked = sited::plan::check(&text, sited::config::Options::default());
    assert!(!checked.has_errors(), "the benchmark site must be valid");

    let (parse_p50, parse_p90) = measure(iterations, || {
        let table: toml::Table = toml::from_str(&text).expect("parse");
        std::hint::black_box(table);
    });
    let (check_p50, check_p90) = measure(iterations, || {
        let c = sited::plan::check(&text, sited::config::Options::default());
        std::hint::black_box(c);
    });
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "file: {path} ({} bytes), {iterations} iterations",
        text.len()
    );
    println!(
        "plain TOML parse   p50 {:8.2} ms   p90 {:8.2} ms",
        ms(parse_p50),
        ms(parse_p90)
    );
    println!(
        "sited validation   p50 {:8.2} ms   p90 {:8.2} ms",
        ms(check_p50),
        ms(check_p90)
    );
    println!(
        "ratio validate/parse (p50): {:.2}x",
        ms(check_p50) / ms(parse_p50)
    );
}
