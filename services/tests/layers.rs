//! The dependency rules of the layers (docs/ARCHITECTURE.md, "Crates and the direction of
//! dependencies"), checked on the dependency graph cargo resolves (`cargo tree`), so a new dependency that breaks
//! a rule fails here rather than in review:
//! - `engine` is pure: nothing that does I/O or runs tasks, directly or through another crate.
//! - nothing below `api` depends on the web framework.
//! - `api` reaches the store and the actors only through `services`.
//! - no server crate depends on the simulators (tooling).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The normal (not dev, not build) dependencies of `package` as cargo resolves them when
/// it alone is built (`cargo tree -p`): all of them, or only the `direct` ones. (`cargo
/// metadata`'s graph unifies features across the workspace, so it would charge a crate
/// with what another member's features pull into a shared dependency.)
fn deps(package: &str, direct: bool) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["tree", "-q", "--manifest-path", manifest, "-p", package])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"]);
    if direct {
        cmd.args(["--depth", "1"]);
    }
    let out = cmd.output().expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut names: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.remove(package);
    assert!(!names.is_empty(), "no dependencies read for {package}");
    names
}

/// The real graph, as far as the rules look: each workspace crate → its dependencies.
fn workspace_graph(direct: bool) -> Graph {
    ALL.iter()
        .map(|c| (c.to_string(), deps(c, direct)))
        .collect()
}

/// Everything `root` depends on, directly or not (normal dependencies only).
fn closure(graph: &Graph, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(p) = todo.pop() {
        for d in graph.get(&p).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

/// `(crate, forbidden dependency)` for each crate in `crates` whose dependencies (`direct`
/// ones only, or all) include one of `forbidden`.
fn violations(
    graph: &Graph,
    crates: &[&str],
    forbidden: &[&str],
    direct: bool,
) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for c in crates {
        assert!(graph.contains_key(*c), "{c} is not in the workspace");
        let deps = if direct {
            graph[*c].clone()
        } else {
            closure(graph, c)
        };
        for f in forbidden {
            if deps.contains(*f) {
                found.insert((c.to_string(), f.to_string()));
            }
        }
    }
    found
}

const ALL: &[&str] = &[
    "rongpay-engine",
    "rongpay-storage",
    "rongpay-actors",
    "rongpay-services",
    "rongpay-api",
    "rongpay-sims",
];

const SERVER: &[&str] = &[
    "rongpay-engine",
    "rongpay-storage",
    "rongpay-actors",
    "rongpay-services",
    "rongpay-api",
];

#[test]
fn engine_does_no_io() {
    let v = violations(
        &workspace_graph(false),
        &["rongpay-engine"],
        &[
            "actix",
            "actix-rt",
            "actix-web",
            "tokio",
            "rocksdb",
            "librocksdb-sys",
            "reqwest",
            "hyper",
            "serde_json",
        ],
        false,
    );
    assert!(v.is_empty(), "engine must stay pure: {v:?}");
}

#[test]
fn nothing_below_api_knows_the_web_framework() {
    let v = violations(
        &workspace_graph(false),
        &[
            "rongpay-engine",
            "rongpay-storage",
            "rongpay-actors",
            "rongpay-services",
        ],
        &["actix-web", "actix-http", "utoipa-actix-web"],
        false,
    );
    assert!(v.is_empty(), "only api serves HTTP: {v:?}");
}

#[test]
fn api_reaches_the_lower_layers_only_through_services() {
    let v = violations(
        &workspace_graph(true),
        &["rongpay-api"],
        &[
            "rongpay-storage",
            "rongpay-actors",
            "rocksdb",
            "librocksdb-sys",
        ],
        true,
    );
    assert!(
        v.is_empty(),
        "api reaches storage, actors or RocksDB directly (only services may): {v:?}"
    );
}

#[test]
fn no_server_crate_depends_on_a_simulator() {
    let graph = workspace_graph(false);
    assert!(graph.contains_key("rongpay-sims"));
    let v = violations(&graph, SERVER, &["rongpay-sims"], false);
    assert!(v.is_empty(), "simulators are tooling: {v:?}");
}

/// The rules catch what they are for: a graph with each mistake in it fails each rule.
#[test]
fn the_rules_catch_a_broken_graph() {
    let mut g = workspace_graph(true);
    g.get_mut("rongpay-engine")
        .unwrap()
        .insert("serde_json".into());
    g.get_mut("rongpay-actors")
        .unwrap()
        .insert("actix-web".into());
    g.get_mut("rongpay-services")
        .unwrap()
        .insert("rongpay-sims".into());
    assert!(!violations(&g, &["rongpay-engine"], &["serde_json"], false).is_empty());
    // Through services → actors, services now reaches actix-web too.
    assert!(!violations(&g, &["rongpay-services"], &["actix-web"], false).is_empty());
    // And api, through services, a simulator.
    assert!(!violations(&g, &["rongpay-api"], &["rongpay-sims"], false).is_empty());
    // api naming the store directly.
    g.get_mut("rongpay-api")
        .unwrap()
        .insert("rongpay-storage".into());
    assert!(!violations(&g, &["rongpay-api"], &["rongpay-storage"], true).is_empty());
}
