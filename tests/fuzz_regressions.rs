//! Every input kept in fuzz/regressions/<target>/ (a crash a fuzz target found, since fixed, or a seed
//! worth keeping) replayed through the same target body `make fuzz` runs (fuzz/src/entries.rs), so a
//! fixed crash stays fixed in `make test` without libFuzzer.

#[path = "../fuzz/src/entries.rs"]
mod entries;

use std::path::Path;

#[test]
fn every_kept_fuzz_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut replayed = 0;
    for (name, target) in entries::TARGETS {
        let dir = root.join(name);
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = read.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else {
                panic!("cannot read {}", f.display());
            };
            // A panic inside names the property; this line names the input.
            eprintln!("replaying {}", f.display());
            target(&bytes);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no inputs under {}", root.display());
}

#[test]
fn the_render_target_refuses_a_tag_written_by_an_alert() {
    // The HTML check itself must be able to fail: an alarm name carried through unescaped would be
    // a tag outside the template's.
    let tags =
        entries::html_tags_for_test("<p>ok</p><script>x</script><a href=\"u\" onclick=\"y\">");
    assert!(tags.iter().any(|(t, _)| t == "script"));
    assert!(tags.iter().any(|(_, a)| a.iter().any(|n| n == "onclick")));
}
