//! Story clustering cost per item with 100,000 stories in the window.
//!
//! Signatures are generated deterministically: each story draws ~25 terms
//! from a 20,000-word vocabulary (Zipf-like, so some words are common) plus
//! two or three entity terms from a pool of 400. The measured step is
//! `StoryIndex::assign` for a fresh item that either paraphrases an existing
//! story (half of them) or is new.

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use newswatch::stories::StoryIndex;

use support::SplitMix64 as Rng;

trait Words {
    fn word(&mut self) -> u64;
}

impl Words for Rng {
    /// A word index skewed towards small numbers (common words).
    fn word(&mut self) -> u64 {
        let u = (self.next_u64() % 1_000_000) as f64 / 1_000_000.0;
        (20_000f64.powf(u)) as u64
    }
}

fn signature(rng: &mut Rng) -> Vec<String> {
    let mut terms: Vec<String> = (0..25).map(|_| format!("w{}", rng.word())).collect();
    for _ in 0..(2 + rng.next_u64() % 2) {
        terms.push(format!("@e{}", rng.next_u64() % 400));
    }
    terms.sort();
    terms.dedup();
    terms
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(42);
    let window = 48 * 3600;
    let mut index = StoryIndex::new(window);
    let mut stories = Vec::with_capacity(100_000);
    for i in 0..100_000 {
        let terms = signature(&mut rng);
        index.assign(&terms, i as i64);
        stories.push(terms);
    }
    let now = 100_000;
    // Items to assign: paraphrases (most terms of a story kept) and new ones.
    let items: Vec<Vec<String>> = (0..10_000)
        .map(|i| {
            if i % 2 == 0 {
                let base = &stories[(rng.next_u64() % stories.len() as u64) as usize];
                let mut t: Vec<String> = base
                    .iter()
                    .filter(|_| !rng.next_u64().is_multiple_of(4))
                    .cloned()
                    .collect();
                t.push(format!("w{}", rng.word()));
                t.sort();
                t.dedup();
                t
            } else {
                signature(&mut rng)
            }
        })
        .collect();
    println!("stories in the window: {}", index.len());
    let mut group = c.benchmark_group("stories");
    group.sample_size(10);
    group.throughput(Throughput::Elements(items.len() as u64));
    group.bench_function("assign_10k_items_100k_window", |b| {
        b.iter_batched(
            || {
                // Each sample works on its own copy so the window stays at 100k.
                let mut copy = StoryIndex::new(window);
                for (i, s) in stories.iter().enumerate() {
                    copy.restore(format!("s{i}"), s.clone(), now);
                }
                copy
            },
            |mut idx| {
                for t in &items {
                    std::hint::black_box(idx.assign(t, now));
                }
                idx
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
