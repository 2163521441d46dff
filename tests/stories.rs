//! Stories across sources: paraphrased reports of one event from different
//! feeds form one story (one alert, "sources": n), unrelated stories about the
//! same country stay apart.

mod common;

use common::{Sandbox, builtin_rules, stderr};

fn rss(items: &[(&str, &str, &str)]) -> String {
    let date = (chrono::Utc::now() - chrono::Duration::minutes(20)).to_rfc2822();
    let mut xml = String::from("<rss version=\"2.0\"><channel><title>t</title>");
    for (guid, title, summary) in items {
        xml.push_str(&format!(
            "<item><guid>{guid}</guid><title>{title}</title><description>{summary}</description><pubDate>{date}</pubDate></item>"
        ));
    }
    xml.push_str("</channel></rss>");
    xml
}

/// A wire feed: one RSS channel of `(guid, title, published)` items.
fn wire(items: &[(String, String, chrono::DateTime<chrono::Utc>)]) -> String {
    let mut xml = String::from("<rss version=\"2.0\"><channel><title>wire</title>");
    for (guid, title, at) in items {
        xml.push_str(&format!(
            "<item><guid>{guid}</guid><title>{title}</title><pubDate>{}</pubDate></item>",
            at.to_rfc2822()
        ));
    }
    xml.push_str("</channel></rss>");
    xml
}

/// The current time, after waiting out the last seconds of a clock hour so
/// that a burst published "now" stays within one hour.
fn now_within_the_hour() -> chrono::DateTime<chrono::Utc> {
    if chrono::Utc::now().timestamp() % 3600 > 3580 {
        std::thread::sleep(std::time::Duration::from_secs(25));
    }
    chrono::Utc::now()
}

#[test]
fn paraphrases_cluster_and_unrelated_stories_do_not() {
    let sandbox = Sandbox::new();
    let feeds = [
        rss(&[
            (
                "a1",
                "North Korea sends thousands of soldiers to Russia's Kursk region",
                "Pyongyang has dispatched troops to fight alongside Russian forces in Kursk, Ukrainian intelligence said.",
            ),
            (
                "a2",
                "Russia's central bank raises its key interest rate to 21 percent",
                "The Bank of Russia lifted borrowing costs again to fight inflation in the overheated economy.",
            ),
        ]),
        rss(&[
            (
                "b1",
                "Pyongyang dispatches troops to Kursk to back Russian forces",
                "Thousands of North Korean soldiers have arrived in the Kursk region to fight alongside Russia, according to Kyiv.",
            ),
            (
                "b2",
                "Russia stays banned from Olympic qualifying events",
                "The sports court upheld the ban on Russian teams for the next season of qualifiers.",
            ),
        ]),
        rss(&[
            (
                "c1",
                "Ukraine says North Korean soldiers now fight alongside Russian troops in Kursk",
                "Kyiv intelligence says thousands of troops sent by Pyongyang are in the Kursk region.",
            ),
            (
                "c2",
                "Inflation pushes Russia's central bank to raise the key rate again",
                "Russia's central bank raised its key interest rate as inflation stayed high.",
            ),
        ]),
    ];
    let mut config = String::new();
    for (i, feed) in feeds.iter().enumerate() {
        let path = sandbox.path(&format!("feed{i}.xml"));
        std::fs::write(&path, feed).unwrap();
        config.push_str(&format!(
            "[[feeds]]\nurl = \"{}\"\nname = \"Desk {i}\"\n\n",
            path.display()
        ));
    }
    sandbox.write_config(&format!("{config}{}", builtin_rules()));
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // One troop-deployment alert for the story carried by three desks.
    let alerts = sandbox.alerts();
    let troop: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "troop-deployment")
        .collect();
    assert_eq!(troop.len(), 1, "{alerts:#?}");

    let out = sandbox.run(&["stories", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stories: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_sources: Vec<(u64, usize)> = stories
        .iter()
        .map(|s| {
            (
                s["sources"].as_u64().unwrap(),
                s["items"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(stories.len(), 3, "troops, rates, sports: {stories:#?}");
    assert_eq!(by_sources[0], (3, 3), "{stories:#?}");
    assert_eq!(by_sources[1], (2, 2), "the two rate stories: {stories:#?}");
    assert_eq!(
        by_sources[2],
        (1, 1),
        "the sports story stays alone: {stories:#?}"
    );
    assert_eq!(troop[0]["story"], stories[0]["id"]);

    // A later source of the same story raises no new alert but counts.
    let later = rss(&[(
        "d1",
        "Kursk: thousands of North Korean troops fight alongside Russian soldiers",
        "Troops sent by Pyongyang are fighting alongside Russian forces in the Kursk region, Kyiv said.",
    )]);
    let path = sandbox.path("feed3.xml");
    std::fs::write(&path, later).unwrap();
    let text = std::fs::read_to_string(sandbox.config_path()).unwrap();
    std::fs::write(
        sandbox.config_path(),
        text.replacen(
            "[[feeds]]",
            &format!(
                "[[feeds]]\nurl = \"{}\"\nname = \"Desk 3\"\n\n[[feeds]]",
                path.display()
            ),
            1,
        ),
    )
    .unwrap();
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sandbox
            .alerts()
            .iter()
            .filter(|a| a["rule"] == "troop-deployment")
            .count(),
        1
    );
    let out = sandbox.run(&["stories"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().nth(1).unwrap().trim_start().starts_with("4 "),
        "{table}"
    );
    assert!(table.contains("- Desk 3: Kursk: thousands"), "{table}");
}

#[test]
fn a_sudden_surge_is_detected_and_a_steady_background_is_not() {
    let now = now_within_the_hour();
    let mut items = Vec::new();
    let mut push = |guid: String, title: String, at| items.push((guid, title, at));
    // A week of one item an hour about each country.
    for h in 1..=168 {
        let at = now - chrono::Duration::hours(h);
        push(
            format!("md-{h}"),
            format!("Moldova weekly bulletin number {h} on farm output"),
            at,
        );
        push(
            format!("ee-{h}"),
            format!("Estonia weekly bulletin number {h} on port traffic"),
            at,
        );
    }
    // This hour: Estonia as usual, Moldova everywhere.
    push("ee-now".into(), "Estonia port traffic steady".into(), now);
    let topics = [
        "election",
        "protest",
        "parliament",
        "president",
        "border",
        "energy",
        "gas",
        "court",
        "police",
        "minister",
        "capital",
        "vote",
    ];
    for (i, topic) in topics.iter().enumerate() {
        push(
            format!("md-now-{i}"),
            format!("Moldova {topic} developments {i} draw attention"),
            now,
        );
    }
    let xml = wire(&items);

    let sandbox = Sandbox::new();
    let feed = sandbox.path("wire.xml");
    std::fs::write(&feed, xml).unwrap();
    sandbox.write_config(&format!("[[feeds]]\nurl = \"{}\"\n", feed.display()));
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = sandbox.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["rule"], "surge");
    assert_eq!(alerts[0]["title"], "Surge: Moldova");
    assert_eq!(alerts[0]["surge"]["last_hour"], 12);
    let baseline = alerts[0]["surge"]["baseline"].as_f64().unwrap();
    assert!((0.9..=1.1).contains(&baseline), "{baseline}");
    // The burst's items share a template, so they form few stories.
    let top = alerts[0]["surge"]["top_stories"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 3, "{top:?}");
    assert!(
        top.iter()
            .all(|t| t.as_str().unwrap().starts_with("Moldova")),
        "{top:?}"
    );

    // Once raised, not again within the cooldown.
    let out = sandbox.run(&["once"]);
    assert!(out.status.success());
    assert_eq!(sandbox.alerts().len(), 1);
}

/// A configuration with the built-in rules, a follow-up at 3 sources, and one
/// feed file per report (title, summary), each carrying that one item.
fn story_desks(sandbox: &Sandbox, reports: &[(&str, &str)]) {
    let mut config = String::from("[stories]\nfollowup_sources = [3]\n\n");
    for (i, (title, summary)) in reports.iter().enumerate() {
        let path = sandbox.path(&format!("desk{i}.xml"));
        std::fs::write(&path, rss(&[(&format!("k{i}"), title, summary)])).unwrap();
        config.push_str(&format!(
            "[[feeds]]\nurl = \"{}\"\nname = \"Desk {i}\"\n\n",
            path.display()
        ));
    }
    sandbox.write_config(&format!("{config}{}", builtin_rules()));
}

#[test]
fn a_story_reaching_more_sources_gets_one_follow_up() {
    let sandbox = Sandbox::new();
    let reports = [
        (
            "North Korea sends thousands of soldiers to Russia's Kursk region",
            "Pyongyang has dispatched troops to fight alongside Russian forces in Kursk, Ukrainian intelligence said.",
        ),
        (
            "Pyongyang dispatches troops to Kursk to back Russian forces",
            "Thousands of North Korean soldiers have arrived in the Kursk region to fight alongside Russia, according to Kyiv.",
        ),
        (
            "Ukraine says North Korean soldiers now fight alongside Russian troops in Kursk",
            "Kyiv intelligence says thousands of troops sent by Pyongyang are in the Kursk region.",
        ),
        (
            "Kursk: thousands of North Korean troops fight alongside Russian soldiers",
            "Troops sent by Pyongyang are fighting alongside Russian forces in the Kursk region, Kyiv said.",
        ),
    ];
    let feeds = |n: usize| story_desks(&sandbox, &reports[..n]);
    let troop_alerts = || -> Vec<serde_json::Value> {
        sandbox
            .alerts()
            .into_iter()
            .filter(|a| a["rule"] == "troop-deployment")
            .collect()
    };

    feeds(3);
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = troop_alerts();
    assert_eq!(alerts.len(), 2, "the alert and one follow-up: {alerts:#?}");
    let first = alerts.iter().find(|a| a.get("followup").is_none()).unwrap();
    let follow = alerts.iter().find(|a| a["followup"] == 3).unwrap();
    assert_eq!(follow["story"], first["story"]);
    assert_eq!(follow["sources"], 3);
    assert_eq!(
        follow["item"], first["item"],
        "the follow-up repeats the first item"
    );
    assert_ne!(follow["id"], first["id"]);
    assert!(
        follow["title"]
            .as_str()
            .unwrap()
            .ends_with("(now 3 sources)"),
        "{follow:#?}"
    );

    // A fourth source crosses no new threshold: nothing more.
    feeds(4);
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(troop_alerts().len(), 2);
}

#[test]
fn sources_joining_a_story_at_once_get_one_follow_up_between_them() {
    // The alert first, then many feeds carrying the story in one run: their
    // polls end at the same time, and each sees the story past 3 sources.
    let sandbox = Sandbox::new();
    let title = "North Korea sends thousands of soldiers to Russia's Kursk region";
    let summary = "Pyongyang has dispatched troops to fight alongside Russian forces in Kursk, Ukrainian intelligence said.";
    let feeds = |n: usize| story_desks(&sandbox, &vec![(title, summary); n]);
    feeds(1);
    assert!(sandbox.run(&["once"]).status.success());
    for round in 0..4 {
        feeds(2 + 12 * (round + 1));
        let out = sandbox.run(&["once"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let followups: Vec<serde_json::Value> = sandbox
            .alerts()
            .into_iter()
            .filter(|a| a["rule"] == "troop-deployment" && a.get("followup").is_some())
            .collect();
        assert_eq!(followups.len(), 1, "round {round}: {followups:#?}");
    }
}

#[test]
fn a_rule_matching_far_more_than_usual_raises_a_rule_surge() {
    let now = now_within_the_hour();
    let mut items = Vec::new();
    let mut push = |guid: String, title: String, at| items.push((guid, title, at));
    // A week of one harbour closure and one grain shipment an hour.
    for h in 1..=168 {
        let at = now - chrono::Duration::hours(h);
        push(
            format!("h-{h}"),
            format!("Harbour closure notice {h} for small craft"),
            at,
        );
        push(
            format!("g-{h}"),
            format!("Grain shipment report {h} from the river terminal"),
            at,
        );
    }
    // This hour: grain as usual, harbour closures everywhere.
    push(
        "g-now".into(),
        "Grain shipment report from the river terminal".into(),
        now,
    );
    let places = [
        "north",
        "south",
        "east",
        "west",
        "inner",
        "outer",
        "fishing",
        "ferry",
        "container",
        "naval",
        "marina",
        "oil",
    ];
    for (i, place) in places.iter().enumerate() {
        push(
            format!("h-now-{i}"),
            format!("Harbour closure hits the {place} docks"),
            now,
        );
    }
    let xml = wire(&items);

    let sandbox = Sandbox::new();
    let feed = sandbox.path("wire.xml");
    std::fs::write(&feed, xml).unwrap();
    sandbox.write_config(&format!(
        "[defaults]\ncatch_up = \"1m\"\n\n[[feeds]]\nurl = \"{}\"\n\n\
         [[rules]]\nid = \"harbour\"\ntitle = \"Harbour closures\"\nquery = \"harbour closure*\"\n\n\
         [[rules]]\nid = \"grain\"\nquery = \"grain shipment\"\n",
        feed.display()
    ));
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = sandbox.alerts();
    let surges: Vec<_> = alerts.iter().filter(|a| a["rule"] == "surge").collect();
    assert_eq!(surges.len(), 1, "{alerts:#?}");
    let surge = surges[0];
    assert_eq!(surge["title"], "Surge: Harbour closures");
    assert_eq!(surge["surge"]["rule"], "harbour");
    assert!(surge["surge"].get("entity").is_none(), "{surge:#?}");
    assert_eq!(surge["surge"]["last_hour"], 12);
    let baseline = surge["surge"]["baseline"].as_f64().unwrap();
    assert!((0.9..=1.1).contains(&baseline), "{baseline}");
    let top = surge["surge"]["top_stories"].as_array().unwrap();
    assert!(
        !top.is_empty()
            && top
                .iter()
                .all(|t| t.as_str().unwrap().starts_with("Harbour")),
        "{top:?}"
    );
    // The items of this hour alerted as usual; the steady rule raised no surge.
    assert!(alerts.iter().filter(|a| a["rule"] == "harbour").count() >= 1);
    assert_eq!(alerts.iter().filter(|a| a["rule"] == "grain").count(), 1);

    let out = sandbox.run(&["once"]);
    assert!(out.status.success());
    assert_eq!(
        sandbox
            .alerts()
            .iter()
            .filter(|a| a["rule"] == "surge")
            .count(),
        1,
        "once per cooldown"
    );
}
