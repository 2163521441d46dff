//! The normalized form of one item that rules are evaluated against.
//!
//! A [`Document`] is built once per item from its title, summary and content
//! (already plain text), tagged with entity mentions, and then handed to the
//! rule matcher. It owns no I/O and knows nothing about feeds.

use serde::Serialize;

use crate::entities::{GUESSED_BASE, Gazetteer, GuessedName, Mention, guess_names};
use crate::text::NormText;

/// A text field of an item. Rules may restrict a term to one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Title = 0,
    Summary = 1,
    Content = 2,
}

impl Field {
    pub const ALL: [Field; 3] = [Field::Title, Field::Summary, Field::Content];

    pub fn name(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Summary => "summary",
            Field::Content => "content",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of fields as a bit mask (title = 1, summary = 2, content = 4).
pub type FieldMask = u8;
pub const ALL_FIELDS: FieldMask = 0b111;

/// Normalized item text plus the entities found in it.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub fields: [NormText; 3],
    /// Mentions of gazetteer entities.
    pub mentions: Vec<Mention>,
    /// Person names the gazetteer does not know, guessed from context.
    pub guessed: Vec<GuessedName>,
    /// Distinct guessed names; `GUESSED_BASE + i` is the entity id of the i-th.
    pub guessed_names: Vec<String>,
}

impl Document {
    /// Normalizes the three text fields and tags entities with `gazetteer`.
    pub fn new(title: &str, summary: &str, content: &str, gazetteer: &Gazetteer) -> Document {
        let fields = [
            NormText::new(title),
            NormText::new(summary),
            NormText::new(content),
        ];
        let mentions = gazetteer.tag(&fields);
        let guessed: Vec<GuessedName> = Field::ALL
            .into_iter()
            .flat_map(|f| guess_names(&fields[f as usize], f, &mentions))
            .collect();
        let mut guessed_names: Vec<String> = guessed.iter().map(|g| g.name.clone()).collect();
        guessed_names.sort();
        guessed_names.dedup();
        Document {
            fields,
            mentions,
            guessed,
            guessed_names,
        }
    }

    /// The entity id of a guessed name.
    pub fn guessed_id(&self, guess: &GuessedName) -> u32 {
        let index = self
            .guessed_names
            .binary_search(&guess.name)
            .unwrap_or_default();
        GUESSED_BASE + index as u32
    }

    /// The display name of an entity id (gazetteer or guessed).
    pub fn entity_name<'a>(&'a self, gazetteer: &'a Gazetteer, entity: u32) -> &'a str {
        if entity >= GUESSED_BASE {
            self.guessed_names
                .get((entity - GUESSED_BASE) as usize)
                .map_or("?", String::as_str)
        } else {
            &gazetteer.entity(entity).name
        }
    }

    pub fn field(&self, field: Field) -> &NormText {
        &self.fields[field as usize]
    }

    /// Total size of the original text in bytes.
    pub fn len_bytes(&self) -> usize {
        self.fields.iter().map(|f| f.original.len()).sum()
    }
}
