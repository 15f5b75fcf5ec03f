//! The README's key table is the registry's: every metric name, key and
//! reference as `REGISTRY` lists them (regenerate with
//! `GEN_METRICS_BLESS=1 cargo test -p gen-metrics-eval --test readme_keys`).

#[test]
fn readme_key_table_is_the_registry() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let table = gen_metrics_eval::registry::markdown_key_table();
    if readme.contains(&table) {
        return;
    }
    let start = readme
        .find("| `--metrics` name |")
        .expect("README has a key table");
    let end = readme[start..]
        .find("\n\n")
        .map_or(readme.len(), |e| start + e + 1);
    if std::env::var_os("GEN_METRICS_BLESS").is_some() {
        let updated = format!("{}{}{}", &readme[..start], table, &readme[end..]);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    panic!(
        "README.md's key table differs from the registry; expected:\n{table}\nfound:\n{}",
        &readme[start..end]
    );
}
