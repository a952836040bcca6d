//! Sampling over allowed tokens: against naive full-vocabulary code.

use super::Gen;
use crate::scalar::sample::{log_sum_exp, sample_masked, Candidates, SamplingParams};
use proptest::prelude::*;

fn allowed(mask: &[u32], i: usize) -> bool {
    mask.get(i / 32).is_some_and(|w| (w >> (i % 32)) & 1 == 1)
}

/// Naive: probabilities over the allowed tokens after top-k, temperature
/// and top-p, as (id, p) sorted by decreasing p then id.
fn naive_distribution(logits: &[f32], mask: &[u32], p: &SamplingParams) -> Vec<(u32, f64)> {
    let mut c: Vec<(u32, f32)> =
        (0..logits.len()).filter(|&i| allowed(mask, i) && !logits[i].is_nan()).map(|i| (i as u32, logits[i])).collect();
    c.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if p.top_k > 0 {
        c.truncate(p.top_k);
    }
    let max = c.iter().map(|x| f64::from(x.1)).fold(f64::NEG_INFINITY, f64::max);
    let mut probs: Vec<(u32, f64)> =
        c.iter().map(|&(i, l)| (i, ((f64::from(l) - max) / f64::from(p.temperature)).exp())).collect();
    let total: f64 = probs.iter().map(|x| x.1).sum();
    for x in &mut probs {
        x.1 /= total;
    }
    if p.top_p < 1.0 {
        let mut cum = 0.0;
        let mut keep = probs.len();
        for (i, x) in probs.iter().enumerate() {
            cum += x.1;
            if cum >= f64::from(p.top_p) {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
        let total: f64 = probs.iter().map(|x| x.1).sum();
        for x in &mut probs {
            x.1 /= total;
        }
    }
    probs
}

fn random_case(rng: &mut Gen, vocab: usize, sparse: bool) -> (Vec<f32>, Vec<u32>) {
    let logits: Vec<f32> = (0..vocab).map(|_| rng.sym(8.0)).collect();
    let mask: Vec<u32> = (0..vocab.div_ceil(32))
        .map(|_| {
            if sparse {
                if rng.below(8) == 0 {
                    1 << rng.below(32)
                } else {
                    0
                }
            } else {
                rng.next_u64() as u32
            }
        })
        .collect();
    (logits, mask)
}

#[test]
fn greedy_is_masked_argmax() {
    let mut rng = Gen::new(11);
    let mut scratch = Candidates::new();
    for vocab in [1, 31, 32, 33, 1000, 49152] {
        for sparse in [false, true] {
            let (logits, mask) = random_case(&mut rng, vocab, sparse);
            let got = sample_masked(&logits, &mask, &SamplingParams::default(), 0.3, &mut scratch);
            assert_eq!(got, crate::scalar::masked_argmax(&logits, &mask));
        }
    }
}

fn check_distribution(logits: &[f32], mask: &[u32], params: &SamplingParams) {
    let want = naive_distribution(logits, mask, params);
    let mut c = Candidates::new();
    c.fill_masked(logits, mask);
    c.top_k(params.top_k);
    c.softmax(params.temperature);
    c.top_p(params.top_p);
    let mut got: Vec<(u32, f64)> = c.as_slice().iter().map(|x| (x.id, f64::from(x.value))).collect();
    got.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    // Top-p's cut can move by one candidate when the cumulative sum lands
    // within rounding of p; compare the common prefix and sizes loosely.
    let n = got.len().min(want.len());
    assert!(got.len().abs_diff(want.len()) <= 1, "{} vs {} candidates", got.len(), want.len());
    for i in 0..n {
        assert_eq!(got[i].0, want[i].0, "rank {i}");
        if got.len() == want.len() {
            assert!((got[i].1 - want[i].1).abs() <= 1e-5, "rank {i}: {} vs {}", got[i].1, want[i].1);
        }
    }
    // Inverse CDF over a grid of u: counts proportional to probabilities.
    let n_draws = 4000;
    let mut counts = std::collections::HashMap::new();
    for i in 0..n_draws {
        let u = (i as f32 + 0.5) / n_draws as f32;
        let id = c.sample(u).expect("non-empty");
        *counts.entry(id).or_insert(0usize) += 1;
    }
    for x in c.as_slice() {
        let expected = f64::from(x.value) * n_draws as f64;
        let got = *counts.get(&x.id).unwrap_or(&0) as f64;
        assert!((got - expected).abs() <= 2.0, "token {}: {got} draws vs {expected}", x.id);
    }
}

#[test]
fn distributions_match_naive() {
    let mut rng = Gen::new(12);
    for vocab in [5, 64, 999, 20000] {
        for sparse in [false, true] {
            let (logits, mask) = random_case(&mut rng, vocab, sparse);
            if crate::scalar::count_allowed(&mask, vocab) == 0 {
                continue;
            }
            for params in [
                SamplingParams { temperature: 1.0, top_k: 0, top_p: 1.0 },
                SamplingParams { temperature: 0.7, top_k: 40, top_p: 1.0 },
                SamplingParams { temperature: 1.3, top_k: 0, top_p: 0.9 },
                SamplingParams { temperature: 0.5, top_k: 100, top_p: 0.5 },
                SamplingParams { temperature: 2.0, top_k: 3, top_p: 0.99 },
            ] {
                check_distribution(&logits, &mask, &params);
            }
        }
    }
}

#[test]
fn heap_top_k_equals_selection() {
    let mut rng = Gen::new(14);
    for vocab in [1, 40, 1000, 49152] {
        for sparse in [false, true] {
            let (mut logits, mask) = random_case(&mut rng, vocab, sparse);
            // Many ties.
            for l in logits.iter_mut().step_by(3) {
                *l = l.round();
            }
            for k in [1, 2, 5, 40, 100000] {
                let mut a = Candidates::new();
                a.fill_masked(&logits, &mask);
                a.top_k(k);
                let mut b = Candidates::new();
                b.fill_masked_top_k(&logits, &mask, k);
                let ids = |c: &Candidates| c.as_slice().iter().map(|x| x.id).collect::<Vec<_>>();
                let mut ia = ids(&a);
                if k >= a.len() {
                    // `top_k` keeps id order when it keeps everything.
                    ia.sort_by(|&x, &y| logits[y as usize].total_cmp(&logits[x as usize]).then(x.cmp(&y)));
                }
                assert_eq!(ia, ids(&b), "vocab {vocab} k {k}");
            }
        }
    }
}

#[test]
fn nothing_allowed_and_infinities() {
    let mut s = Candidates::new();
    let p = SamplingParams { temperature: 1.0, top_k: 0, top_p: 0.9 };
    assert_eq!(sample_masked(&[1.0, 2.0], &[0], &p, 0.5, &mut s), None);
    assert_eq!(sample_masked(&[1.0, 2.0], &[], &p, 0.5, &mut s), None);
    // All allowed logits -inf: uniform among them.
    let l = [f32::NEG_INFINITY; 4];
    let got = sample_masked(&l, &[0b1010], &p, 0.99, &mut s);
    assert!(got == Some(1) || got == Some(3));
    // A +inf logit takes all the mass.
    let l = [0.0, f32::INFINITY, 3.0];
    assert_eq!(sample_masked(&l, &[0b111], &p, 0.99, &mut s), Some(1));
    // u at the top of its range still returns an allowed token.
    let l = [1.0, 1.0, 1.0];
    assert_eq!(sample_masked(&l, &[0b101], &p, 1.0, &mut s).map(|t| t % 2), Some(0));
}

#[test]
fn log_sum_exp_matches_naive() {
    let mut rng = Gen::new(13);
    let (logits, mask) = random_case(&mut rng, 3000, false);
    let naive = |f: &dyn Fn(usize) -> bool| {
        let s: f64 = (0..logits.len()).filter(|&i| f(i)).map(|i| f64::from(logits[i]).exp()).sum();
        s.ln()
    };
    let all = f64::from(log_sum_exp(&logits, None));
    let masked = f64::from(log_sum_exp(&logits, Some(&mask)));
    assert!((all - naive(&|_| true)).abs() < 1e-4);
    assert!((masked - naive(&|i| allowed(&mask, i))).abs() < 1e-4);
    assert_eq!(log_sum_exp(&logits, Some(&[])), f32::NEG_INFINITY);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn prop_distributions(seed in any::<u64>(), vocab in 1usize..3000, sparse in any::<bool>(),
                          t in 0.2f32..3.0, k in 0usize..50, p in 0.05f32..1.0) {
        let mut rng = Gen::new(seed);
        let (logits, mask) = random_case(&mut rng, vocab, sparse);
        prop_assume!(crate::scalar::count_allowed(&mask, vocab) > 0);
        check_distribution(&logits, &mask, &SamplingParams { temperature: t, top_k: k, top_p: p });
    }
}
