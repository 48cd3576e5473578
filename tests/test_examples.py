"""Every script in examples/ runs with the real `spell run` in a fresh folder and leaves what its
README says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import loose
from spellfs.store.yamlio import load_yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = ("basic", "artifacts", "replay", "advanced", "integration", "workflow")


def run_example(spell, tmp_path: Path, name: str) -> tuple[Path, str]:
    ws = tmp_path / "demo"
    ws.mkdir()
    r = spell("run", str(EXAMPLES / f"{name}.lua"), cwd=ws)
    out = r.stdout.decode()
    assert r.returncode == 0, f"{name}.lua failed:\n{out}\n{r.stderr.decode()}"
    assert "Completed!" in out.strip().splitlines()[-1]
    assert "initialised" in r.stderr.decode()  # a fresh folder becomes a workspace
    return ws, out


def session(ws: Path, slug: str) -> tuple[Path, dict]:
    [d] = [
        p
        for p in (ws / "sessions").iterdir()
        if re.fullmatch(re.escape(slug) + "-[0-9a-f]{8}", p.name)
    ]
    return d, load_yaml((d / "session.yaml").read_bytes(), "session.yaml")


def records(d: Path) -> list[dict]:
    return load_yaml((d / "artifacts.yaml").read_bytes(), "artifacts.yaml") or []


def live_files(d: Path) -> set[str]:
    return {p.name for p in (d / "files").iterdir()}


def test_every_example_is_listed_in_the_readme() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    scripts = {p.stem for p in EXAMPLES.glob("*.lua")}
    assert set(NAMES) <= scripts  # agent.lua is run by tests/test_agent.py against a fake provider
    for name in scripts:
        assert f"`{name}.lua`" in readme, f"{name}.lua is not in examples/README.md"


def test_basic(spell, tmp_path: Path) -> None:
    ws, out = run_example(spell, tmp_path, "basic")
    parent_dir, parent = session(ws, "data-analysis")
    child_dir, child = session(ws, "emea-deep-dive")
    assert parent["status"] == "active" and parent["tags"] == ["analysis", "sales", "q4"]
    assert parent["metadata"] == {
        "department": "sales",
        "analyst": "ada",
        "priority": 1,
        "budget": 2500.5,
        "reviewed": True,
        "reviewer": "grace",
    }
    assert child["status"] == "completed" and child["parent"] == parent["id"]
    assert not any(p.name.startswith("scratch-") for p in (ws / "sessions").iterdir())
    assert live_files(parent_dir) == {"brief.md", "current.txt"}
    assert (child_dir / "files" / "emea.txt").read_text() == "EMEA grew 12% in Q4.\n"
    checkpoints = load_yaml((parent_dir / "checkpoints.yaml").read_bytes(), "checkpoints.yaml")
    assert [c["number"] for c in checkpoints] == [1] and checkpoints[0][
        "message"
    ] == "brief written"
    assert load_yaml((ws / "state.yaml").read_bytes(), "state.yaml") == {"basic:runs": 1}
    assert "session not found: 0000dead" in out and "unknown option: colour" in out
    # persistence: a second run sees the first
    r = spell("run", str(EXAMPLES / "basic.lua"), cwd=ws)
    assert r.returncode == 0 and b"has run 2 time(s)" in r.stdout
    assert load_yaml((ws / "state.yaml").read_bytes(), "state.yaml") == {"basic:runs": 2}


def test_artifacts(spell, tmp_path: Path) -> None:
    ws, out = run_example(spell, tmp_path, "artifacts")
    d, m = session(ws, "artifact-demo")
    png = bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes(range(256))
    assert (d / "files" / "chart.png").read_bytes() == png
    assert json.loads((d / "files" / "metrics.json").read_text())["revenue"] == 1500000
    assert (d / "files" / "notes.md").read_text().endswith("second draft\n")
    assert (d / "files" / "large.txt").stat().st_size == 35000
    assert "draft.txt" not in live_files(d)
    recs = records(d)
    by_name = {r["name"]: r for r in recs if r.get("op") != "delete"}
    assert [r["version"] for r in recs if r["name"] == "notes.md"] == [1, 2]
    assert by_name["copy-a.txt"]["hash"] == by_name["copy-b.txt"]["hash"]
    assert by_name["large.txt"].get("compressed") is True
    loose(ws)  # the stored forms, each its own file (as `spell commit` writes them)
    large_obj = (
        ws
        / ".spell"
        / "objects"
        / by_name["large.txt"]["hash"][:2]
        / by_name["large.txt"]["hash"][2:]
    )
    assert large_obj.stat().st_size < 35000
    small_obj = (
        ws
        / ".spell"
        / "objects"
        / by_name["chart.png"]["hash"][:2]
        / by_name["chart.png"]["hash"][2:]
    )
    assert small_obj.read_bytes() == png  # below the threshold: byte-identical to files/
    assert by_name["report.txt"]["tags"] == ["analysis", "q4"]
    assert by_name["report.txt"]["custom"] == {"tool": "sales_analyzer", "execution_time": 2.5}
    assert [r["custom"] for r in recs if r.get("custom", {}).get("source") == "filesystem"]
    assert any(r.get("op") == "delete" and r["name"] == "draft.txt" for r in recs)
    assert all(r["created_by"] == "script" for r in recs)
    assert "invalid artifact name '../escape.txt'" in out
    assert not (ws / "escape.txt").exists() and not (d / "escape.txt").exists()


def test_replay(spell, tmp_path: Path) -> None:
    ws, out = run_example(spell, tmp_path, "replay")
    d, m = session(ws, "data-pipeline")
    assert m["status"] == "completed"
    checkpoints = load_yaml((d / "checkpoints.yaml").read_bytes(), "checkpoints.yaml")
    assert [c["message"] for c in checkpoints] == [
        "validated and cleaned",
        "enriched",
        "pipeline finished",
    ]
    files = live_files(d)
    assert "transformation_partial.json" not in files
    assert {
        "transformation_batch1_result.json",
        "transformation_batch2_result.json",
        "output_result.json",
    } <= files
    assert json.loads((d / "files" / "enrichment_result.json").read_text())["ok"] is True
    assert any(
        r.get("restored_from") == 2 for r in records(d)
    )  # recovery appended records, erased nothing
    assert any(
        "transformation_partial.json" == r["name"] and r.get("op") != "delete" for r in records(d)
    )
    fork_dir, fork = session(ws, "pipeline-from-checkpoint-1")
    assert fork["parent"] == m["id"] and len(live_files(fork_dir)) == 4
    assert load_yaml((d / "state.yaml").read_bytes(), "state.yaml") == {"last_step": "output"}
    assert "out of memory during the join" in out
    # The README's next step: `spell replay` re-creates the work in a fork, artifact for artifact.
    r = spell("replay", m["id"], cwd=ws)
    text = r.stdout.decode()
    assert r.returncode == 0, text + r.stderr.decode()
    assert "13 same, 0 different" in text and "run " in text and "replay.lua: exit 0" in text


def test_advanced(spell, tmp_path: Path) -> None:
    ws, out = run_example(spell, tmp_path, "advanced")
    _, project = session(ws, "market-research")
    _, phase = session(ws, "discovery")
    task_dir, task = session(ws, "discovery-task-1")
    assert (
        project["parent"] is None
        and phase["parent"] == project["id"]
        and task["parent"] == phase["id"]
    )
    assert (task_dir / "files" / "finding.md").read_text() == "# Discovery finding 1\n"
    template = load_yaml((ws / "templates" / "research.yaml").read_bytes(), "research.yaml")
    assert template["name"] == "Research"  # the shipped template: the script could not rewrite it
    assert "path belongs to spellfs, not to scripts: templates/research.yaml" in out
    _, templated = session(ws, "customer-interviews")
    assert templated["template"] == "research" and templated["tags"] == ["research", "q1"]
    assert templated["metadata"] == {
        "kind": "research",
        "question": "Why do customers churn?",
        "sources": [],
    }
    bulk_dir, bulk = session(ws, "bulk-load")
    assert len(live_files(bulk_dir)) == 50 and bulk["parent"] == project["id"]
    batches = [
        load_yaml((p / "session.yaml").read_bytes(), "s")
        for p in (ws / "sessions").iterdir()
        if p.name.startswith("batch-")
    ]
    assert len(batches) == 5 and all(
        b["status"] == "completed" and b["parent"] == bulk["id"] for b in batches
    )
    analytics = load_yaml((ws / "state.yaml").read_bytes(), "state.yaml")["advanced:analytics"]
    assert analytics["artifacts"] == {"tool_result": 29, "user_input": 25}
    assert analytics["sessions"] == 14 and analytics["live_sessions"] == 9
    assert "milestones:\t10" in out


def test_integration(spell, tmp_path: Path) -> None:
    ws, out = run_example(spell, tmp_path, "integration")
    d, m = session(ws, "integration-demo")
    assert m["status"] == "completed" and m["metadata"]["stage"] == "asked"
    state = load_yaml((d / "state.yaml").read_bytes(), "state.yaml")
    assert state["config"] == {"max_artifacts": 100, "auto_save": True, "retention_days": 30}
    assert state["metrics"] == {"operations": 1, "artifacts_stored": 1, "events_seen": 3}
    assert sorted(state["index"]["tool_result"]) == [
        "calculation_result.json",
        "hook_captured_1.json",
        "hook_captured_2.json",
        "hook_captured_3.json",
    ]
    assert json.loads((d / "files" / "calculation_result.json").read_text())["result"] == 427
    captured = json.loads((d / "files" / "hook_captured_1.json").read_text())
    assert captured["tool"] == "calculator" and captured["result"]["result"]["result"] == 427
    recs = records(d)
    tagged = [r["name"] for r in recs if "integration" in r.get("tags", [])]
    assert "calculation_result.json" in tagged and "question.txt" not in tagged
    assert (ws / "spell.yaml").exists()  # the delete was cancelled by a hook
    assert "session.updated, artifact.stored, demo.step.done" in out
    assert "no provider configured: skipped" in out
    assert "agent_answer.txt" not in live_files(d)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "artifacts"])
def test_examples_run_under_sandbox(spell, tmp_path: Path, name: str) -> None:
    """The README says so: everything but artifacts.lua (io for storeFile's input) runs sandboxed,
    and does the same work sandboxed as not: the same sessions holding the same files."""
    boxed = tmp_path / "boxed"
    boxed.mkdir()
    r = spell("run", "--sandbox", str(EXAMPLES / f"{name}.lua"), cwd=boxed)
    assert r.returncode == 0, r.stderr.decode()
    free, out = run_example(spell, tmp_path, name)
    assert r.stdout.decode().strip().splitlines()[-1] == out.strip().splitlines()[-1]

    def work(ws: Path) -> dict[str, set[str]]:
        return {p.name[:-9]: live_files(p) for p in (ws / "sessions").iterdir()}

    assert work(boxed) == work(free) and work(free)


def test_workflow(spell, tmp_path: Path) -> None:
    ws, out = run_example(spell, tmp_path, "workflow")
    assert "report.txt:\tTotal price: 7" in out and "branch:\tBIG BATCH" in out
    assert "iterations:\t4\tlast:\t16.0" in out and "continue:\ttrue\t42" in out
    d, _ = session(ws, "workflow-demo")
    names = live_files(d)
    assert {"workflow-csv_report.json", "workflow-hashes.json", "workflow-squares.json"} <= names
    run = json.loads((d / "files" / "workflow-csv_report.json").read_text())
    assert [s["name"] for s in run["steps"]] == ["stats", "total", "text", "save"]
    assert (ws / "report.txt").read_text() == "Total price: 7\n"
