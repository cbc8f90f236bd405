"""Shell completion for ``unitrain``, made from its argument parser (``unitrain completion``).

Bash: ``source <(unitrain completion bash)`` (in ``~/.bashrc`` to keep it).
Zsh: ``autoload -U bashcompinit && bashcompinit`` first. Commands, their
subcommands and options complete; anything else completes as a file name.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

__all__ = ["bash_script"]


def _words(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, list[str]]]:
    """(the commands typed so far, the words that may come next), for every parser."""
    words: list[str] = []
    children: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:  # argparse has no public walk of its parsers
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words.append(name)
                children.append((name, child))
        elif action.option_strings:
            words.extend(action.option_strings)
        elif action.choices:  # a positional argument with fixed values
            words.extend(str(choice) for choice in action.choices)
    yield path, words
    for name, child in children:
        yield from _words(child, f"{path} {name}".strip())


def bash_script(parser: argparse.ArgumentParser) -> str:
    """A bash completion function for ``parser``'s program."""
    program = parser.prog
    cases = "\n".join(
        f'        "{path}") words="{" ".join(words)}" ;;' for path, words in _words(parser)
    )
    function = f"_{program.replace('-', '_')}_complete"
    return f"""# bash completion for {program}: source <({program} completion bash)
{function}() {{
    local current="${{COMP_WORDS[COMP_CWORD]}}" typed="" word words=""
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$word" in -*) ;; *) typed="$typed $word" ;; esac
    done
    case "${{typed# }}" in
{cases}
    esac
    COMPREPLY=($(compgen -W "$words" -- "$current"))
}}
complete -o default -F {function} {program}
"""
