//! Work split over the machine's cores, for the steps of a day's catch-up that are
//! CPU-bound and independent per item (verifying signatures, decoding records).

use std::ops::Range;

/// Runs `work` on consecutive slices of `items`, one scoped thread per core, each slice
/// at least `min_per_slice` long; with fewer items, one slice on the calling thread.
/// Returns each slice's range in `items` with its result, in order; a slice whose
/// thread panicked gives `Err`.
pub fn slices<'a, T: Sync, R: Send>(
    items: &'a [T],
    min_per_slice: usize,
    work: impl Fn(&'a [T]) -> R + Sync,
) -> Vec<(Range<usize>, std::thread::Result<R>)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(items.len() / min_per_slice.max(1)).max(1);
    if threads == 1 {
        return vec![(0..items.len(), Ok(work(items)))];
    }
    let len = items.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let runs: Vec<_> = items
            .chunks(len)
            .enumerate()
            .map(|(i, part)| {
                let range = i * len..i * len + part.len();
                (range, scope.spawn(move || work(part)))
            })
            .collect();
        runs.into_iter()
            .map(|(range, run)| (range, run.join()))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_item_once_in_order() {
        let items: Vec<u32> = (0..1_000).collect();
        let parts = slices(&items, 100, |part| part.iter().sum::<u32>());
        assert_eq!(parts.first().map(|(r, _)| r.start), Some(0));
        assert_eq!(parts.last().map(|(r, _)| r.end), Some(1_000));
        assert!(parts.windows(2).all(|w| w[0].0.end == w[1].0.start));
        let total: u32 = parts.into_iter().map(|(_, r)| r.expect("no panic")).sum();
        assert_eq!(total, items.iter().sum::<u32>());
        assert_eq!(
            slices(&items[..10], 100, |p| p.len()).len(),
            1,
            "too few to split"
        );
    }
}
