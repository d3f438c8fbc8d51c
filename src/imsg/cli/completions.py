"""``imsg completions bash|zsh|fish|llm``: shell completion scripts (click's), or a Markdown
reference of every command and flag for language models, generated from the click
definitions themselves so it can never fall behind them."""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish", "llm")
COMPLETE_VAR = "_IMSG_COMPLETE"


@click.command()
@click.argument("shell", metavar="bash|zsh|fish|llm", required=False)
def completions(shell: str | None, **_: Any) -> None:
    """Print a completion script for a shell, or (`llm`) a Markdown reference of every command.

    \b
    Example:
      imsg completions bash > ~/.local/share/bash-completion/completions/imsg
      imsg completions zsh > "${fpath[1]}/_imsg"
      imsg completions fish > ~/.config/fish/completions/imsg.fish
      imsg completions llm > imsg-reference.md
    """
    from imsg.cli import main

    if not shell:
        raise click.UsageError(f"Missing shell (use {', '.join(SHELLS)})")
    if shell == "llm":
        click.echo(reference(main), nl=False)
        return
    completion = get_completion_class(shell) if shell in SHELLS else None
    if completion is None:
        raise click.UsageError(f"Unknown shell: {shell} (use {', '.join(SHELLS)})")
    script = completion(main, {}, "imsg", COMPLETE_VAR).source()
    if shell == "bash":  # the Swift tool's function name, which scripts and tests look for
        script = script.replace("_imsg_completion()", "_imsg()").replace(
            "complete -o nosort -F _imsg_completion imsg", "complete -F _imsg imsg")
    elif shell == "fish":  # the same command in the short spelling the Swift tool's uses
        script = script.replace("complete --no-files --command imsg --arguments",
                                "complete -c imsg -f -a")
    click.echo(script)


def reference(root: click.Group) -> str:
    """Markdown: every command of ``root`` (subcommands too) with its usage, description,
    examples, arguments and options."""
    ctx = click.Context(root, info_name="imsg")
    lines = ["# imsg CLI Reference", "", *_description(root.help or ""), "",
             "Every command also accepts the runtime flags `--json` (`-j`, `--json-output`,"
             " `--jsonOutput`: one JSON object per line), `-v`/`--verbose` and"
             " `--log-level LEVEL`; a command they mean nothing to ignores them.", ""]
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        if command is not None:
            lines.extend(_command(command, click.Context(command, info_name=name, parent=ctx)))
    return "\n".join(lines).rstrip("\n") + "\n"


def _command(command: click.Command, ctx: click.Context) -> list[str]:
    lines = [f"## {ctx.command_path}", ""]
    lines.extend(_description(command.help or command.short_help or ""))
    lines.extend(["", f"Usage: `{ctx.command_path} {' '.join(command.collect_usage_pieces(ctx))}`",
                  ""])
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    if arguments:
        lines.extend(["| argument | required |", "|---|---|"])
        lines.extend(f"| `{p.make_metavar(ctx)}` | {'yes' if p.required else 'no'} |"
                     for p in arguments)
        lines.append("")
    if options:
        lines.extend(["| option | value | default | description |", "|---|---|---|---|"])
        lines.extend(_option_row(option, ctx) for option in options)
        lines.append("")
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                lines.extend(_command(sub, click.Context(sub, info_name=name, parent=ctx)))
    return lines


def _option_row(option: click.Option, ctx: click.Context) -> str:
    names = ", ".join(f"`{name}`" for name in [*option.opts, *option.secondary_opts])
    if option.is_flag:
        value = "flag"
    elif isinstance(option.type, click.Choice):
        value = "|".join(str(choice) for choice in option.type.choices)
    else:
        value = option.metavar or option.type.name
    if option.multiple:
        value += ", repeatable"
    default = option.get_default(ctx, call=False)
    unset = default is None or callable(default) or type(default).__name__ == "Sentinel"
    shown = "" if unset or default in (False, ()) else f"`{default}`"
    if option.required:
        shown = "required"
    text = " ".join((option.help or "").split()).replace("|", "\\|")
    if option.envvar:
        text += f" (env `{option.envvar}`)"
    return f"| {names} | {value} | {shown} | {text} |"


def _description(help_text: str) -> list[str]:
    """Click help as Markdown: prose paragraphs, and the ``Example:`` block as shell code."""
    prose: list[str] = []
    examples: list[str] = []
    target = prose
    for raw in help_text.splitlines():
        line = raw.rstrip()
        if line.strip() == "\b":
            continue
        if line.strip() == "Example:":
            target = examples
            continue
        target.append(line.strip() if target is prose else line)
    text = "\n".join(prose).strip()
    lines = text.splitlines() if text else []
    if examples:
        indent = min(len(e) - len(e.lstrip()) for e in examples if e.strip())
        body = [e[indent:] for e in examples if e.strip()]
        lines.extend(["", "Example:", "", "```sh", *body, "```"])
    return lines
