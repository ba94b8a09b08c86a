//! Tests: malformed configs through the real binary. Every problem is reported with the
//! file, the 1-based line and the full key; components Flume would drop are dropped with
//! a warning (the agent runs on), `--strict` turns warnings into exit code 2, and problems
//! that leave nothing to run exit 2.

use std::fs;
use std::time::Duration;

use crate::harness::{free_port, run_flume, Agent};
use crate::sources::LineClient;

const DEADLINE: Duration = Duration::from_secs(30);

/// Lines 1-10 of a working netcat → memory → logger agent `a1` (line numbers matter).
fn base(port: u16) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1 k2\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = logger\n\
         a1.sinks.k1.channel = c1\n"
    )
}

/// Write `config` to a temp file; run `sluice-flume agent` on it with `extra` args.
fn run(config: &str, name: &str, extra: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.properties");
    fs::write(&path, config).unwrap();
    let p = path.display().to_string();
    let mut args = vec![
        "agent",
        "--conf",
        dir.path().to_str().unwrap(),
        "--conf-file",
        &p,
        "--name",
        name,
    ];
    args.extend_from_slice(extra);
    let (status, out) = run_flume(&args, DEADLINE);
    (status.code().unwrap_or(-1), out, p)
}

#[test]
fn a_component_without_type_is_dropped_with_file_line_and_key() {
    let port = free_port();
    // Line 11: k2's only property; it has no type.
    let config = format!("{}a1.sinks.k2.channel = c1\n", base(port));
    let mut a = Agent::start(&config, "a1", &[]);
    let file = a.config_path().display().to_string();
    a.wait_for_log(
        &format!("{file}:11: a1.sinks.k2: sink k2 has no type; removed"),
        DEADLINE,
    );
    // The rest of the agent runs.
    a.wait_for_log("netcat listening on", DEADLINE);
    let mut c = LineClient::connect(port);
    c.send("still here\n");
    assert_eq!(c.reply(), "OK\n");
    a.wait_for_log("still here", DEADLINE);
}

#[test]
fn an_unknown_channel_on_a_source_is_dropped_from_its_list() {
    let port = free_port();
    let config = base(port)
        .replace(
            "a1.sources.r1.channels = c1\n",
            "a1.sources.r1.channels = c1 nope\n",
        )
        .replace("a1.sinks = k1 k2", "a1.sinks = k1");
    let mut a = Agent::start(&config, "a1", &[]);
    let file = a.config_path().display().to_string();
    a.wait_for_log(
        &format!("{file}:7: a1.sources.r1.channels: channel nope is not a valid channel of agent a1; dropped from source r1"),
        DEADLINE,
    );
    a.wait_for_log("netcat listening on", DEADLINE);
    let mut c = LineClient::connect(port);
    c.send("via c1\n");
    assert_eq!(c.reply(), "OK\n");
}

#[test]
fn a_bad_number_names_the_key_and_drops_the_component() {
    let config = base(0)
        .replace("a1.sources.r1.port = 0", "a1.sources.r1.port = abc")
        .replace("a1.sinks = k1 k2", "a1.sinks = k1");
    let mut a = Agent::start(&config, "a1", &[]);
    let file = a.config_path().display().to_string();
    a.wait_for_log(
        &format!("{file}:6: a1.sources.r1.port: source r1 removed: \"abc\" is not a valid number"),
        DEADLINE,
    );
    // The logger sink still runs.
    a.wait_for_log("starting sink", DEADLINE);
    assert!(!a.log().contains("netcat listening on"));
}

#[test]
fn strict_turns_a_warning_into_exit_code_2() {
    let config = base(free_port()).replace("a1.sources.r1.port = ", "a1.sources.r1.port = x");
    let (code, out, file) = run(&config, "a1", &["--strict"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "{file}:6: a1.sources.r1.port: source r1 removed: \"x"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{file}:3: a1.sinks: sink k2 is listed but has no properties; removed"
        )),
        "{out}"
    );
    assert!(
        out.contains("--strict: 2 configuration warning(s)"),
        "{out}"
    );
}

#[test]
fn an_unknown_agent_name_exits_2_naming_the_file() {
    let (code, out, file) = run(&base(free_port()), "nosuch", &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "no configuration for agent nosuch in {file}; agents found: a1"
        )),
        "{out}"
    );
}

#[test]
fn nothing_left_to_run_exits_2() {
    let config = "a1.sources = r1\na1.channels = c1\na1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\n\
                  a1.sources.r1.channels = c1\na1.channels.c1.type = memory\n";
    let (code, out, file) = run(config, "a1", &[]);
    assert_eq!(code, 2, "{out}");
    // An absent key has no line: the file and the full key name it.
    assert!(
        out.contains(&format!(
            "{file}: a1.sources.r1.port: source r1 removed: is required but not set"
        )),
        "{out}"
    );
    assert!(
        out.contains("agent a1: no source or sink is left to run"),
        "{out}"
    );
}

#[test]
fn a_log_that_is_not_a_terminal_has_no_colour_codes() {
    // The harness sets NO_COLOR; this run has neither it nor a terminal (stderr is a file).
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.properties");
    fs::write(&path, base(port)).unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut child = std::process::Command::new(crate::harness::flume_bin())
        .args([
            "agent",
            "--conf-file",
            path.to_str().unwrap(),
            "--name",
            "a1",
        ])
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + DEADLINE;
    let log = loop {
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("netcat listening on") || std::time::Instant::now() > end {
            break log;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("netcat listening on"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is no terminal:\n{log}"
    );
}
