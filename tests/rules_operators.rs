//! One or more tests per operator of the rule language and per error message.
//!
//! Every positive/negative check goes through both the compiled matcher
//! (`RuleSet::evaluate`) and the reference interpreter (`interpret::matches`)
//! and asserts that they agree before asserting the expected answer.

use std::sync::LazyLock;

use newswatch::document::{Document, Field};
use newswatch::entities::{Gazetteer, GazetteerFile};
use newswatch::rules::{self, Hit, RuleMatch, interpret, parse};

static GAZ: LazyLock<Gazetteer> = LazyLock::new(Gazetteer::builtin);

/// Whether `query` fires on the item, checked by both matchers.
fn fires_on(query: &str, title: &str, summary: &str, content: &str) -> bool {
    let set = rules::compile([("r", query)], &GAZ)
        .unwrap_or_else(|e| panic!("{query:?} does not compile: {:?}", e[0].error));
    let doc = Document::new(title, summary, content, &GAZ);
    let compiled = set.evaluate(&doc).iter().any(|m| m.rule == 0);
    let expr = parse(query).expect("a query that compiles parses");
    let reference = interpret::matches(&expr, &doc, &GAZ);
    assert_eq!(
        compiled, reference,
        "compiled matcher and interpreter disagree on {query:?} over title={title:?} summary={summary:?} content={content:?}"
    );
    compiled
}

/// Whether `query` fires on an item whose content is `text`.
fn fires(query: &str, text: &str) -> bool {
    fires_on(query, "", "", text)
}

fn evaluate(query: &str, title: &str, summary: &str, content: &str) -> (Document, Vec<RuleMatch>) {
    let set = rules::compile([("r", query)], &GAZ)
        .unwrap_or_else(|e| panic!("{query:?} does not compile: {:?}", e[0].error));
    let doc = Document::new(title, summary, content, &GAZ);
    let matches = set.evaluate(&doc);
    (doc, matches)
}

/// The message and the text under the span of the error `parse` reports.
fn parse_error(query: &str) -> (String, String) {
    let e = parse(query).expect_err(query);
    let at = query.get(e.span.clone()).unwrap_or("<end>").to_string();
    (e.message, at)
}

/// The message and the text under the span of the error `compile` reports.
fn compile_error(query: &str) -> (String, String) {
    let errors = match rules::compile([("r", query)], &GAZ) {
        Ok(_) => panic!("{query:?} compiled"),
        Err(errors) => errors,
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].rule, "r");
    let e = &errors[0].error;
    let at = query.get(e.span.clone()).unwrap_or("<end>").to_string();
    (e.message.clone(), at)
}

// ---------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------

#[test]
fn word_ignores_case() {
    assert!(fires("Zelenskyy", "ZELENSKYY spoke on Tuesday"));
    assert!(fires("ZELENSKYY", "Zelenskyy spoke on Tuesday"));
    assert!(fires("zelenskyy", "President Zelenskyy"));
}

#[test]
fn word_ignores_width() {
    assert!(fires("Zelenskyy", "ＺＥＬＥＮＳＫＹＹ spoke"));
    assert!(fires("ＺＥＬＥＮＳＫＹＹ", "Zelenskyy spoke"));
    assert!(fires("finance", "ﬁnance ministers"));
}

#[test]
fn word_ignores_accents() {
    assert!(fires("Sélestat", "a market in selestat"));
    assert!(fires("selestat", "a market in Sélestat"));
    assert!(fires("selestat", "a market in SÉLESTAT"));
    // Decomposed accent (e + combining acute) is the same word.
    assert!(fires("selestat", "a market in Se\u{301}lestat"));
    assert!(fires("strasse", "Straße"));
    assert!(fires("lodz", "Łódź"));
}

#[test]
fn word_matches_whole_tokens_only() {
    assert!(fires("troop", "a troop arrived"));
    assert!(!fires("troop", "troops arrived"));
    assert!(!fires("troops", "a troop arrived"));
    assert!(!fires("korea", "Koreans"));
    // Punctuation separates tokens, so a word inside a hyphenated compound matches.
    assert!(fires("pyongyang", "Moscow-Pyongyang ties"));
    assert!(fires("russia", "Russia's army"));
}

#[test]
fn word_with_inner_punctuation_is_a_phrase() {
    // "U.S." is the two tokens "u" "s"; the query folds the same way.
    assert!(fires("U.S.", "U.S. troops"));
    assert!(fires("U.S.", "u s troops"));
    assert!(fires("Moscow-Pyongyang", "Moscow Pyongyang"));
    assert!(!fires("Moscow-Pyongyang", "Pyongyang-Moscow"));
}

// ---------------------------------------------------------------------------
// Prefixes
// ---------------------------------------------------------------------------

#[test]
fn prefix_matches_token_starts() {
    for text in [
        "they deploy",
        "they deployed",
        "the deployment",
        "DEPLOYMENTS",
        "Déploy",
    ] {
        assert!(fires("deploy*", text), "{text}");
    }
    for text in ["they redeploy", "redeployed", "de-ploy", "deplo"] {
        assert!(!fires("deploy*", text), "{text}");
    }
}

#[test]
fn prefix_phrase_makes_the_last_word_a_prefix() {
    assert!(fires("\"armed forc\"*", "the armed forces"));
    assert!(fires("\"armed forc\"*", "the armed force"));
    assert!(!fires("\"armed forc\"*", "the armored forces"));
    assert!(!fires("\"arm forces\"*", "the armed forces"));
}

// ---------------------------------------------------------------------------
// Phrases
// ---------------------------------------------------------------------------

#[test]
fn phrase_needs_consecutive_tokens() {
    assert!(fires("\"armed forces\"", "the Armed Forces of Ukraine"));
    assert!(!fires("\"armed forces\"", "armed police and forces"));
    assert!(!fires("\"armed forces\"", "forces armed with rifles"));
    // Only punctuation between the words: still consecutive tokens.
    assert!(fires("\"armed forces\"", "armed—forces"));
}

#[test]
fn phrase_does_not_cross_fields() {
    assert!(!fires_on(
        "\"armed forces\"",
        "they were armed",
        "",
        "forces moved"
    ));
    assert!(fires_on("\"armed forces\"", "", "", "armed forces moved"));
}

#[test]
fn phrase_with_three_words() {
    assert!(fires("\"heads of state\"", "EU heads of state met"));
    assert!(!fires("\"heads of state\"", "heads of the state"));
}

// ---------------------------------------------------------------------------
// Boolean operators
// ---------------------------------------------------------------------------

#[test]
fn and_needs_both_anywhere_in_the_item() {
    assert!(fires("troops AND deployed", "troops were deployed"));
    assert!(fires(
        "troops AND deployed",
        "deployed ... later ... troops"
    ));
    assert!(!fires("troops AND deployed", "troops only"));
    // Across fields is fine for AND.
    assert!(fires_on("troops AND deployed", "troops", "", "deployed"));
}

#[test]
fn implicit_and_by_adjacency() {
    for text in [
        "troops deployed",
        "deployed far troops",
        "troops",
        "deployed",
        "",
    ] {
        assert_eq!(
            fires("troops deployed", text),
            fires("troops AND deployed", text),
            "{text}"
        );
    }
    assert!(fires("troops deployed", "deployed troops"));
    assert!(!fires("troops deployed", "troops"));
}

#[test]
fn or_needs_either() {
    assert!(fires("troops OR soldiers", "soldiers"));
    assert!(fires("troops OR soldiers", "troops"));
    assert!(!fires("troops OR soldiers", "sailors"));
}

#[test]
fn not_excludes() {
    assert!(fires("troops AND NOT exercise", "troops deployed"));
    assert!(!fires("troops AND NOT exercise", "troops in an exercise"));
    assert!(fires("troops NOT exercise", "troops deployed"));
    assert!(!fires("troops NOT exercise", "exercise troops"));
    // NOT NOT cancels.
    assert!(fires("troops AND NOT NOT exercise", "troops exercise"));
    assert!(!fires("troops AND NOT NOT exercise", "troops"));
}

#[test]
fn operators_are_uppercase_only() {
    // Lowercase "and"/"or"/"not"/"near" are ordinary words, implicitly ANDed.
    assert!(!fires("troops or soldiers", "troops"));
    assert!(fires("troops or soldiers", "troops or soldiers"));
    assert!(fires("troops not exercise", "troops not exercise"));
    assert!(!fires("troops near border", "troops border"));
}

#[test]
fn parentheses_group() {
    let q = "(troops OR soldiers) AND deploy*";
    assert!(fires(q, "soldiers deployed"));
    assert!(fires(q, "troops deployment"));
    assert!(!fires(q, "soldiers"));
    let q = "troops OR (soldiers AND deploy*)";
    assert!(fires(q, "troops"));
    assert!(!fires(q, "soldiers"));
}

#[test]
fn precedence_or_looser_than_and() {
    // a OR b AND c  ==  a OR (b AND c)
    let q = "troops OR soldiers AND deployed";
    assert!(fires(q, "troops"));
    assert!(!fires(q, "soldiers"));
    assert!(fires(q, "soldiers deployed"));
    assert!(!fires(q, "deployed"));
    // and with explicit parentheses the other way round
    let q = "(troops OR soldiers) AND deployed";
    assert!(!fires(q, "troops"));
}

#[test]
fn precedence_and_looser_than_not() {
    // x AND NOT a AND b  ==  x AND (NOT a) AND b
    let q = "troops AND NOT exercise AND border";
    assert!(fires(q, "troops border"));
    assert!(!fires(q, "troops exercise border"));
    assert!(!fires(q, "troops"));
}

#[test]
fn precedence_not_looser_than_near() {
    // NOT a NEAR/2 b  ==  NOT (a NEAR/2 b)
    let q = "troops AND NOT drill NEAR/2 exercise";
    assert!(!fires(q, "troops drill exercise"));
    assert!(fires(q, "troops drill one two three exercise"));
    assert!(fires(q, "troops exercise"));
}

#[test]
fn precedence_and_looser_than_near() {
    // a NEAR/1 b AND c  ==  (a NEAR/1 b) AND c
    let q = "troops NEAR/1 deployed AND border";
    assert!(fires(q, "border: troops deployed"));
    assert!(!fires(q, "troops were deployed to the border"));
    assert!(!fires(q, "troops deployed"));
}

// ---------------------------------------------------------------------------
// NEAR
// ---------------------------------------------------------------------------

#[test]
fn near_distance_boundaries() {
    // Adjacent tokens are at distance 1.
    assert!(fires("troops NEAR/1 deployed", "troops deployed"));
    assert!(!fires("troops NEAR/1 deployed", "troops were deployed"));
    // Distance exactly n matches, n + 1 does not.
    for n in [1u32, 2, 3, 5, 8] {
        let gap = |k: u32| {
            (1..k)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let at = |k: u32| format!("troops {} deployed", gap(k));
        let q = format!("troops NEAR/{n} deployed");
        assert!(fires(&q, &at(n)), "{q} over {:?}", at(n));
        assert!(!fires(&q, &at(n + 1)), "{q} over {:?}", at(n + 1));
    }
}

#[test]
fn near_either_order() {
    assert!(fires("troops NEAR/2 deployed", "deployed the troops"));
    assert!(fires("troops NEAR/2 deployed", "troops were deployed"));
    assert!(!fires("troops NEAR/2 deployed", "deployed to the troops"));
}

#[test]
fn near_punctuation_does_not_count() {
    assert!(fires("troops NEAR/1 deployed", "troops — deployed!"));
}

#[test]
fn near_does_not_cross_fields() {
    assert!(!fires_on(
        "troops NEAR/5 deployed",
        "troops",
        "",
        "deployed"
    ));
    assert!(!fires_on(
        "troops NEAR/5 deployed",
        "",
        "troops",
        "deployed"
    ));
    assert!(fires_on(
        "troops NEAR/5 deployed",
        "",
        "troops deployed",
        ""
    ));
}

#[test]
fn bare_near_is_ten() {
    let at = |k: usize| format!("troops {} deployed", vec!["w"; k - 1].join(" "));
    assert!(fires("troops NEAR deployed", &at(10)));
    assert!(!fires("troops NEAR deployed", &at(11)));
    match parse("a NEAR b").unwrap() {
        rules::Expr::Near(_, _, n) => assert_eq!(n, 10),
        other => panic!("{other:?}"),
    }
}

#[test]
fn near_measures_from_the_ends_of_phrases() {
    // "armed forces" occupies tokens 0-1; "deployed" is token 3: distance 2.
    assert!(fires(
        "\"armed forces\" NEAR/2 deployed",
        "armed forces were deployed"
    ));
    assert!(!fires(
        "\"armed forces\" NEAR/1 deployed",
        "armed forces were deployed"
    ));
    assert!(fires(
        "deployed NEAR/2 \"armed forces\"",
        "deployed the armed forces"
    ));
}

#[test]
fn near_with_groups_on_both_sides() {
    let q = "(troops OR soldiers) NEAR/3 (deploy* OR sent)";
    assert!(fires(q, "soldiers were sent"));
    assert!(fires(q, "deployment of troops"));
    assert!(!fires(
        q,
        "soldiers stayed home; later, much later, the ships were sent"
    ));
}

#[test]
fn near_chains() {
    // (a NEAR/1 b) NEAR/1 c
    let q = "north NEAR/1 korean NEAR/1 troops";
    assert!(fires(q, "north korean troops"));
    assert!(!fires(q, "north korean elite troops"));
}

#[test]
fn near_with_an_and_group_uses_any_of_its_terms() {
    // Once the AND is true, each of its terms counts as a position for NEAR.
    let q = "(troops AND border) NEAR/2 deployed";
    assert!(fires(
        q,
        "troops deployed; far, far away, later, the border"
    ));
    assert!(fires(
        q,
        "troops far, far away, later, the border was deployed"
    ));
    assert!(!fires(q, "troops deployed"));
}

#[test]
fn near_overlapping_terms_are_at_distance_zero() {
    assert!(fires("korea NEAR/1 \"north korea\"", "North Korea"));
}

// ---------------------------------------------------------------------------
// Field scopes
// ---------------------------------------------------------------------------

#[test]
fn title_scope() {
    assert!(fires_on("title:troops", "Troops deployed", "", ""));
    assert!(!fires_on("title:troops", "Deployment", "troops", "troops"));
}

#[test]
fn summary_and_content_scopes() {
    assert!(fires_on("summary:troops", "", "troops", ""));
    assert!(!fires_on("summary:troops", "troops", "", "troops"));
    assert!(fires_on("content:troops", "", "", "troops"));
    assert!(!fires_on("content:troops", "troops", "troops", ""));
}

#[test]
fn scope_applies_to_groups_phrases_and_prefixes() {
    let q = "title:(troops OR \"armed forces\" OR deploy*)";
    assert!(fires_on(q, "Armed forces on alert", "", ""));
    assert!(fires_on(q, "Deployment begins", "", ""));
    assert!(!fires_on(q, "Alert", "armed forces", "troops deployed"));
    // A scope binds to the next primary only.
    let q = "title:troops deployed";
    assert!(fires_on(q, "troops", "", "deployed"));
    assert!(!fires_on(q, "deployed", "", "troops"));
}

#[test]
fn scoped_near() {
    let q = "title:(troops NEAR/2 deployed)";
    assert!(fires_on(q, "troops deployed", "", ""));
    assert!(!fires_on(q, "", "", "troops deployed"));
}

// ---------------------------------------------------------------------------
// Entities and kinds
// ---------------------------------------------------------------------------

#[test]
fn entity_by_canonical_name() {
    assert!(fires("entity:\"North Korea\"", "troops from North Korea"));
    assert!(fires("entity:\"North Korea\"", "troops from NORTH KOREA"));
    assert!(!fires("entity:\"North Korea\"", "troops from South Korea"));
    assert!(!fires("entity:\"North Korea\"", "north and korea"));
}

#[test]
fn entity_by_alias_id_demonym_and_link() {
    // The query may name the entity by alias or id …
    assert!(fires("entity:\"DPRK\"", "troops from North Korea"));
    assert!(fires("entity:DPRK", "troops from North Korea"));
    assert!(fires("entity:kp", "troops from North Korea"));
    // … and the text may mention it by alias, demonym or linked place.
    assert!(fires("entity:\"North Korea\"", "the DPRK says"));
    assert!(fires("entity:\"North Korea\"", "North Korean soldiers"));
    assert!(fires(
        "entity:\"North Korea\"",
        "a statement from Pyongyang"
    ));
    assert!(fires("entity:Russia", "Russian troops"));
    assert!(fires("entity:Russia", "Russia's troops"));
}

#[test]
fn entity_cased_short_forms() {
    assert!(fires("entity:\"United States\"", "US troops"));
    assert!(fires("entity:\"United States\"", "U.S. troops"));
    assert!(!fires("entity:\"United States\"", "let us go"));
    assert!(fires("entity:EU", "eu leaders"));
    assert!(fires("entity:\"European Union\"", "EU leaders"));
}

#[test]
fn entity_person_spelling_variants() {
    for text in [
        "Zelensky said",
        "Zelenskiy said",
        "Selenskyj sagte",
        "ZELENSKYY",
    ] {
        assert!(fires("entity:\"Volodymyr Zelenskyy\"", text), "{text}");
    }
}

#[test]
fn entity_scope() {
    assert!(fires_on("title:entity:Ukraine", "Ukraine", "", ""));
    assert!(!fires_on("title:entity:Ukraine", "", "Ukraine", "Kyiv"));
}

#[test]
fn kind_needs_distinct_entities() {
    assert!(fires("kind:country", "Ukraine"));
    assert!(!fires("kind:country", "troops"));
    assert!(fires("kind:country>=2", "Russia and Ukraine"));
    assert!(fires("kind:country>=2", "Russian troops near Kyiv"));
    // The same country twice, by any name, is one country.
    assert!(!fires("kind:country>=2", "Russia and Russia"));
    assert!(!fires(
        "kind:country>=2",
        "Russia, Moscow and Russian troops"
    ));
    assert!(fires("kind:country>=3", "Russia, Ukraine and France"));
    assert!(!fires("kind:country>=3", "Russia, Ukraine and NATO"));
    // Distinct entities are counted across fields.
    assert!(fires_on("kind:country>=2", "Russia", "", "Ukraine"));
    // A scope restricts the count to the field.
    assert!(!fires_on("title:kind:country>=2", "Russia", "", "Ukraine"));
}

#[test]
fn kind_other_kinds() {
    assert!(fires("kind:org", "NATO allies"));
    assert!(!fires("kind:org", "France"));
    assert!(fires("kind:person", "Zelenskyy spoke"));
    assert!(fires("kind:place", "fighting in Kursk"));
}

#[test]
fn kind_from_custom_gazetteer() {
    let toml = r#"
[[entity]]
id = "acme"
name = "Acme Corp"
kind = "company"
aliases = ["Acme"]

[[entity]]
id = "globex"
name = "Globex"
kind = "company"
"#;
    let gaz = Gazetteer::build(vec![GazetteerFile::parse(toml, "custom.toml").unwrap()]);
    let set = rules::compile(
        [
            ("one", "kind:company"),
            ("two", "kind:company>=2"),
            ("acme", "entity:acme"),
        ],
        &gaz,
    )
    .unwrap();
    let fired = |text: &str| -> Vec<usize> {
        let doc = Document::new("", "", text, &gaz);
        set.evaluate(&doc).iter().map(|m| m.rule).collect()
    };
    assert_eq!(fired("ACME results"), [0, 2]);
    assert_eq!(fired("Acme Corp buys Globex"), [0, 1, 2]);
    assert_eq!(fired("nothing here"), Vec::<usize>::new());
    // Base kinds exist even when the gazetteer has no entities of them.
    assert!(rules::compile([("c", "kind:country")], &gaz).is_ok());
}

// ---------------------------------------------------------------------------
// Regular expressions
// ---------------------------------------------------------------------------

#[test]
fn regex_runs_over_folded_text() {
    assert!(fires(r"/\d+ troops/", "About 12,000 Troops were sent"));
    assert!(fires(r"/troops? (was|were) sent/", "Troops were SENT"));
    // Folded text: accents gone, punctuation gone, single spaces.
    assert!(fires(r"/selestat/", "in Sélestat!"));
    assert!(fires(r"/u s troops/", "U.S. troops"));
    assert!(fires(r"/russia s army/", "Russia's army"));
    // Uppercase in the pattern never matches folded text.
    assert!(!fires(r"/Troops/", "Troops"));
}

#[test]
fn regex_sees_framing_spaces() {
    // Leading and trailing space: " troops " matches a whole word at either end.
    assert!(fires(r"/ troops /", "troops"));
    assert!(fires(r"/ troop/", "troopships"));
    assert!(!fires(r"/ troop /", "troops"));
}

#[test]
fn regex_with_scope_and_other_terms() {
    assert!(fires_on(
        r"title:/sanction\w*/ AND entity:Russia",
        "Sanctions",
        "",
        "Russia"
    ));
    assert!(!fires_on(
        r"title:/sanction\w*/ AND entity:Russia",
        "",
        "",
        "Sanctions on Russia"
    ));
    assert!(fires(r"/rus\w*/ NEAR/2 troops", "Russian troops"));
    assert!(!fires(
        r"/rus\w*/ NEAR/2 troops",
        "Russian armour and then troops"
    ));
}

#[test]
fn regex_with_escaped_slash() {
    assert!(fires(r"/a\/b|troops/", "troops"));
    assert_eq!(
        parse(r"/a\/b/").unwrap(),
        parse(r"/a\/b/").unwrap(),
        "an escaped slash stays inside the regex"
    );
    match parse(r"/a\/b/").unwrap() {
        rules::Expr::Regex { pattern, .. } => assert_eq!(pattern, "a/b"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Explanations
// ---------------------------------------------------------------------------

fn hit<'a>(hits: &'a [Hit], term: &str) -> &'a Hit {
    hits.iter()
        .find(|h| h.term == term)
        .unwrap_or_else(|| panic!("no hit {term:?} in {hits:#?}"))
}

#[test]
fn hits_explain_terms_with_original_text() {
    let content = "North Korean soldiers were DEPLOYED to Kursk, officials in Séoul said.";
    let query = "(troops OR soldiers) NEAR/5 deploy* AND entity:\"North Korea\"";
    let (doc, matches) = evaluate(query, "", "", content);
    assert_eq!(matches.len(), 1);
    let hits = &matches[0].hits;
    let original = &doc.field(Field::Content).original;

    let soldiers = hit(hits, "soldiers");
    assert_eq!(soldiers.field, Field::Content);
    assert_eq!(&original[soldiers.range.clone()], "soldiers");

    let deploy = hit(hits, "deploy*");
    assert_eq!(&original[deploy.range.clone()], "DEPLOYED");
    assert!(deploy.snippet.contains("DEPLOYED"), "{}", deploy.snippet);
    assert!(
        deploy.snippet.contains("North Korean soldiers"),
        "{}",
        deploy.snippet
    );

    let entity = hit(hits, "entity:\"North Korea\" = North Korea");
    assert_eq!(&original[entity.range.clone()], "North Korean");
    // A term that did not occur has no hit.
    assert!(hits.iter().all(|h| h.term != "troops"));
}

#[test]
fn hits_carry_field_and_scope_label() {
    let (doc, matches) = evaluate(
        "title:Sélestat OR summary:\"armed forces\"",
        "Flood in SÉLESTAT",
        "the Armed Forces helped",
        "",
    );
    let hits = &matches[0].hits;
    let title = hit(hits, "title:selestat");
    assert_eq!(title.field, Field::Title);
    assert_eq!(
        &doc.field(Field::Title).original[title.range.clone()],
        "SÉLESTAT"
    );
    assert!(title.snippet.contains("SÉLESTAT"), "{}", title.snippet);
    let phrase = hit(hits, "summary:\"armed forces\"");
    assert_eq!(phrase.field, Field::Summary);
    assert_eq!(
        &doc.field(Field::Summary).original[phrase.range.clone()],
        "Armed Forces"
    );
}

#[test]
fn hits_for_kinds_name_each_entity() {
    let (doc, matches) = evaluate("kind:country>=2", "", "", "Russian troops entered Ukraine.");
    let hits = &matches[0].hits;
    let ru = hit(hits, "kind:country>=2 = Russia");
    assert_eq!(
        &doc.field(Field::Content).original[ru.range.clone()],
        "Russian"
    );
    let ua = hit(hits, "kind:country>=2 = Ukraine");
    assert_eq!(
        &doc.field(Field::Content).original[ua.range.clone()],
        "Ukraine"
    );
}

#[test]
fn hits_for_regex_cover_tokens() {
    let (doc, matches) = evaluate(r"/\d+ troops/", "", "", "About 12,000 troops");
    let hits = &matches[0].hits;
    let h = hit(hits, r"/\d+ troops/");
    // The folded text is "about 12 000 troops": the match covers "000 troops".
    assert_eq!(
        &doc.field(Field::Content).original[h.range.clone()],
        "000 troops"
    );
}

#[test]
fn snippets_are_short_and_marked() {
    let filler = "word ".repeat(60);
    let content = format!("{filler}Troops deployed {filler}");
    let (_, matches) = evaluate("troops", "", "", &content);
    let h = &matches[0].hits[0];
    assert!(
        h.snippet.starts_with('…') && h.snippet.ends_with('…'),
        "{}",
        h.snippet
    );
    assert!(h.snippet.contains("Troops deployed"), "{}", h.snippet);
    assert!(h.snippet.len() < 200, "{}", h.snippet);
}

#[test]
fn hits_are_bounded() {
    let content = "troops ".repeat(100);
    let (_, matches) = evaluate("troops", "", "", &content);
    assert!(!matches[0].hits.is_empty());
    assert!(matches[0].hits.len() <= rules::MAX_HITS);
}

#[test]
fn rule_indices_follow_input_order() {
    let set = rules::compile(
        [
            ("a", "troops"),
            ("b", "sanctions"),
            ("c", "troops AND sanctions"),
            ("d", "summit"),
        ],
        &GAZ,
    )
    .unwrap();
    let doc = Document::new("", "", "sanctions and troops", &GAZ);
    let fired: Vec<usize> = set.evaluate(&doc).iter().map(|m| m.rule).collect();
    assert_eq!(fired, [0, 1, 2]);
    assert_eq!(set.rules()[2].id, "c");
}

// ---------------------------------------------------------------------------
// Error messages
// ---------------------------------------------------------------------------

#[test]
fn error_term_after_not() {
    assert_eq!(
        parse_error("troops AND NOT"),
        ("expected a term after NOT".into(), "<end>".into())
    );
    let e = parse("troops AND NOT").unwrap_err();
    assert_eq!(e.span, 14..15, "points just past the end");
    let (message, at) = parse_error("troops AND NOT )");
    assert_eq!(message, "expected a term after NOT, found ')'");
    assert_eq!(at, ")");
}

#[test]
fn error_term_after_and_or_near() {
    assert_eq!(parse_error("troops OR").0, "expected a term after OR");
    let (message, at) = parse_error("troops AND OR x");
    assert_eq!(message, "expected a term after AND, found OR");
    assert_eq!(at, "OR");
    assert_eq!(parse_error("troops NEAR/3").0, "expected a term after NEAR");
}

#[test]
fn error_unbalanced_parenthesis() {
    let q = "deploy* AND (troops OR soldiers";
    let e = parse(q).unwrap_err();
    assert_eq!(
        e.message,
        "unbalanced parenthesis opened here: expected ')'"
    );
    assert_eq!(e.span, 12..13);
    assert_eq!(&q[e.span], "(");
    assert_eq!(
        parse_error("troops)"),
        (
            "unbalanced parenthesis: nothing to close here".into(),
            ")".into()
        )
    );
    assert_eq!(
        parse_error("()"),
        (
            "empty parentheses: expected a term inside".into(),
            "(".into()
        )
    );
}

#[test]
fn error_near_distance() {
    for (q, token) in [
        ("troops NEAR/0 deployed", "NEAR/0"),
        ("troops NEAR/1001 deployed", "NEAR/1001"),
        ("troops NEAR/x deployed", "NEAR/x"),
        ("troops NEAR/ deployed", "NEAR/"),
    ] {
        assert_eq!(
            parse_error(q),
            (
                "NEAR needs a distance between 1 and 1000, as in NEAR/5".into(),
                token.into()
            ),
            "{q}"
        );
    }
    assert!(parse("troops NEAR/1000 deployed").is_ok());
}

#[test]
fn error_near_with_not() {
    let msg = "NEAR needs terms that occur in the text on both sides; move NOT outside the NEAR";
    assert_eq!(parse_error("troops NEAR NOT deployed").0, msg);
    assert_eq!(parse_error("x AND (NOT a) NEAR b").0, msg);
    assert_eq!(
        parse_error("x AND a NEAR (NOT b)"),
        (msg.into(), "NEAR".into())
    );
}

#[test]
fn error_unknown_kind_comes_from_compile() {
    let q = "troops AND kind:contry>=2";
    // The syntax is fine: kinds are resolved against the gazetteer.
    assert!(parse(q).is_ok());
    let (message, at) = compile_error(q);
    assert_eq!(message, "unknown kind \"contry\" — did you mean country?");
    assert_eq!(at, "kind:contry>=2");
    let (message, at) = compile_error("kind:banana");
    assert_eq!(message, "unknown kind \"banana\"");
    assert_eq!(at, "kind:banana");
}

#[test]
fn error_unknown_entity_with_suggestion() {
    let q = "troops AND entity:\"North Koera\"";
    assert!(parse(q).is_ok());
    let (message, at) = compile_error(q);
    assert_eq!(
        message,
        "unknown entity \"North Koera\" — did you mean North Korea?"
    );
    assert_eq!(at, "entity:\"North Koera\"");
    let (message, at) = compile_error("entity:Atlantis");
    assert_eq!(message, "unknown entity \"Atlantis\"");
    assert_eq!(at, "entity:Atlantis");
}

#[test]
fn error_unterminated_phrase() {
    let q = "troops AND \"armed forces";
    let e = parse(q).unwrap_err();
    assert_eq!(e.message, "unterminated phrase: this quote is never closed");
    assert_eq!(e.span, 11..12);
}

#[test]
fn error_invalid_regex() {
    let q = "troops AND /(unclosed/";
    let (message, at) = parse_error(q);
    assert!(message.starts_with("invalid regex: "), "{message}");
    assert!(message.contains("unclosed group"), "{message}");
    assert_eq!(at, "/(unclosed/");
    let (message, at) = parse_error("troops /open");
    assert_eq!(message, "unterminated regex: expected a closing '/'");
    assert_eq!(at, "/");
}

#[test]
fn error_unknown_field_with_suggestion() {
    let q = "troops AND titel:deployed";
    let (message, at) = parse_error(q);
    assert_eq!(
        message,
        "unknown field \"titel:\" — did you mean title:? (fields are title:, summary:, content:, entity:, kind:)"
    );
    assert_eq!(at, "titel:");
    let (message, _) = parse_error("entiy:Russia");
    assert!(message.contains("did you mean entity:?"), "{message}");
    let (message, at) = parse_error("author:smith");
    assert_eq!(
        message,
        "unknown field \"author:\" (fields are title:, summary:, content:, entity:, kind:)"
    );
    assert_eq!(at, "author:");
}

#[test]
fn error_prefix_too_short() {
    let (message, at) = parse_error("troops AND d*");
    assert_eq!(message, "a prefix needs at least 2 letters before '*'");
    assert_eq!(at, "d");
    assert!(parse("de*").is_ok());
    let (message, at) = parse_error("* troops");
    assert_eq!(message, "'*' must follow a word, as in deploy*");
    assert_eq!(at, "*");
    // The star must touch the word.
    let (message, at) = parse_error("deploy * troops");
    assert_eq!(
        message,
        "expected AND, OR or the end of the query, found '*'"
    );
    assert_eq!(at, "*");
}

#[test]
fn error_empty_query() {
    for q in ["", "   ", "\n\t"] {
        let e = parse(q).unwrap_err();
        assert_eq!(e.message, "empty query: expected a term", "{q:?}");
        assert_eq!(e.span, 0..q.len().max(1));
    }
    let (message, at) = parse_error("\"...\"");
    assert_eq!(message, "\"...\" has no letters or digits to match");
    assert_eq!(at, "\"...\"");
}

#[test]
fn error_only_negative_query() {
    let expected = "this query matches items that lack something, so it would fire on almost every item: \
                    it needs at least one term that must be present";
    for q in [
        "NOT exercise",
        "troops OR NOT exercise",
        "NOT (a AND b)",
        "(NOT a) OR (NOT b)",
    ] {
        let e = parse(q).unwrap_err();
        assert_eq!(e.message, expected, "{q}");
        assert_eq!(e.span, 0..q.len(), "the whole query is at fault: {q}");
    }
    assert!(parse("troops AND NOT exercise").is_ok());
    assert!(parse("(troops OR soldiers) NOT exercise").is_ok());
}

#[test]
fn error_other_located_messages() {
    assert_eq!(
        parse_error("troops soldiers)"),
        (
            "unbalanced parenthesis: nothing to close here".into(),
            ")".into()
        )
    );
    let (message, at) = parse_error("title:summary:x");
    assert_eq!(
        message,
        "summary: inside another field scope can never match"
    );
    assert_eq!(at, "summary:");
    let (message, at) = parse_error("kind:country>=0");
    assert_eq!(message, "kind:K>=N needs N between 1 and 100");
    assert_eq!(at, "0");
    let (message, at) = parse_error("troops > 2");
    assert_eq!(message, "expected '>=' (at least)");
    assert_eq!(at, ">");
    let (message, at) = parse_error("troops : x");
    assert!(message.starts_with("unexpected ':'"), "{message}");
    assert_eq!(at, ":");
    let (message, at) = parse_error("entity:(x)");
    assert_eq!(
        message,
        "entity: needs a name, as in entity:\"North Korea\""
    );
    assert_eq!(at, "entity:");
    let (message, at) = parse_error("kind:\"x\"");
    assert_eq!(
        message,
        "kind: needs a kind, as in kind:country or kind:country>=2"
    );
    assert_eq!(at, "kind:");
    let (message, at) = parse_error("kind:country>=x");
    assert_eq!(message, "kind:K>=N needs N between 1 and 100");
    assert_eq!(at, "x");
    let (message, at) = parse_error("troops AND ()");
    assert_eq!(message, "empty parentheses: expected a term inside");
    assert_eq!(at, "(");
    let (message, at) = parse_error("title:NOT x");
    assert_eq!(message, "expected a term after title:, found NOT");
    assert_eq!(at, "NOT");
}

#[test]
fn error_nesting_too_deep() {
    let nested = |n: usize| format!("{}troops{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&nested(63)).is_ok());
    let (message, _) = parse_error(&nested(64));
    assert_eq!(message, "query nests deeper than 64 levels");
}

#[test]
fn compile_reports_every_broken_rule() {
    let rules = [
        ("good-1", "troops NEAR/5 deploy*"),
        ("bad-not", "troops AND NOT"),
        ("bad-kind", "kind:contry>=2"),
        ("good-2", "entity:\"North Korea\" AND kind:country>=2"),
        ("bad-entity", "entity:\"North Koera\""),
    ];
    let errors = match rules::compile(rules, &GAZ) {
        Ok(_) => panic!("broken rules compiled"),
        Err(errors) => errors,
    };
    let ids: Vec<&str> = errors.iter().map(|e| e.rule.as_str()).collect();
    assert_eq!(ids, ["bad-not", "bad-kind", "bad-entity"]);
    assert_eq!(errors[0].error.message, "expected a term after NOT");
    assert!(
        errors[1]
            .error
            .message
            .starts_with("unknown kind \"contry\"")
    );
    assert!(
        errors[2]
            .error
            .message
            .starts_with("unknown entity \"North Koera\"")
    );
    // Spans refer to each rule's own query.
    assert_eq!(&rules[2].1[errors[1].error.span.clone()], "kind:contry>=2");
    assert_eq!(
        &rules[4].1[errors[2].error.span.clone()],
        "entity:\"North Koera\""
    );
}

// ---------------------------------------------------------------------------
// Regressions: each of these documents a defect found while writing this file
// ---------------------------------------------------------------------------

#[test]
fn kind_person_counts_guessed_names_in_both_matchers() {
    // "President Ana Costa" is not in the gazetteer; the name heuristic finds
    // it and it counts for kind:person. The reference interpreter must agree.
    let title = "President Ana Costa visits Kyiv";
    let doc = Document::new(title, "", "", &GAZ);
    assert!(!doc.guessed.is_empty(), "the heuristic guesses the name");
    assert!(fires_on("kind:person", title, "", ""));
    assert!(fires_on(
        "kind:person>=2 AND kyiv",
        title,
        "",
        "Maria Lopes said so."
    ));
}

#[test]
fn entity_by_canonical_name_that_is_also_a_cased_short_form() {
    // China, Turkey, Jordan, Georgia, Chad, Chile, Guinea, Pentagon, White House
    // and West Bank list their own name under `cased`; the name must still
    // resolve in entity:"…" (it does by id: entity:cn).
    assert!(fires("entity:cn", "China and Taiwan"));
    for (name, text) in [
        ("China", "China and Taiwan"),
        ("Turkey", "Turkey and Greece"),
        ("White House", "the White House said"),
    ] {
        let query = format!("entity:\"{name}\"");
        assert!(fires(&query, text), "{query}");
    }
}

#[test]
fn snippet_after_multibyte_whitespace_does_not_panic() {
    // The snippet start moves back to just after the nearest whitespace; with a
    // multi-byte space (U+00A0, U+3000) that must land on a char boundary.
    for space in ['\u{a0}', '\u{3000}', '\u{2003}'] {
        let filler = "x".repeat(rules::SNIPPET_CONTEXT + 5);
        let content = format!("{space}{filler}-troops");
        let (doc, matches) = evaluate("troops", "", "", &content);
        let h = &matches[0].hits[0];
        assert_eq!(
            &doc.field(Field::Content).original[h.range.clone()],
            "troops"
        );
        assert!(h.snippet.ends_with("-troops"), "{}", h.snippet);
    }
}

#[test]
fn regex_that_matches_empty_text_is_rejected() {
    // Like `NOT x`, these are true of an item with no text at all.
    for q in ["/x?/", "/.*/", "/ /", "/^/"] {
        assert!(parse(q).is_err(), "{q} would fire on every item");
    }
}

/// Runs `body` in a child process (this test binary, filtered to `name`), so a
/// stack overflow fails the test instead of aborting the whole binary.
fn in_child_process(name: &str, body: impl FnOnce()) {
    const CHILD: &str = "NEWSWATCH_RULES_OPERATORS_CHILD";
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name} crashed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn long_scope_chain_is_an_error_or_a_query_not_a_stack_overflow() {
    in_child_process(
        "long_scope_chain_is_an_error_or_a_query_not_a_stack_overflow",
        || {
            let q = "title:".repeat(10_000) + "troops";
            let _ = parse(&q);
        },
    );
}

#[test]
fn long_near_chain_is_an_error_or_a_query_not_a_stack_overflow() {
    in_child_process(
        "long_near_chain_is_an_error_or_a_query_not_a_stack_overflow",
        || {
            let q = "troops NEAR ".repeat(10_000) + "troops";
            if parse(&q).is_ok() {
                let set = rules::compile([("r", q.as_str())], &GAZ).unwrap();
                let _ = set.evaluate(&Document::new("", "", "troops troops", &GAZ));
            }
        },
    );
}

#[test]
fn near_on_very_long_items_agrees_with_the_interpreter() {
    let mut content = "troops ".repeat(5_000);
    content.push_str("deployed");
    assert!(fires("troops NEAR/1 deployed", &content));
}

// ---------------------------------------------------------------------------
// The worked examples of docs/rules.md
// ---------------------------------------------------------------------------

const TROOPS: &str = r#"(troops OR soldiers OR "armed forces" OR servicemen)
  NEAR/12 (send* OR sent OR deploy* OR "fight alongside")
AND kind:country>=2
AND NOT (exercise* OR drill* OR "war games")"#;

const EU_SUMMIT: &str = r#"(entity:"European Union" OR entity:"European Council")
  NEAR/8 (summit OR "heads of state" OR leaders OR "foreign ministers")"#;

const SANCTIONS: &str = r#"(sanction* OR embargo OR "asset freeze" OR "export controls")
  NEAR/10 (impose* OR announc* OR new OR extend* OR package)
AND entity:Iran
AND NOT (lift* OR eas*)"#;

const CYBER: &str = r#"(cyberattack* OR "cyber attack"* OR ransomware OR hacker* OR ddos)
  NEAR/15 (hospital* OR grid OR ministry OR airport* OR bank* OR pipeline*)
AND NOT (webinar OR "how to")"#;

const ELECTION: &str = r#"title:(election* OR elected OR runoff OR referendum)
AND (won OR wins OR winner* OR victory OR concede* OR landslide
     OR /\b\d+ (\d+ )?(per cent|percent)\b/)"#;

#[test]
fn docs_example_troop_deployment() {
    assert!(fires_on(
        TROOPS,
        "North Korea sends troops to Russia",
        "",
        "Seoul said about 1,500 North Korean soldiers had been sent to Russia."
    ));
    assert!(!fires(
        TROOPS,
        "Polish and Lithuanian troops deployed for a NATO exercise."
    ));
    assert!(!fires(
        TROOPS,
        "The soldiers were sent home after the parade."
    ));
}

#[test]
fn docs_example_eu_summit() {
    assert!(fires(EU_SUMMIT, "EU leaders meet in Brussels on Thursday"));
    assert!(fires(EU_SUMMIT, "the European Council summit on defence"));
    assert!(!fires(
        EU_SUMMIT,
        "The EU said on Monday it would review the rules; a summit of G7 leaders is due in June"
    ));
}

#[test]
fn docs_example_sanctions() {
    assert!(fires(
        SANCTIONS,
        "The EU imposed new sanctions on Iran over drone exports."
    ));
    assert!(fires(
        SANCTIONS,
        "Washington announced an asset freeze targeting Iranian officials."
    ));
    assert!(!fires(
        SANCTIONS,
        "The US eased sanctions on Iran's oil sector."
    ));
    assert!(!fires(
        SANCTIONS,
        "New sanctions on Venezuela were announced."
    ));
}

#[test]
fn docs_example_cyber_attack() {
    assert!(fires(
        CYBER,
        "A ransomware attack hit three hospitals in Berlin."
    ));
    assert!(fires(
        CYBER,
        "A cyber-attack on the power grid left 200,000 without electricity."
    ));
    assert!(fires(
        CYBER,
        "Hackers breached the foreign ministry's email servers."
    ));
    assert!(!fires(
        CYBER,
        "Join our webinar on ransomware defence for hospitals."
    ));
}

#[test]
fn docs_example_election_result() {
    assert!(fires_on(
        ELECTION,
        "Election: incumbent wins second term",
        "",
        ""
    ));
    assert!(fires_on(
        ELECTION,
        "Runoff in Romania",
        "",
        "The centrist candidate took 53.6 per cent of the vote."
    ));
    assert!(!fires_on(
        ELECTION,
        "Election campaign opens",
        "",
        "Polls open in May."
    ));
    // "elect*" would have matched "electricity"; election* does not.
    assert!(!fires_on(
        ELECTION,
        "Electricity prices: winners and losers",
        "",
        ""
    ));
}

#[test]
fn a_word_shared_by_many_rules_meets_each_of_them() {
    // `troops` is a requirement of nine rules (more than the four postings
    // per term gathered at once), in different fields; the last term of the
    // set has no postings at all (it only appears under NOT).
    let queries = [
        "troops",
        "troops AND border",
        "title:troops",
        "troops NEAR/3 border",
        "summary:troops",
        "troops AND NOT exercise",
        "deploy* AND troops",
        "\"foreign troops\"",
        "troops AND navy",
        "border AND NOT zzqx",
    ];
    let set = rules::compile(queries.iter().map(|q| ("r", *q)), &GAZ).expect("compiles");
    let doc = Document::new(
        "Troops at the border",
        "",
        "Foreign troops were deployed near the border.",
        &GAZ,
    );
    let fired: Vec<usize> = set.evaluate(&doc).iter().map(|m| m.rule).collect();
    assert_eq!(fired, [0, 1, 2, 3, 5, 6, 7, 9]);
    for (i, q) in queries.iter().enumerate() {
        let reference = interpret::matches(&parse(q).expect("parses"), &doc, &GAZ);
        assert_eq!(fired.contains(&i), reference, "{q}");
    }
}
