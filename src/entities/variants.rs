//! Spelling variants of person names across transliteration systems.
//!
//! News in English, German and French spell the same Slavic or Arabic name
//! differently: Zelenskyy, Zelensky, Zelenskiy, Selenskyj; Lavrov, Lawrow;
//! Shoigu, Schoigu. Rather than asking the gazetteer to list every spelling,
//! each person name is expanded with a few well-known substitutions. The rules
//! are deliberately narrow (suffix families, initial letters) so that variants
//! stay recognisably the same name.

use std::collections::BTreeSet;

use crate::text::fold_words;

const MAX_VARIANTS_PER_WORD: usize = 16;
const MAX_VARIANTS_PER_NAME: usize = 48;

/// The "-sky" surname ending in its common romanisations.
const SKY_FAMILY: [&str; 8] = ["skyy", "skyi", "skiy", "skyj", "skij", "skii", "sky", "ski"];

fn word_variants(word: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    out.insert(word.to_string());
    let mut slavic = false;
    if let Some(stem) = SKY_FAMILY
        .iter()
        .find_map(|suffix| word.strip_suffix(suffix))
        .filter(|stem| stem.len() >= 3)
    {
        slavic = true;
        for suffix in SKY_FAMILY {
            out.insert(format!("{stem}{suffix}"));
        }
    }
    let substitutions: [(&str, &[&str]); 4] = [
        ("kh", &["ch", "h"]),
        ("sh", &["sch"]),
        ("yu", &["iu", "ju"]),
        ("ya", &["ia", "ja"]),
    ];
    for (from, tos) in substitutions {
        let current: Vec<String> = out.iter().cloned().collect();
        for w in current {
            if w.contains(from) {
                for to in tos {
                    out.insert(w.replace(from, to));
                }
            }
        }
    }
    let current: Vec<String> = out.iter().cloned().collect();
    for w in current {
        // Sergei/Sergey, Alexei/Alexey: only after the consonants of those
        // Russian endings, so that names like Milei keep their spelling.
        if let Some(stem) = ["gei", "kei", "sei", "xei"]
            .iter()
            .find_map(|end| w.strip_suffix(end).map(|stem| (stem, &end[..1])))
        {
            out.insert(format!("{}{}ey", stem.0, stem.1));
        }
        if let Some(stem) = w.strip_suffix("ov").or_else(|| w.strip_suffix("ev")) {
            let vowel = &w[stem.len()..stem.len() + 1];
            out.insert(format!("{stem}{vowel}w"));
        }
        if w.contains('v') {
            out.insert(w.replace('v', "w"));
        }
        if slavic && let Some(rest) = w.strip_prefix('z') {
            out.insert(format!("s{rest}"));
        }
    }
    out.into_iter().take(MAX_VARIANTS_PER_WORD).collect()
}

/// Extra spellings of a person's `names` (folded, space-joined).
pub fn person_variants(names: &[&str]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for &full in names {
        let words = fold_words(full);
        if words.is_empty() || words.len() > 4 {
            continue;
        }
        let mut combos: Vec<String> = vec![String::new()];
        for word in &words {
            let variants = word_variants(word);
            let mut next = Vec::new();
            for prefix in &combos {
                for v in &variants {
                    if next.len() >= MAX_VARIANTS_PER_NAME {
                        break;
                    }
                    next.push(if prefix.is_empty() {
                        v.clone()
                    } else {
                        format!("{prefix} {v}")
                    });
                }
            }
            combos = next;
        }
        out.extend(combos);
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slavic_surnames_expand() {
        let v = person_variants(&["Volodymyr Zelenskyy", "Zelenskyy"]);
        for expected in ["zelensky", "zelenskiy", "selenskyj", "wolodymyr zelenskyy"] {
            assert!(v.iter().any(|x| x == expected), "missing {expected}: {v:?}");
        }
        let v = person_variants(&["Sergei Lavrov", "Lavrov"]);
        assert!(v.iter().any(|x| x == "lawrow"), "{v:?}");
        assert!(v.iter().any(|x| x == "sergey lavrov"), "{v:?}");
    }

    #[test]
    fn ordinary_names_stay_put() {
        assert_eq!(person_variants(&["Emmanuel Macron"]), ["emmanuel macron"]);
        let milei = person_variants(&["Javier Milei"]);
        assert!(!milei.iter().any(|v| v.contains("miley")), "{milei:?}");
    }
}
