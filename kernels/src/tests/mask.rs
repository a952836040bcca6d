//! Mask kernels: bit-exact against naive per-token code, for every kernel
//! set, vocabulary sizes that are and are not multiples of 32 (and of 8,
//! the AVX2 lane count), masks shorter and longer than the vocabulary, and
//! logits containing NaN, ±inf and signed zeros.

use super::*;
use crate::scalar::{count_allowed, AllowedTokens};
use proptest::prelude::*;

fn allowed(mask: &[u32], i: usize) -> bool {
    mask.get(i / 32).is_some_and(|w| (w >> (i % 32)) & 1 == 1)
}

fn naive_apply(logits: &mut [f32], mask: &[u32]) {
    for (i, l) in logits.iter_mut().enumerate() {
        if !allowed(mask, i) {
            *l = f32::NEG_INFINITY;
        }
    }
}

fn naive_argmax(logits: &[f32], mask: &[u32]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &v) in logits.iter().enumerate() {
        if allowed(mask, i) && !v.is_nan() && best.is_none_or(|b| v > logits[b]) {
            best = Some(i);
        }
    }
    best
}

/// A mask mixing all-zero, all-one and random words; `density` in 0..=4.
fn random_mask(rng: &mut Gen, words: usize, density: u32) -> Vec<u32> {
    (0..words)
        .map(|_| match rng.below(6) {
            0 => 0,
            1 => u32::MAX,
            _ => {
                let mut w = rng.next_u64() as u32;
                for _ in 0..(4 - density.min(4)) {
                    w &= rng.next_u64() as u32;
                }
                w
            }
        })
        .collect()
}

fn random_logits(rng: &mut Gen, n: usize, specials: bool) -> Vec<f32> {
    (0..n)
        .map(|_| {
            if specials {
                match rng.below(40) {
                    0 => return f32::NAN,
                    1 => return f32::NEG_INFINITY,
                    2 => return f32::INFINITY,
                    3 => return -0.0,
                    4 => return 0.0,
                    _ => {}
                }
            }
            // Few distinct values, so ties are common.
            if rng.below(4) == 0 {
                rng.below(5) as f32
            } else {
                rng.sym(30.0)
            }
        })
        .collect()
}

fn check_case(logits: &[f32], mask: &[u32]) {
    let mut want = logits.to_vec();
    naive_apply(&mut want, mask);
    let want_arg = naive_argmax(logits, mask);
    for k in kernel_sets() {
        let mut got = logits.to_vec();
        k.apply_mask_f32(&mut got, mask);
        let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{}: apply_mask_f32 vocab {} mask {:?}", k.name(), logits.len(), mask);
        assert_eq!(
            k.masked_argmax(logits, mask),
            want_arg,
            "{}: masked_argmax vocab {} mask {:?} logits {:?}",
            k.name(),
            logits.len(),
            mask,
            logits
        );
    }
    let tokens: Vec<usize> = AllowedTokens::new(mask, logits.len()).collect();
    let naive: Vec<usize> = (0..logits.len()).filter(|&i| allowed(mask, i)).collect();
    assert_eq!(tokens, naive);
    assert_eq!(count_allowed(mask, logits.len()), naive.len());
    for start in [0, 1, 31, 32, 33, logits.len() / 2] {
        let from: Vec<usize> = AllowedTokens::in_range(mask, start, logits.len()).collect();
        let naive_from: Vec<usize> = naive.iter().copied().filter(|&i| i >= start).collect();
        assert_eq!(from, naive_from, "start {start}");
    }
}

#[test]
fn sweep_vocab_sizes() {
    let mut rng = Gen::new(7);
    for vocab in 0usize..=300 {
        for density in 0..=4 {
            let words = vocab.div_ceil(32);
            for extra_words in [0usize, 1] {
                let mask = random_mask(&mut rng, words + extra_words, density);
                check_case(&random_logits(&mut rng, vocab, density % 2 == 0), &mask);
                // Mask shorter than the vocabulary.
                let short = &mask[..words.saturating_sub(1)];
                check_case(&random_logits(&mut rng, vocab, false), short);
            }
        }
    }
}

#[test]
fn large_vocabularies() {
    let mut rng = Gen::new(8);
    for vocab in [49152usize, 49153, 151_936, 262_144 + 7] {
        for density in [0, 2, 4] {
            let mask = random_mask(&mut rng, vocab.div_ceil(32), density);
            check_case(&random_logits(&mut rng, vocab, true), &mask);
        }
        // One allowed token, last one; and nothing allowed.
        let mut mask = vec![0u32; vocab.div_ceil(32)];
        mask[(vocab - 1) / 32] = 1 << ((vocab - 1) % 32);
        check_case(&random_logits(&mut rng, vocab, false), &mask);
        check_case(&random_logits(&mut rng, vocab, false), &vec![0; vocab.div_ceil(32)]);
    }
}

#[test]
fn argmax_edge_cases() {
    let ninf = f32::NEG_INFINITY;
    let cases: Vec<(Vec<f32>, Vec<u32>, Option<usize>)> = vec![
        (vec![ninf; 40], vec![u32::MAX; 2], Some(0)),
        (vec![ninf; 40], vec![0, 1 << 3], Some(35)),
        (vec![f32::NAN; 40], vec![u32::MAX; 2], None),
        (
            {
                let mut v = vec![f32::NAN; 40];
                v[39] = ninf;
                v
            },
            vec![u32::MAX; 2],
            Some(39),
        ),
        (
            {
                let mut v = vec![-0.0; 40];
                v[20] = 0.0;
                v
            },
            vec![u32::MAX; 2],
            Some(0),
        ),
        (
            {
                let mut v = vec![1.0; 40];
                v[7] = 2.0;
                v[9] = 2.0;
                v
            },
            vec![!(1 << 7), 0],
            Some(9),
        ),
        (vec![1.0; 40], vec![], None),
    ];
    for (logits, mask, want) in cases {
        assert_eq!(naive_argmax(&logits, &mask), want);
        check_case(&logits, &mask);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn prop_masks(seed in any::<u64>(), vocab in 0usize..2000, density in 0u32..5, specials in any::<bool>()) {
        let mut rng = Gen::new(seed);
        let mask = random_mask(&mut rng, vocab.div_ceil(32), density);
        check_case(&random_logits(&mut rng, vocab, specials), &mask);
    }
}
