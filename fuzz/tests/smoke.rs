//! The CI smoke of every fuzz target: its corpus (the seeds and what fuzzing found worth
//! keeping), then mutations of it for a moment each. AFL++ itself runs under `make fuzz`.

use std::time::{Duration, Instant};

/// How long each target is mutated for.
const BUDGET: Duration = Duration::from_millis(1500);

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut all: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    all.sort();
    assert!(!all.is_empty(), "{}: no seed", dir.display());
    all
}

/// A mutation of `input`: flipped bits, changed, inserted and removed bytes, and splices.
fn mutate(input: &[u8], other: &[u8], seed: &mut u64) -> Vec<u8> {
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    let mut out = input.to_vec();
    for _ in 0..=next() % 4 {
        let at = if out.is_empty() {
            0
        } else {
            (next() as usize) % out.len()
        };
        match next() % 6 {
            0 if !out.is_empty() => out[at] ^= 1 << (next() % 8),
            1 if !out.is_empty() => {
                out[at] = [0, 0xff, 0x7f, 0x80, b'-', b'"'][(next() % 6) as usize]
            }
            2 => out.insert(at, next() as u8),
            3 if !out.is_empty() => {
                out.remove(at);
            }
            4 if !other.is_empty() => {
                let from = (next() as usize) % other.len();
                out.splice(at..at, other[from..].iter().take(64).copied());
            }
            _ => out.truncate(at),
        }
    }
    out
}

#[test]
fn every_target_survives_its_corpus_and_mutations_of_it() {
    for (name, target) in sited_fuzz::TARGETS {
        let seeds = corpus(name);
        for s in &seeds {
            target(s);
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let started = Instant::now();
        let mut runs = 0u64;
        while started.elapsed() < BUDGET {
            let a = &seeds[runs as usize % seeds.len()];
            let b = &seeds[(runs as usize / 7) % seeds.len()];
            target(&mutate(a, b, &mut seed));
            runs += 1;
        }
        eprintln!("{name}: {} seeds, {runs} mutations", seeds.len());
    }
}
