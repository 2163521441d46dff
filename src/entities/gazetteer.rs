//! The gazetteer file format (TOML) and its validation.

use serde::Deserialize;

use crate::text::fold_words;

/// One gazetteer file: a list of `[[entity]]` tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GazetteerFile {
    #[serde(default)]
    pub entity: Vec<EntitySpec>,
}

/// One entity as written in a gazetteer file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// Other names, matched case-insensitively.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Names matched only with exactly this capitalisation ("US", "WHO").
    #[serde(default)]
    pub cased: Vec<String>,
    /// Adjectives and names of the people ("North Korean", "North Koreans").
    #[serde(default)]
    pub demonyms: Vec<String>,
    /// Places whose mention stands for this entity (a capital for its country).
    #[serde(default)]
    pub links: Vec<LinkSpec>,
    /// For persons: the id of their country.
    pub country: Option<String>,
    /// For persons: a short description of their office.
    pub role: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub name: String,
    pub relation: String,
}

/// A gazetteer file that could not be read, with every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {}", problems.join("; "))]
pub struct EntityFileError {
    pub source_name: String,
    pub problems: Vec<String>,
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl GazetteerFile {
    /// Parses and validates one gazetteer file; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<GazetteerFile, EntityFileError> {
        let fail = |problems: Vec<String>| EntityFileError {
            source_name: source_name.to_string(),
            problems,
        };
        let file: GazetteerFile = toml::from_str(text).map_err(|e| {
            let location = e
                .span()
                .map(|span| {
                    let (line, col) = crate::config::line_col(text, span.start);
                    format!("{line}:{col}: ")
                })
                .unwrap_or_default();
            fail(vec![format!("{location}{}", e.message())])
        })?;
        let mut problems = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for spec in &file.entity {
            if !valid_id(&spec.id) {
                problems.push(format!(
                    "entity id {:?} must match [a-z0-9][a-z0-9-]*",
                    spec.id
                ));
            }
            if !ids.insert(spec.id.as_str()) {
                problems.push(format!("entity id {:?} appears twice", spec.id));
            }
            if !valid_id(&spec.kind) {
                problems.push(format!(
                    "entity {:?}: kind {:?} must match [a-z0-9][a-z0-9-]*",
                    spec.id, spec.kind
                ));
            }
            let names = std::iter::once(&spec.name)
                .chain(&spec.aliases)
                .chain(&spec.cased)
                .chain(&spec.demonyms)
                .chain(spec.links.iter().map(|l| &l.name));
            for name in names {
                if fold_words(name).is_empty() {
                    problems.push(format!(
                        "entity {:?}: name {:?} has no letters or digits",
                        spec.id, name
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(file)
        } else {
            Err(fail(problems))
        }
    }
}
