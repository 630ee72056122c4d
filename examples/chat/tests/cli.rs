//! The chat server's command line: flags, their environment variables and
//! a configuration file, in that order of precedence, checked with
//! `--check`, which prints the configuration the server would run with.

use std::path::PathBuf;
use std::process::Command;

fn chat() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_example-chat"));
    for var in [
        "GAMEWIRE_BIND",
        "GAMEWIRE_WS_BIND",
        "GAMEWIRE_METRICS_BIND",
        "GAMEWIRE_ADMIN_TOKEN",
        "GAMEWIRE_CONFIG",
        "GAMEWIRE_REDIS_URL",
    ] {
        command.env_remove(var);
    }
    command
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("the chat server runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    text
}

fn config_file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn help_names_every_flag_and_its_variable() {
    let help = run(chat().arg("--help"));
    for (flag, var) in [
        ("--bind", "GAMEWIRE_BIND"),
        ("--ws-bind", "GAMEWIRE_WS_BIND"),
        ("--metrics-bind", "GAMEWIRE_METRICS_BIND"),
        ("--admin-token", "GAMEWIRE_ADMIN_TOKEN"),
        ("--config", "GAMEWIRE_CONFIG"),
        ("--redis", "GAMEWIRE_REDIS_URL"),
    ] {
        assert!(
            help.contains(flag) && help.contains(var),
            "{flag} {var}:\n{help}"
        );
    }
}

#[test]
fn the_defaults_open_both_listeners() {
    let config = run(chat().arg("--check"));
    assert!(
        config.contains("bind_address: \"127.0.0.1:7878\""),
        "{config}"
    );
    assert!(
        config.contains("ws_bind_address: Some(\n        \"127.0.0.1:7880\""),
        "{config}"
    );
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file() {
    let file = config_file(
        "chat-precedence.toml",
        "bind_address = \"127.0.0.1:1001\"\nws_bind_address = \"127.0.0.1:1002\"\nmax_connections = 77\nheartbeat_timeout = \"1m\"\n",
    );
    let config = run(chat()
        .arg("--check")
        .arg("--bind=127.0.0.1:3001")
        .env("GAMEWIRE_BIND", "127.0.0.1:2001")
        .env("GAMEWIRE_WS_BIND", "127.0.0.1:2002")
        .env("GAMEWIRE_METRICS_BIND", "127.0.0.1:2003")
        .env("GAMEWIRE_CONFIG", &file));
    assert!(
        config.contains("bind_address: \"127.0.0.1:3001\""),
        "{config}"
    );
    assert!(config.contains("\"127.0.0.1:2002\""), "{config}");
    assert!(config.contains("\"127.0.0.1:2003\""), "{config}");
    assert!(config.contains("max_connections: 77"), "{config}");
    assert!(config.contains("heartbeat_timeout: 60s"), "{config}");
}

#[test]
fn a_bad_file_is_named_with_its_mistake() {
    let file = config_file("chat-typo.toml", "max_conections = 5\n");
    let output = chat()
        .arg("--check")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("chat-typo.toml"), "{stderr}");
    assert!(
        stderr.contains("unknown field `max_conections`"),
        "{stderr}"
    );
}
