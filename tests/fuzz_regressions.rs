//! Replays, on stable, every input the fuzz targets found a bug with (kept under
//! `tests/fuzz_regressions/<target>/`) and the fuzz seeds (`fuzz/seeds/<target>/`), through
//! the same checks the targets run (`fuzz/src/lib.rs`).

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod checks;

const TARGETS: &[&str] = &["text", "proto", "openmetrics", "grouping", "decompress", "http", "deflate"];

#[test]
fn replay_regressions_and_seeds() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut replayed = 0;
    for target in TARGETS {
        for dir in [format!("{root}/tests/fuzz_regressions/{target}"), format!("{root}/fuzz/seeds/{target}")] {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
            files.sort();
            for file in files {
                let data = std::fs::read(&file).unwrap();
                let outcome = std::panic::catch_unwind(|| checks::run(target, &data));
                assert!(outcome.is_ok(), "{target}: {} fails again", file.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= TARGETS.len(), "only {replayed} inputs found");
}
