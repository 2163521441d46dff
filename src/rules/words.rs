//! A table from a short byte string (a folded word, or the first bytes of
//! one) to a list of `u32` values, laid out for the per-token lookups of
//! [`super::TermIndex::scan`]: a cuckoo table of 24-byte slots that hold the
//! key's first sixteen bytes and its first value. A key is in one of two
//! slots, so a lookup of a word of up to sixteen bytes reads two slots and
//! decides without a loop: which tokens hit is unpredictable, and every
//! branch the processor guesses wrong costs more than the reads.

/// The first eight bytes of `word`, zero padded, as one integer.
pub(super) fn head(word: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = word.len().min(8);
    buf[..n].copy_from_slice(&word[..n]);
    u64::from_le_bytes(buf)
}

/// [`head`] of the `len` bytes at `start` of `text`, read as one load where
/// eight bytes are available (bytes past the end of `text` count as zeros).
#[inline(always)]
pub(super) fn head_at(text: &[u8], start: usize, len: usize) -> u64 {
    match text.get(start..start + 8) {
        Some(eight) => {
            let v = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
            // Token lengths vary at random, so the mask is computed rather
            // than chosen by a branch: all ones shifted right by 64 - 8 len
            // (len capped at 8), and zero for an empty key.
            let bits = 8 * len.min(8) as u32;
            let mask = u64::MAX.wrapping_shr(64 - bits) & 0u64.wrapping_sub(u64::from(bits != 0));
            v & mask
        }
        // Near the end of the text; bytes past it read as zeros.
        None => {
            let rest = text.get(start..).unwrap_or_default();
            head(&rest[..len.min(rest.len())])
        }
    }
}

/// [`head`] of the bytes of `key` after the eighth (0 when it has no more).
pub(super) fn tail(key: &[u8]) -> u64 {
    key.get(8..).map_or(0, head)
}

/// [`tail`] of the `len` bytes at `start` of `text`.
#[inline(always)]
pub(super) fn tail_at(text: &[u8], start: usize, len: usize) -> u64 {
    // No branch on the length: a key of at most eight bytes masks all bytes off.
    head_at(text, start + 8, len.saturating_sub(8))
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

/// A table of keys, each in one of two slots given by its hash (cuckoo
/// hashing): a lookup reads both and compares both, with no probe loop, so
/// that the processor has no branch to mispredict until the answer.
#[derive(Debug, Clone)]
pub(super) struct WordTable {
    slots: Box<[Slot]>,
    shift: u32,
    seed: u64,
    /// Per slot: where its key's bytes after the sixteenth start in `rest`,
    /// and where its further values start in `more`.
    rest_at: Box<[u32]>,
    more_at: Box<[u32]>,
    rest: Vec<u8>,
    more: Vec<u32>,
    /// Keys that found no slot, searched one by one: only keys that share
    /// their length and first sixteen bytes with two others hash alike
    /// whatever the seed, so this is empty but for contrived rule sets.
    overflow: Vec<Overflowed>,
}

/// A key without a slot, and its values.
type Overflowed = (Box<[u8]>, Box<[u32]>);

/// The values of one key.
#[derive(Clone, Copy)]
pub(super) struct Values<'a> {
    pub(super) first: u32,
    pub(super) more: &'a [u32],
}

impl<'a> IntoIterator for Values<'a> {
    type Item = u32;
    type IntoIter =
        std::iter::Chain<std::iter::Once<u32>, std::iter::Copied<std::slice::Iter<'a, u32>>>;

    fn into_iter(self) -> Self::IntoIter {
        std::iter::once(self.first).chain(self.more.iter().copied())
    }
}

/// How many times a key may be moved out of its slot while inserting one
/// key, before the table is rebuilt with another seed or more room.
const MAX_KICKS: usize = 500;

/// Seeds tried per table size, and sizes tried (each twice the last),
/// before the keys left without a slot go to the overflow list.
const SEEDS: usize = 4;
const SIZES: usize = 2;

impl WordTable {
    /// A table of `(key, values)` pairs. Keys are distinct, non-empty and
    /// shorter than 64 KiB, each with at least one value; other pairs are
    /// left out.
    pub(super) fn new(pairs: &[(&[u8], Vec<u32>)]) -> WordTable {
        let mut pairs: Vec<(&[u8], &[u32])> = pairs
            .iter()
            .filter(|(key, values)| {
                !key.is_empty()
                    && key.len() <= usize::from(u16::MAX)
                    && !values.is_empty()
                    && values.len() <= 0x1_0000
            })
            .map(|(key, values)| (*key, values.as_slice()))
            .collect();
        pairs.sort_by_key(|&(key, _)| key);
        pairs.dedup_by_key(|&mut (key, _)| key);
        // At most half full (two-choice cuckoo tables jam a little below
        // that); a few seeds per size, then twice the room.
        let base = (2 * pairs.len() + 1).next_power_of_two().max(16);
        let mut seed = 0x243f_6a88_85a3_08d3u64;
        let mut attempt = 0;
        loop {
            let table = WordTable::build(&pairs, base << (attempt / SEEDS), seed);
            attempt += 1;
            if table.overflow.is_empty() || attempt == SEEDS * SIZES {
                return table;
            }
            seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
        }
    }

    /// A table with `capacity` slots hashed with `seed`; keys that find no
    /// slot go to the overflow list.
    fn build(pairs: &[(&[u8], &[u32])], capacity: usize, seed: u64) -> WordTable {
        let mut table = WordTable {
            slots: vec![Slot::default(); capacity].into_boxed_slice(),
            shift: 64 - capacity.trailing_zeros(),
            seed,
            rest_at: vec![0; capacity].into_boxed_slice(),
            more_at: vec![0; capacity].into_boxed_slice(),
            rest: Vec::new(),
            more: Vec::new(),
            overflow: Vec::new(),
        };
        // Which pair each slot holds.
        let mut holder: Vec<Option<usize>> = vec![None; capacity];
        for p in 0..pairs.len() {
            let mut moving = p;
            let key = pairs[p].0;
            let (mut at, _) = table.indices(head(key), tail(key), key.len());
            let mut placed = false;
            for _ in 0..MAX_KICKS {
                match holder[at].replace(moving) {
                    None => {
                        placed = true;
                        break;
                    }
                    Some(evicted) => {
                        // The evicted key goes to its other slot.
                        moving = evicted;
                        let key = pairs[moving].0;
                        let (a, b) = table.indices(head(key), tail(key), key.len());
                        at = if a == at { b } else { a };
                    }
                }
            }
            if !placed {
                let (key, values) = pairs[moving];
                table.overflow.push((key.into(), values.into()));
            }
        }
        for (i, held) in holder.iter().enumerate() {
            let Some(p) = *held else {
                continue;
            };
            let (key, values) = pairs[p];
            table.slots[i] = Slot {
                head: head(key),
                tail: tail(key),
                len: key.len() as u16,
                more: (values.len() - 1) as u16,
                first: values[0],
            };
            table.rest_at[i] = table.rest.len() as u32;
            table.more_at[i] = table.more.len() as u32;
            table
                .rest
                .extend_from_slice(key.get(16..).unwrap_or_default());
            table.more.extend_from_slice(&values[1..]);
        }
        table
    }

    /// The two slots a key may occupy.
    #[inline(always)]
    fn indices(&self, head: u64, tail: u64, len: usize) -> (usize, usize) {
        // Letters leave most bits of a head alike: mix before taking the top bits.
        let mut key = head ^ tail.rotate_left(29) ^ (len as u64).rotate_right(8) ^ self.seed;
        key ^= key >> 29;
        key = key.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        key ^= key >> 32;
        let first = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift;
        let second = key.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) >> self.shift;
        (first as usize, second as usize)
    }

    /// The two slots `key` may be in, and whether its first sixteen bytes
    /// and length are those of the key in each.
    #[inline(always)]
    fn slots_of(&self, key: &[u8], head: u64, tail: u64) -> (usize, usize, bool, bool) {
        let (a, b) = self.indices(head, tail, key.len());
        let same = |i: usize| {
            let slot = &self.slots[i];
            (slot.head == head) & (slot.tail == tail) & (usize::from(slot.len) == key.len())
        };
        (a, b, same(a), same(b))
    }

    /// The values of `key`; `head` and `tail` are [`head`] of `key` and of
    /// its bytes after the eighth ([`tail`]).
    #[inline(always)]
    pub(super) fn get(&self, key: &[u8], head: u64, tail: u64) -> Option<Values<'_>> {
        let (a, b, in_a, in_b) = self.slots_of(key, head, tail);
        let i = if key.len() <= 16 {
            if !(in_a | in_b) {
                return self.overflowed(key);
            }
            if in_a { a } else { b }
        } else if in_a && self.same_rest(a, key) {
            a
        } else if in_b && self.same_rest(b, key) {
            b
        } else {
            return self.overflowed(key);
        };
        let slot = &self.slots[i];
        let more = &self.more[self.more_at[i] as usize..][..usize::from(slot.more)];
        Some(Values {
            first: slot.first,
            more,
        })
    }

    /// Whether `key` is in the table, and its values if it is; if it is
    /// not, a value of some other key and no more. `head` and `tail` are as
    /// for [`WordTable::get`].
    ///
    /// For the scan: a miss takes the same steps as a hit, so that the caller
    /// can record the first value without a branch (on a miss, as nobody's).
    #[inline(always)]
    pub(super) fn probe(&self, key: &[u8], head: u64, tail: u64) -> (bool, Values<'_>) {
        let (a, b, in_a, in_b) = self.slots_of(key, head, tail);
        let found = in_a | in_b;
        // Rare cases, tested first so that the branch is on them alone:
        // keys longer than sixteen bytes, and tables with an overflow list.
        if key.len() > 16 || (!self.overflow.is_empty() && !found) {
            return match self.get(key, head, tail) {
                Some(values) => (true, values),
                None => (
                    false,
                    Values {
                        first: self.slots[a].first,
                        more: &[],
                    },
                ),
            };
        }
        let i = std::hint::select_unpredictable(in_a, a, b);
        let slot = &self.slots[i];
        let more = usize::from(slot.more) & 0usize.wrapping_sub(usize::from(found));
        let more = &self.more[self.more_at[i] as usize..][..more];
        (
            found,
            Values {
                first: slot.first,
                more,
            },
        )
    }

    /// The values of `key` if it is in the overflow list.
    fn overflowed(&self, key: &[u8]) -> Option<Values<'_>> {
        if self.overflow.is_empty() {
            return None;
        }
        let (_, values) = self.overflow.iter().find(|(k, _)| **k == *key)?;
        Some(Values {
            first: values[0],
            more: &values[1..],
        })
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

    /// The values of `key` in `table`, as a lookup from a token would find
    /// them; checks that [`WordTable::probe`] agrees with [`WordTable::get`].
    fn lookup(table: &WordTable, key: &[u8]) -> Option<Vec<u32>> {
        let got: Option<Vec<u32>> = table
            .get(key, head(key), tail(key))
            .map(|v| v.into_iter().collect());
        let (found, values) = table.probe(key, head(key), tail(key));
        assert_eq!(found, got.is_some(), "probe and get disagree on {key:?}");
        if found {
            assert_eq!(Some(values.into_iter().collect()), got);
        } else {
            assert!(values.more.is_empty(), "a miss has no further values");
        }
        got
    }

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
            let found = lookup(&table, key).expect("present");
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
            assert!(lookup(&table, absent).is_none(), "{absent:?}");
        }
    }

    #[test]
    fn large_tables_hold_every_key() {
        // Enough keys that some seeds jam and the table is rebuilt.
        for n in [1, 2, 3, 17, 1_000, 20_000] {
            let words: Vec<String> = (0..n).map(|i| format!("k{}", i * 7919)).collect();
            let pairs: Vec<(&[u8], Vec<u32>)> = words
                .iter()
                .enumerate()
                .map(|(i, w)| (w.as_bytes(), vec![i as u32]))
                .collect();
            let table = WordTable::new(&pairs);
            assert!(
                table.slots.len() >= 2 * n,
                "{n} keys, {} slots",
                table.slots.len()
            );
            for (i, w) in words.iter().enumerate() {
                let key = w.as_bytes();
                let found = lookup(&table, key).expect("present");
                assert_eq!(found, [i as u32]);
            }
            let absent = b"k1x";
            assert!(lookup(&table, absent).is_none());
        }
    }

    #[test]
    fn keys_alike_in_their_first_sixteen_bytes_are_told_apart() {
        // Same length, same first 8 or 16 bytes: keys that a hash of the
        // first bytes cannot separate, more than two slots can hold.
        let mut words: Vec<String> = (0..40).map(|i| format!("reconstr{i:04}")).collect();
        words.extend((0..40).map(|i| format!("abcdefghijklmnop{i:03}")));
        let pairs: Vec<(&[u8], Vec<u32>)> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_bytes(), vec![i as u32, 1000 + i as u32]))
            .collect();
        let table = WordTable::new(&pairs);
        assert!(
            !table.overflow.is_empty(),
            "the 16-byte twins cannot all have slots"
        );
        for (key, values) in &pairs {
            let found = lookup(&table, key).expect("present");
            assert_eq!(&found, values);
        }
        for absent in ["reconstr9999", "abcdefghijklmnop999", "abcdefghijklmnop00"] {
            let absent = absent.as_bytes();
            assert!(lookup(&table, absent).is_none());
        }
    }

    #[test]
    fn head_at_past_the_end_reads_zeros() {
        let text = b"abcdef";
        assert_eq!(head_at(text, 4, 8), head(b"ef"));
        assert_eq!(head_at(text, 6, 3), 0);
        assert_eq!(head_at(text, 9, 3), 0);
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
