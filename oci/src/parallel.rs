//! Work spread over the cores: [`map_chunks`] splits a slice into one
//! contiguous share per core and maps each share on a thread of its own,
//! keeping the order. Shares, rather than one item at a time, let each
//! thread keep scratch space and stay within one directory of a tree.

/// Maps `items` share by share on up to as many threads as there are
/// cores, each share at least `min_share` items long (small jobs are not
/// worth a thread), and returns the results in the order of `items`. A
/// panic in `f` is raised again here.
pub fn map_chunks<T: Sync, R: Send>(
    items: &[T],
    min_share: usize,
    f: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    if items.is_empty() {
        return Vec::new();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = items.len().div_ceil(cores).max(min_share.max(1));
    if share >= items.len() {
        return f(items);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(share).map(|part| scope.spawn(|| f(part))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_item_once_in_order_whatever_the_share() {
        let items: Vec<u32> = (0..1000).collect();
        for min_share in [0, 1, 7, 999, 1000, 5000] {
            let doubled = map_chunks(&items, min_share, |part| part.iter().map(|i| i * 2).collect());
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>(), "min_share {min_share}");
        }
        assert!(map_chunks(&[] as &[u32], 1, |part| part.to_vec()).is_empty());
    }
}
