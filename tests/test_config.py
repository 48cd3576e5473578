"""Configuration: spell.yaml, llmspell TOML via `spell -c`, and the errors a typo gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from spellfs import ConfigError, Workspace, load_config
from spellfs.config import DEFAULTS


def write_yaml(root: Path, text: str) -> None:
    (root / "spell.yaml").write_text(text)


def test_defaults_are_the_spec_table(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.source == "defaults"
    assert config.get("sessions.max_sessions") == 100
    assert config.get("sessions.max_artifacts_per_session") == 1000
    assert config.get("sessions.artifact_compression_threshold") == 10240
    assert config.get("sessions.session_timeout_seconds") == 3600
    assert config.get("sessions.storage_backend") == "fs"
    assert config.get("sessions.max_artifact_size") == 104857600
    assert config.get("watch.materialize_max_bytes") == 104857600
    assert config.get("git.max_object_bytes") == 52428800
    assert config.get("agents.cache") is False
    assert config.get("agents.timeout_seconds") == 120
    assert config.remotes == {}


def test_init_file_is_all_comments_and_loads_as_defaults(root: Path) -> None:
    config = load_config(root)
    assert config.values == DEFAULTS


def test_init_file_uncommented_is_a_valid_configuration_of_the_defaults(root: Path) -> None:
    """What `spell init` writes documents real keys: uncommented, it loads, and its numbers are the
    defaults."""
    text = (root / "spell.yaml").read_text()
    (root / "spell.yaml").write_text("".join(line[2:] + "\n" for line in text.splitlines()[1:]))
    config = load_config(root)
    assert {k: v for k, v in config.values.items() if k != "agents"} == {
        k: v for k, v in DEFAULTS.items() if k != "agents"
    }
    assert config.get("agents.cache") is False and config.get("agents.timeout_seconds") == 120
    assert sorted(config.get("agents.providers")) == ["claude", "local"]
    assert list(config.remotes) == ["origin"]


def test_spell_yaml_values_are_applied(root: Path) -> None:
    write_yaml(
        root,
        """\
sessions:
  max_sessions: 3
  artifact_compression_threshold: 0
  storage_backend: memory
watch:
  materialize_max_bytes: 10
agents:
  cache: true
remotes:
  origin: {url: "file:///tmp/x", region: eu}
""",
    )
    config = load_config(root)
    assert config.source == "spell.yaml"
    assert config.get("sessions.max_sessions") == 3
    assert config.threshold == 0
    assert config.backend == "memory"
    assert config.get("watch.materialize_max_bytes") == 10
    assert config.get("agents.cache") is True
    assert config.get("sessions.max_artifact_size") == 104857600  # untouched keys keep the default
    assert config.remotes == {"origin": {"url": "file:///tmp/x", "region": "eu"}}


def test_sled_is_read_as_fs(root: Path) -> None:
    write_yaml(root, "sessions:\n  storage_backend: sled\n")
    assert load_config(root).backend == "fs"
    with Workspace.open(root) as ws:
        assert not ws.memory
        ws.sessions.create(name="on disk")
    assert len(list((root / "sessions").iterdir())) == 1


def test_memory_backend_from_spell_yaml_writes_nothing(root: Path) -> None:
    write_yaml(root, "sessions:\n  storage_backend: memory\n")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="dry run")
        ws.artifacts.store(sid, "user_input", "a.txt", b"content")
        ws.state.set("k", 1)
        assert ws.artifacts.get(sid, "a.txt")["content"] == b"content"
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


@pytest.mark.parametrize(
    "text, key",
    [
        ("sessions:\n  max_sesions: 5\n", "sessions.max_sesions"),
        ("watch:\n  materialise_max_bytes: 5\n", "watch.materialise_max_bytes"),
        ("sessions:\n  max_sessions: -1\n", "sessions.max_sessions"),
        ("sessions:\n  max_sessions: 0\n", "sessions.max_sessions"),
        ("sessions:\n  max_sessions: lots\n", "sessions.max_sessions"),
        ("sessions:\n  max_sessions: 2.5\n", "sessions.max_sessions"),
        ("sessions:\n  max_sessions: true\n", "sessions.max_sessions"),
        ("sessions:\n  storage_backend: s3\n", "sessions.storage_backend"),
        ("agents:\n  cache: 1\n", "agents.cache"),
        ("agents:\n  providers: [a, b]\n", "agents.providers"),
        ("bogus:\n  x: 1\n", "bogus"),
        ("sessions: 5\n", "sessions"),
        ("remotes:\n  origin: {region: eu}\n", "remotes.origin"),
        ("remotes:\n  origin: {url: 'file:///x', secret_key: k}\n", "remotes.origin.secret_key"),
    ],
)
def test_bad_values_name_file_and_key(root: Path, text: str, key: str) -> None:
    write_yaml(root, text)
    with pytest.raises(ConfigError) as exc:
        load_config(root)
    msg = str(exc.value)
    assert msg.startswith("spell.yaml: "), msg
    assert key in msg, msg
    assert exc.value.exit_code == 2


def test_not_a_mapping(root: Path) -> None:
    write_yaml(root, "- just\n- a list\n")
    with pytest.raises(ConfigError, match="spell.yaml"):
        load_config(root)


def test_malformed_yaml_names_file_and_line(root: Path) -> None:
    write_yaml(root, "sessions:\n  max_sessions: 5\n  bad: [unclosed\n")
    with pytest.raises(ConfigError) as exc:  # a configuration error, exit 2, like a bad key
        load_config(root)
    assert str(exc.value).startswith("spell.yaml:"), str(exc.value)
    assert int(str(exc.value).split(":")[1]) in (3, 4)


def test_malformed_yaml_via_cli(root: Path, spell) -> None:
    write_yaml(root, "sessions:\n\tmax_sessions: 5\n")
    r = spell("ls", cwd=root)
    err = r.stderr.decode()
    assert r.returncode == 2
    assert err.startswith("Error: spell.yaml:2"), err
    assert "Traceback" not in err and err.count("\n") == 1


def test_unknown_key_via_cli_exits_2(root: Path, spell) -> None:
    write_yaml(root, "sessions:\n  max_sesions: 5\n")
    r = spell("ls", cwd=root)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert err.startswith("Error: spell.yaml: sessions.max_sesions: unknown key"), err
    assert "Traceback" not in err


def test_toml_runtime_sessions_applies(root: Path, tmp_path: Path, spell) -> None:
    toml = tmp_path / "llmspell.toml"
    toml.write_text("""\
[runtime]
max_concurrent_scripts = 4

[runtime.sessions]
enabled = true
max_sessions = 1
storage_backend = "sled"
auto_persist = true
""")
    config = load_config(root, toml)
    assert config.get("sessions.max_sessions") == 1
    assert config.backend == "fs"
    assert spell("-c", str(toml), "new", "first", cwd=root).returncode == 0
    r = spell("-c", str(toml), "new", "second", cwd=root)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.startswith("Error: too many live sessions") and "max_sessions is 1" in err, err
    # without the TOML file the default limit applies
    assert spell("new", "second", cwd=root).returncode == 0


def test_toml_overrides_spell_yaml(root: Path, tmp_path: Path) -> None:
    write_yaml(root, "sessions:\n  max_sessions: 7\n  max_artifact_size: 9\n")
    toml = tmp_path / "c.toml"
    toml.write_text("[runtime.sessions]\nmax_sessions = 2\n")
    config = load_config(root, toml)
    assert config.get("sessions.max_sessions") == 2
    assert config.get("sessions.max_artifact_size") == 9


def test_toml_unknown_key_names_file_and_key(root: Path, tmp_path: Path, spell) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("[runtime.sessions]\nmax_sesions = 2\n")
    with pytest.raises(
        ConfigError, match=r"bad\.toml: runtime\.sessions\.max_sesions: unknown key"
    ):
        load_config(root, toml)
    r = spell("-c", str(toml), "ls", cwd=root)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert (
        err.startswith("Error: ") and str(toml) in err and "runtime.sessions.max_sesions" in err
    ), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "text",
    [
        '[runtime.sessions]\nmax_sessions = "many"\n',
        "[runtime.sessions\n",
        "runtime = 3\n",
        "[runtime]\nsessions = 3\n",
    ],
)
def test_toml_bad_file_is_one_error_line(root: Path, tmp_path: Path, spell, text: str) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(root, toml)
    r = spell("-c", str(toml), "ls", cwd=root)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert err.startswith("Error: ") and "bad.toml" in err and "Traceback" not in err, err


def test_toml_missing_file(root: Path, tmp_path: Path, spell) -> None:
    r = spell("-c", str(tmp_path / "nope.toml"), "ls", cwd=root)
    assert r.returncode == 2
    assert "nope.toml" in r.stderr.decode() and "Traceback" not in r.stderr.decode()
