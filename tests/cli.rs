//! The command line as an operator meets it: `--help`, `--version`, `--check-config`, exit
//! statuses, the Pushgateway's dotted flag spellings, and the man page kept in step with the
//! flags (every flag in `--help` documented under OPTIONS with the same default).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ringgate");

fn ringgate(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run the ringgate binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `--a.b-c`, `--a-b-c` and `--a_b_c` are one flag.
fn normalize(flag: &str) -> String {
    flag.trim_start_matches('-').replace(['.', '_'], "-")
}

/// Each option `--help` lists, normalized, with its description joined onto one line.
fn help_options() -> BTreeMap<String, String> {
    let out = ringgate(&["--help"]);
    assert!(out.status.success(), "--help exits 0: {out:?}");
    let help = text(&out.stdout);
    let mut options = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut in_options = false;
    for line in help.lines() {
        if line.starts_with("Options:") {
            in_options = true;
            continue;
        }
        if !in_options {
            continue;
        }
        if let Some(rest) = line.strip_prefix("  --") {
            if let Some((name, desc)) = current.take() {
                options.insert(name, desc);
            }
            let (names, desc) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = names.trim_end_matches(',');
            current = Some((normalize(name), desc.trim().to_string()));
        } else if line.starts_with("    ") {
            if let Some((_, desc)) = current.as_mut() {
                desc.push(' ');
                desc.push_str(line.trim());
            }
        } else if !line.trim().is_empty() {
            // A new section (argh prints "Commands:" etc.) ends the option list.
            in_options = false;
        }
    }
    if let Some((name, desc)) = current.take() {
        options.insert(name, desc);
    }
    assert!(options.len() > 10, "could not read the options out of --help:\n{help}");
    options
}

/// The default `--help` states for an option: `(default "5m")`, `(default 64)` or
/// `(default: every online CPU)`.
fn help_default(desc: &str) -> Option<String> {
    let start = desc.rfind("(default")?;
    let inner = desc[start + "(default".len()..].trim_start_matches(':').trim();
    let inner = inner.strip_suffix(')')?.trim();
    Some(inner.trim_matches('"').to_string())
}

/// Splits a macro line's arguments, honouring roff double quotes.
fn macro_args(s: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    args.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        args.push(cur);
    }
    args
}

/// Roff source line -> the words it renders (enough of man(7) for this page).
fn render_line(line: &str) -> String {
    let plain = if let Some(m) = line.strip_prefix('.') {
        let (name, rest) = m.split_once(' ').unwrap_or((m, ""));
        let args = macro_args(rest);
        match name {
            "B" | "I" | "SM" | "SB" => args.join(" "),
            "BR" | "RB" | "BI" | "IB" | "IR" | "RI" => args.concat(),
            _ => String::new(),
        }
    } else {
        line.to_string()
    };
    plain
        .replace("\\-", "-")
        .replace("\\&", "")
        .replace("\\%", "")
        .replace("\\c", "")
        .replace("\\(dq", "\"")
        .replace("\\(aq", "'")
        .replace("\\(mu", "x")
        .replace("\\e", "\\")
}

/// The OPTIONS section of the man page: normalized flag -> the text of its entry.
fn man_options() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/ringgate.8");
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut options = BTreeMap::new();
    let mut in_options = false;
    let mut tag_next = false;
    let mut current: Option<(String, String)> = None;
    for line in src.lines() {
        if line.starts_with(".SH") {
            in_options = line.trim() == ".SH OPTIONS";
        }
        if !in_options {
            continue;
        }
        if line.starts_with(".TP") || line.starts_with(".SS") || line.starts_with(".SH") {
            if let Some((name, body)) = current.take() {
                options.insert(name, body);
            }
            tag_next = line.starts_with(".TP");
            continue;
        }
        let rendered = render_line(line);
        if tag_next {
            tag_next = false;
            let flag = rendered.split_whitespace().next().unwrap_or("");
            assert!(flag.starts_with("--"), "OPTIONS entry whose tag is not a flag: {line:?}");
            current = Some((normalize(flag), String::new()));
            continue;
        }
        if let Some((_, body)) = current.as_mut() {
            body.push(' ');
            body.push_str(&rendered);
        }
    }
    if let Some((name, body)) = current.take() {
        options.insert(name, body);
    }
    options
}

#[test]
fn man_page_documents_every_flag_with_its_default() {
    let help = help_options();
    let man = man_options();
    let missing: Vec<_> = help.keys().filter(|f| !man.contains_key(*f)).collect();
    assert!(missing.is_empty(), "flags in --help but not under OPTIONS in man/ringgate.8: {missing:?}");
    let stale: Vec<_> = man.keys().filter(|f| !help.contains_key(*f)).collect();
    assert!(stale.is_empty(), "flags documented in man/ringgate.8 that --help does not know: {stale:?}");
    for (flag, desc) in &help {
        let Some(default) = help_default(desc) else { continue };
        let want = if default.is_empty() { "Default: empty".to_string() } else { format!("Default: {default}") };
        let entry = man[flag].split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(entry.contains(&want), "man/ringgate.8 entry for --{flag} should say {want:?}; it says: {entry}");
    }
}

#[test]
fn man_page_names_the_crate_version() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/ringgate.8");
    let src = std::fs::read_to_string(path).unwrap();
    let th = src.lines().find(|l| l.starts_with(".TH ")).expect(".TH line");
    let want = format!("\"ringgate {}\"", env!("CARGO_PKG_VERSION"));
    assert!(th.contains(&want), "the .TH line should name {want} (bump it with the crate version): {th}");
}

#[test]
fn man_page_lints_clean() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/ringgate.8");
    let out = match Command::new("mandoc").args(["-T", "lint"]).arg(&path).output() {
        Ok(o) => o,
        Err(e) => panic!("mandoc is not installed ({e}): run `bash scripts/install-test-deps.sh`"),
    };
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success() && report.trim().is_empty(), "mandoc -T lint man/ringgate.8:\n{report}");
    // groff, as man-db renders it, at a narrow and a wide terminal.
    for width in ["60n", "78n", "120n"] {
        let out =
            match Command::new("groff").args(["-man", "-ww", "-Tutf8", &format!("-rLL={width}")]).arg(&path).output() {
                Ok(o) => o,
                Err(e) => panic!("groff is not installed ({e}): run `bash scripts/install-test-deps.sh`"),
            };
        let warnings = text(&out.stderr);
        assert!(out.status.success() && warnings.trim().is_empty(), "groff -man -ww at LL={width}:\n{warnings}");
    }
}

#[test]
fn version_prints_the_crate_version() {
    let out = ringgate(&["--version"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), format!("ringgate {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_exits_zero_and_lists_the_pushgateway_flags() {
    let help = help_options();
    for flag in ["web-listen-address", "persistence-file", "persistence-interval", "web-enable-admin-api", "log-level"]
    {
        assert!(help.contains_key(flag), "--help should list --{flag}");
    }
}

#[test]
fn check_config_accepts_the_defaults() {
    let out = ringgate(&["--check-config"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).contains("configuration is valid"), "{out:?}");
}

#[test]
fn check_config_accepts_dotted_dashed_and_equals_spellings() {
    for args in [
        &["--check-config", "--web.listen-address=127.0.0.1:0", "--persistence.interval", "1m30s"][..],
        &["--check-config", "--web-listen-address", "127.0.0.1:0", "--persistence-interval=90s"][..],
        &["--check-config", "--log.level=debug", "--web.enable-admin-api", "--web.enable-lifecycle"][..],
        &["--check-config", "--lifecycle=ttl", "--group.ttl=90s", "--clear.max-age", "1h", "--store.max-bytes=1GiB"][..],
        &["--check-config", "--clear.scrapers=replica-a,replica-b", "--push.max-body-size", "8MiB"][..],
    ] {
        let out = ringgate(args);
        assert_eq!(out.status.code(), Some(0), "{args:?} should be valid: {}", text(&out.stderr));
    }
}

#[test]
fn check_config_refuses_bad_values_with_status_2_naming_the_flag() {
    for (args, flag) in [
        (&["--lifecycle", "forever"][..], "--lifecycle"),
        (&["--group.ttl", "soon"][..], "--group.ttl"),
        (&["--group-ttl=0s"][..], "--group.ttl"),
        (&["--persistence.interval=never"][..], "--persistence.interval"),
        (&["--push.max-body-size", "big"][..], "--push.max-body-size"),
        (&["--shards", "0"][..], "--shards"),
        (&["--log.level=loud"][..], "--log.level"),
        (&["--web.listen-address", "nowhere:port"][..], "--web.listen-address"),
    ] {
        let mut argv = vec!["--check-config"];
        argv.extend_from_slice(args);
        let out = ringgate(&argv);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} should exit 2: {stderr}");
        assert!(stderr.contains(flag), "the message for {args:?} should name {flag}: {stderr}");
    }
}

#[test]
fn unknown_flags_and_non_numbers_exit_2() {
    let out = ringgate(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("--no-such-flag"), "{out:?}");
    let out = ringgate(&["--check-config", "--push.max-series", "many"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("push-max-series"), "{out:?}");
}
