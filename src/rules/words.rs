//! A table from a short byte string (a folded word, or the first bytes of
//! one) to a list of `u32` values, laid out for the per-token lookups of
//! [`super::TermIndex::scan`]: one open-addressing array of 24-byte slots that
//! hold the key's first sixteen bytes and its first value, so that a lookup
//! of a word of up to sixteen bytes with one value reads one slot.

/// The first eight bytes of `word`, zero padded, as one integer.
pub(super) fn head(word: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = word.len().min(8);
    buf[..n].copy_from_slice(&word[..n]);
    u64::from_le_bytes(buf)
}

/// [`head`] of the `len` bytes at `start` of `text`, read as one load where
/// eight bytes are available.
#[inline(always)]
pub(super) fn head_at(text: &[u8], start: usize, len: usize) -> u64 {
    match text.get(start..start + 8) {
        Some(eight) => {
            let v = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
            if len >= 8 {
                v
            } else {
                v & ((1u64 << (8 * len)) - 1)
            }
        }
        None => head(&text[start..start + len]),
    }
}

/// [`head`] of the bytes of `key` after the eighth (0 when it has no more).
pub(super) fn tail(key: &[u8]) -> u64 {
    key.get(8..).map_or(0, head)
}

/// [`tail`] of the `len` bytes at `start` of `text`.
#[inline(always)]
pub(super) fn tail_at(text: &[u8], start: usize, len: usize) -> u64 {
    if len > 8 {
        head_at(text, start + 8, len - 8)
    } else {
        0
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    head: u64,
    /// Bytes 8 to 16 of the key.
    tail: u64,
    /// Length of the key; 0 for an empty slot.
    len: u16,
    /// Values after the first (in `more`, from `more_at[slot]`).
    more: u16,
    first: u32,
}

#[derive(Debug, Clone)]
pub(super) struct WordTable {
    slots: Box<[Slot]>,
    shift: u32,
    /// Per slot: where its key's bytes after the sixteenth start in `rest`,
    /// and where its further values start in `more`.
    rest_at: Box<[u32]>,
    more_at: Box<[u32]>,
    rest: Vec<u8>,
    more: Vec<u32>,
}

/// The values of one key.
#[derive(Clone, Copy)]
pub(super) struct Values<'a> {
    first: u32,
    more: &'a [u32],
}

impl<'a> IntoIterator for Values<'a> {
    type Item = u32;
    type IntoIter =
        std::iter::Chain<std::iter::Once<u32>, std::iter::Copied<std::slice::Iter<'a, u32>>>;

    fn into_iter(self) -> Self::IntoIter {
        std::iter::once(self.first).chain(self.more.iter().copied())
    }
}

impl WordTable {
    /// A table of `(key, values)` pairs. Keys are distinct, non-empty and
    /// shorter than 64 KiB, each with at least one value; other pairs are
    /// left out.
    pub(super) fn new(pairs: &[(&[u8], Vec<u32>)]) -> WordTable {
        let capacity = (pairs.len() + pairs.len() / 2 + 1)
            .next_power_of_two()
            .max(16);
        let mut table = WordTable {
            slots: vec![Slot::default(); capacity].into_boxed_slice(),
            shift: 64 - capacity.trailing_zeros(),
            rest_at: vec![0; capacity].into_boxed_slice(),
            more_at: vec![0; capacity].into_boxed_slice(),
            rest: Vec::new(),
            more: Vec::new(),
        };
        for (key, values) in pairs {
            let Some((&first, more)) = values.split_first() else {
                continue;
            };
            if key.is_empty() || key.len() > usize::from(u16::MAX) || more.len() > 0xffff {
                continue;
            }
            let head = head(key);
            let mut i = table.index(head, key.len());
            while table.slots[i].len != 0 {
                i = (i + 1) & (capacity - 1);
            }
            table.slots[i] = Slot {
                head,
                tail: tail(key),
                len: key.len() as u16,
                more: more.len() as u16,
                first,
            };
            table.rest_at[i] = table.rest.len() as u32;
            table.more_at[i] = table.more.len() as u32;
            table
                .rest
                .extend_from_slice(key.get(16..).unwrap_or_default());
            table.more.extend_from_slice(more);
        }
        table
    }

    #[inline(always)]
    fn index(&self, head: u64, len: usize) -> usize {
        // Letters leave most bits of a head alike: mix before taking the top bits.
        let mut key = head ^ (len as u64).rotate_right(8);
        key ^= key >> 29;
        key = key.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        key ^= key >> 32;
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// The values of `key`; `head` and `tail` are [`head`] of `key` and of
    /// its bytes after the eighth ([`tail`]).
    #[inline(always)]
    pub(super) fn get(&self, key: &[u8], head: u64, tail: u64) -> Option<Values<'_>> {
        let mask = self.slots.len() - 1;
        let mut i = self.index(head, key.len());
        loop {
            let slot = &self.slots[i];
            if slot.len == 0 {
                return None;
            }
            let same =
                (slot.head == head) & (slot.tail == tail) & (usize::from(slot.len) == key.len());
            if same && (key.len() <= 16 || self.same_rest(i, key)) {
                let more = match slot.more {
                    0 => &[][..],
                    n => &self.more[self.more_at[i] as usize..][..usize::from(n)],
                };
                return Some(Values {
                    first: slot.first,
                    more,
                });
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether the bytes after the sixteenth of `key` (which is as long as
    /// the key of slot `i`) are those of the slot's key.
    fn same_rest(&self, i: usize, key: &[u8]) -> bool {
        self.rest[self.rest_at[i] as usize..][..key.len() - 16] == key[16..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_key_and_only_those() {
        let words: Vec<String> = (0..500)
            .map(|i| format!("w{i}x{}", "y".repeat(i % 23)))
            .collect();
        let pairs: Vec<(&[u8], Vec<u32>)> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let values = (0..=(i as u32 % 3)).map(|k| i as u32 * 10 + k).collect();
                (w.as_bytes(), values)
            })
            .collect();
        let table = WordTable::new(&pairs);
        for (key, values) in &pairs {
            let found: Vec<u32> = table
                .get(key, head(key), tail(key))
                .expect("present")
                .into_iter()
                .collect();
            assert_eq!(&found, values);
        }
        // Prefixes of keys, and keys of the same length that differ only in
        // the last byte (after the eighth, or after the sixteenth).
        let mut absent: Vec<String> = ["w1", "w12x", "w4x", "w499x"].map(String::from).to_vec();
        for i in [9, 17, 22, 45] {
            let mut word = words[i].clone();
            word.pop();
            word.push('z');
            absent.push(word);
        }
        for absent in &absent {
            let absent = absent.as_bytes();
            assert!(
                table.get(absent, head(absent), tail(absent)).is_none(),
                "{absent:?}"
            );
        }
    }

    #[test]
    fn head_at_reads_like_head() {
        let text = b" alpha beta gammadeltaepsilon z ";
        for start in 0..text.len() {
            for len in 0..=(text.len() - start) {
                let key = &text[start..start + len];
                assert_eq!(head_at(text, start, len), head(key));
                assert_eq!(tail_at(text, start, len), tail(key));
            }
        }
    }
}
