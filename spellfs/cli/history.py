"""History commands: save, log, diff, restore, fork, replay."""

from __future__ import annotations

import click

from .output import echo_json, format_option, json_option, open_workspace, output, when

LOG_COLUMNS = [
    ("#", "number"),
    ("time", lambda c: when(c["time"])),
    ("message", "message"),
    ("added", "added"),
    ("changed", "changed"),
    ("removed", "removed"),
    ("artifacts", "artifacts"),
]


@click.command()
@click.argument("session")
@click.option("-m", "--message", default=None, help="What this checkpoint is.")
@json_option
@click.pass_context
def save(ctx: click.Context, session: str, message: str | None, as_json: bool) -> None:
    """Checkpoint SESSION: record its artifacts, manifest and state."""
    ws = open_workspace(ctx)
    dir = ws.sessions.resolve(session)
    before = ws.history.latest_number(dir)
    hand = ws.history.record_worktree(dir)
    number = ws.history.save(session, message)
    rec = next(c for c in reversed(ws.history.checkpoints(session)) if c["number"] == number)
    if as_json:
        echo_json({**rec, "new": number != before, "recorded": hand.as_dict()})
        return
    if not hand.clean:
        click.echo(f"recorded hand changes: {_hand_text(hand.as_dict())}")
    if number == before:
        click.echo(f"nothing changed since checkpoint {number}: no new checkpoint")
    else:
        click.echo(
            f"checkpoint {number}: +{rec['added']} ~{rec['changed']} -{rec['removed']} "
            f"({rec['artifacts']} artifact{'' if rec['artifacts'] == 1 else 's'})"
        )


def _hand_text(h: dict) -> str:
    """``~a.txt +c.txt -b.txt``: modified, added, deleted by hand."""
    return " ".join(
        [f"~{n}" for n in h["modified"]]
        + [f"+{n}" for n in h["added"]]
        + [f"-{n}" for n in h["deleted"]]
    )


@click.command(name="log")
@click.argument("sessions", metavar="[SESSION]...", nargs=-1)
@click.option(
    "--graph", is_flag=True, help="Draw checkpoints, forks and restores of the sessions' families."
)
@click.option("--all", "all_", is_flag=True, help="With --graph: every session in the workspace.")
@click.option(
    "--ascii", "ascii_", is_flag=True, help="With --graph: plain ASCII (the default when piped)."
)
@format_option
@click.pass_context
def log(
    ctx: click.Context,
    sessions: tuple[str, ...],
    graph: bool,
    all_: bool,
    ascii_: bool,
    as_json: bool,
) -> None:
    """List SESSION's checkpoints, oldest first; with --graph, draw its history with its forks."""
    if not graph:
        if all_ or ascii_:
            raise click.UsageError("--all and --ascii go with --graph")
        if len(sessions) != 1:
            raise click.UsageError("give one SESSION (or use --graph for several)")
    elif bool(sessions) == all_:
        raise click.UsageError("give SESSION... or --all with --graph")
    ws = open_workspace(ctx)
    if graph:
        from ..history import history_graph, render_graph

        g = history_graph(ws, None if all_ else sessions)
        if as_json:
            echo_json(g.as_dict())
            return
        plain = ascii_ or not click.get_text_stream("stdout").isatty()
        for line in render_graph(g, ascii=plain):
            click.echo(line)
        return
    dir = ws.sessions.resolve(sessions[0])
    shared = ws.history.duplicated_numbers(dir)  # after a git merge: `2:1a2b3c4d` names each
    columns = [
        ("#", lambda c: f"{c['number']}:{c['tree'][:8]}" if c["number"] in shared else c["number"]),
        *LOG_COLUMNS[1:],
    ]
    output(
        ws.history.checkpoints(dir),
        as_json,
        columns,
        empty="no checkpoints (make one with `spell save SESSION`)",
    )


def _v(value: object) -> str:
    """A value as a JSON scalar or array (`"ana"`, `null`, `true`), never a Python repr."""
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def _print_diff(d: dict) -> None:
    frm = d["from"] if d["from"] in ("now", "creation") else f"checkpoint {d['from']}"
    to = "now" if d["to"] == "now" else f"checkpoint {d['to']}"
    click.echo(f"{frm} → {to}")
    arts = d["artifacts"]
    for a in arts["added"]:
        click.echo(f"+ {a['name']} ({a['size']} bytes)")
    for a in arts["removed"]:
        click.echo(f"- {a['name']} ({a['size']} bytes)")
    for c in arts["changed"]:
        line = f"~ {c['name']}"
        if c["content_changed"] and c["diff"] is None:
            line += (
                f": {c['from']['size']} → {c['to']['size']} bytes, "
                f"{c['from']['hash'][:12]} → {c['to']['hash'][:12]}"
            )
        click.echo(line)
        for key, ch in c["metadata"].items():
            click.echo(f"    {key}: {_v(ch['from'])} → {_v(ch['to'])}")
        if c["diff"]:
            click.echo(c["diff"], nl=False)
    for key, ch in d["manifest"].items():
        click.echo(f"{key}: {_v(ch['from'])} → {_v(ch['to'])}")
    if d["tags"]["added"] or d["tags"]["removed"]:
        click.echo(
            "tags: "
            + " ".join(
                [f"+{t}" for t in d["tags"]["added"]] + [f"-{t}" for t in d["tags"]["removed"]]
            )
        )
    for what in ("metadata", "state"):
        m = d[what]
        for k, v in m["added"].items():
            click.echo(f"{what}: +{k} = {_v(v)}")
        for k, v in m["removed"].items():
            click.echo(f"{what}: -{k} (was {_v(v)})")
        for k, ch in m["changed"].items():
            click.echo(f"{what}: {k}: {_v(ch['from'])} → {_v(ch['to'])}")
    s = d["summary"]
    click.echo(f"{s['added']} added, {s['changed']} changed, {s['removed']} removed")
    hand = d.get("unrecorded") or {}
    if any(hand.values()):
        click.echo("not yet recorded (changed by hand under files/; `spell save` records them):")
        for kind, mark in (("modified", "~"), ("added", "+"), ("deleted", "-")):
            for h in hand.get(kind, ()):
                click.echo(
                    f"{mark} {h['name']}" + (f" ({h['size']} bytes, binary)" if h["binary"] else "")
                )
                if h["diff"]:
                    click.echo(h["diff"], nl=False)


@click.command()
@click.argument("session")
@click.argument("from_", metavar="[FROM", required=False)
@click.argument("to", metavar="[TO]]", required=False)
@json_option
@click.pass_context
def diff(
    ctx: click.Context, session: str, from_: str | None, to: str | None, as_json: bool
) -> None:
    """Show what changed in SESSION from checkpoint FROM (default: the latest, else its creation)
    to TO (default: now)."""
    ws = open_workspace(ctx)
    d = ws.history.diff(session, from_, to)
    if as_json:
        echo_json(d)
    else:
        _print_diff(d)


@click.command()
@click.argument("session")
@click.argument("checkpoint")
@click.option(
    "--force",
    is_flag=True,
    help="Go on over hand edits in files/ (kept as versions first) and unsaved session.yaml "
    "or state.yaml edits (kept in a checkpoint first); every copy then matches CHECKPOINT.",
)
@json_option
@click.pass_context
def restore(ctx: click.Context, session: str, checkpoint: str, force: bool, as_json: bool) -> None:
    """Make SESSION equal to CHECKPOINT again (nothing is erased; later checkpoints stay)."""
    ws = open_workspace(ctx)
    r = ws.history.restore(session, checkpoint, force=force)
    if as_json:
        echo_json(r)
    else:
        for ref in r["kept"]:
            click.echo(
                f"kept the unrecorded {ref.split('@')[0]} as {ref} (`spell cat "
                f"{r['session_id'][:8]} {ref}`)",
                err=True,
            )
        sid = r["session_id"][:8]
        if r.get("saved") is not None:
            click.echo(
                f"kept the unsaved session.yaml and state.yaml as checkpoint {r['saved']} "
                f"(`spell diff {sid} {r['saved']}`)",
                err=True,
            )
        click.echo(
            f"restored {sid} to checkpoint {r['checkpoint']}: "
            f"+{r['added']} ~{r['changed']} -{r['removed']}"
        )
        if r.get("unrecorded"):
            click.echo(
                f"left as they are, not yet recorded: {', '.join(r['unrecorded'])} "
                f"(`spell save {sid}` records them; --force restores over them)",
                err=True,
            )


@click.command()
@click.argument("session")
@click.argument("checkpoint", required=False)
@click.option("--name", help="Name of the new session (default: NAME (fork N)).")
@click.pass_context
def fork(ctx: click.Context, session: str, checkpoint: str | None, name: str | None) -> None:
    """Make a new session from SESSION at CHECKPOINT (default: the latest; none: now) and print its
    id."""
    ws = open_workspace(ctx)
    click.echo(ws.history.fork(session, checkpoint, {"name": name}))


@click.command()
@click.argument("session")
@click.option(
    "--run", "run_id", metavar="RUN", help="Replay only this run (its id or a unique prefix)."
)
@click.option(
    "--from",
    "from_",
    metavar="CHECKPOINT",
    help="Start SESSION at this checkpoint and replay the runs recorded after it, in order.",
)
@click.option(
    "--live", is_flag=True, help="Call the models again instead of answering from their records."
)
@click.option(
    "--keep", is_flag=True, help="Keep the replay's world (a scratch workspace) and print its path."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds each run may take (more than 0).",
)
@json_option
@click.pass_context
def replay(
    ctx: click.Context,
    session: str,
    run_id: str | None,
    from_: str | None,
    live: bool,
    keep: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Re-run SESSION's recorded runs, each in the world it saw, and report what differs.

    The world is a scratch workspace under .spell/replay/ rebuilt from the run's
    recorded starting point; the workspace itself is never changed. Exits 1 when
    anything differs: an artifact, a State key, a model call or the exit status.
    """
    ws = open_workspace(ctx)
    opts = {"from": from_, "live": live, "timeout": timeout, "run": run_id, "keep": keep}
    r = ws.history.replay(session, opts)
    if as_json:
        echo_json(r)
    else:
        _print_replay(r, live)
    if not r["same"]:
        ctx.exit(1)


def _print_replay(r: dict, live: bool) -> None:
    if r["from_checkpoint"] is not None:
        click.echo(
            f"replayed {len(r['runs'])} run(s) from checkpoint {r['from_checkpoint']} "
            f"of {r['session_id'][:8]}"
        )
    for run in r["runs"]:
        command = " ".join([run["script"], *run["args"]])
        was = run["original_exit_status"]
        click.echo(
            f"run {str(run['run'])[:8]} {command}: exit {run['exit_status']}"
            + ("" if run["exit_status"] == was else f" (was {was})")
        )
        for s in run["sessions"]:
            label = s["name"] or (s["session_id"] or s["replay_session_id"] or "?")[:8]
            extra = (
                " (created by the run)"
                if s["created"]
                else " (deleted by the run)"
                if s["deleted"]
                else ""
            )
            click.echo(f"  session {label}{extra}: {s['result']}")
            for a in s["artifacts"]:
                click.echo(f"    {a['result']:<8} {a['name']}")
                if a.get("diff"):
                    click.echo("      " + a["diff"].rstrip("\n").replace("\n", "\n      "))
            for k in s["state"]:
                click.echo(f"    state {k['result']:<8} {k['key']}")
        for k in run["state"]:
            click.echo(f"  state    {k['result']:<8} {k['key']}")
        for c in run.get("calls", ()):
            model = c["model"] + (f" -> {c['replay_model']}" if c.get("replay_model") else "")
            source = f", {c['source']}" if c.get("source") else ""  # live, replay or cache
            click.echo(f"  call {c['call']} {c['agent']} ({model}{source}): {c['result']}")
            if "original_query" in c:  # a search that asked something else
                click.echo(f"    asked {c['replay_query']!r}, recorded {c['original_query']!r}")
        if run.get("stderr"):
            click.echo("  " + run["stderr"].strip().replace("\n", "\n  "))
        if run.get("world"):
            click.echo(f"  world kept: {run['world']}")
    calls = r["calls_same"] + r["calls_differ"]
    searches = any(c.get("kind") == "search" for run in r["runs"] for c in run.get("calls", ()))
    state = r["state_same"] + r["state_differ"]
    click.echo(
        f"{r['artifacts_same']} same, {r['artifacts_differ']} different"
        + (f"; state: {r['state_same']} same, {r['state_differ']} different" if state else "")
        + (
            f"; {'calls (models and searches)' if searches else 'model calls'}: "
            f"{r['calls_same']} same, {r['calls_differ']} different "
            f"({'asked again' if live else 'answered from records'})"
            if calls
            else ""
        )
    )
