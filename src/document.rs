//! The normalized form of one item that rules are evaluated against.
//!
//! A [`Document`] is built once per item from its title, summary and content
//! (already plain text), tagged with entity mentions, and then handed to the
//! rule matcher. It owns no I/O and knows nothing about feeds.

use serde::Serialize;

use crate::entities::{Gazetteer, Mention};
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
    pub mentions: Vec<Mention>,
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
        Document { fields, mentions }
    }

    pub fn field(&self, field: Field) -> &NormText {
        &self.fields[field as usize]
    }

    /// Total size of the original text in bytes.
    pub fn len_bytes(&self) -> usize {
        self.fields.iter().map(|f| f.original.len()).sum()
    }
}
