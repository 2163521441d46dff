//! Placeholder: OPML import/export (being written).
