"""routeros-sim's interactive terminal, pure: keystrokes in, what the router writes back out.

What RouterOS's console does for a person or a tool on a pty (manual "Command Line Interface",
ROUTEROS.md §1): the login options after ``+`` in the user name (``c`` colours off, ``t`` no
terminal detection, ``e`` dumb mode, ``Nw``/``Nh`` width and height), the ``ESC Z`` terminal
detection unless ``t`` is given, the banner, the prompt ``[user@identity] > `` (``[user@identity]
/ip firewall filter> `` in v6, ``/ip/firewall/filter>`` in v7, once a menu was entered), echo,
line editing (backspace, Delete, left/right, Home/End, Ctrl-A/E/U/K, Ctrl-C drops the line,
up/down through the history), entries over several lines while a ``{ [ ( "`` is open (the
continuation prompt lists them: ``{(... ``), output with CRLF, ``/quit`` (or ``quit``) and
Ctrl-D on an empty line to leave. No colours are ever sent; width and height change nothing.

The SSH server moves the bytes (``ssh_server``); running an entry is a callback, so this module
knows no router.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from responder.sim.script.tokens import open_brackets

DETECT = "\x1bZ"  # RouterOS asks the terminal who it is; VT52-style terminals answer ESC / Z
MAX_ENTRY = 64 * 1024  # one entry (all its lines): bigger is no one typing
MAX_HISTORY = 100
_OPTION = re.compile(r"([0-9]*)([a-z])")
_ANSWER = re.compile(r"\x1b/Z|\x1b\[\?[0-9;]*c")  # ESC / Z (VT52) or a DA reply (ESC [ ? 1 ; 2 c, xterm)

BANNER_ART = (
    "  MMM      MMM       KKK                          TTTTTTTTTTT      KKK",
    "  MMMM    MMMM       KKK                          TTTTTTTTTTT      KKK",
    "  MMM MMMM MMM  III  KKK  KKK  RRRRRR     OOOOOO      TTT     III  KKK  KKK",
    "  MMM  MM  MMM  III  KKKKK     RRR  RRR  OOO  OOO     TTT     III  KKKKK",
    "  MMM      MMM  III  KKK KKK   RRRRRR    OOO  OOO     TTT     III  KKK KKK",
    "  MMM      MMM  III  KKK  KKK  RRR  RRR   OOOOOO      TTT     III  KKK  KKK",
)


@dataclass(frozen=True)
class LoginOptions:
    """``admin+ct511w4098h``: the parameters after ``+`` (manual "Command Line Interface", Login Options)."""

    colours: bool = True
    detect: bool = True
    dumb: bool = False
    width: int | None = None
    height: int | None = None


def parse_login_options(login: str) -> LoginOptions:
    """Unknown letters are ignored; a letter without a number takes its implicit value."""
    _, _, params = login.partition("+")
    values: dict[str, object] = {}
    for number, letter in _OPTION.findall(params):
        if letter in "wh":
            values["width" if letter == "w" else "height"] = int(number) if number else None
        elif letter == "c":
            values["colours"] = bool(int(number)) if number else False
        elif letter == "t":
            values["detect"] = bool(int(number)) if number else False
        elif letter == "e":
            values["dumb"] = bool(int(number)) if number else True
    return LoginOptions(**values)  # type: ignore[arg-type]


def banner(version: str) -> list[str]:
    """The lines RouterOS shows after login (the art, the version line, the help hint)."""
    number = version.split()[0]
    year = "2024"
    lines = ["", *BANNER_ART, ""]
    if number.startswith("6."):
        lines += [f"  MikroTik RouterOS {number} (c) 1999-{year}       http://www.mikrotik.com/", ""]
        lines += [
            "[?]             Gives the list of available commands",
            "command [?]     Gives help on the command and list of arguments",
            "",
            "[Tab]           Completes the command/word. If the input is ambiguous,",
            "                a second [Tab] gives possible options",
            "",
            "/               Move up to base level",
            "..              Move up one level",
            "/command        Use command at the base level",
        ]
    else:
        lines += [f"  MikroTik RouterOS {number} (c) 1999-{year}       https://www.mikrotik.com/", ""]
        lines += ["Press F1 for help"]
    return lines + [""]


def prompt(user: str, identity: str, cwd: tuple[str, ...], flavour: str) -> str:
    if not cwd:
        return f"[{user}@{identity}] > "
    path = "/" + ("/" if flavour == "v7" else " ").join(cwd)
    return f"[{user}@{identity}] {path}> "


@dataclass
class LineEditor:
    """One line being typed: the text, the cursor, the history, and half-read escape sequences."""

    text: str = ""
    cursor: int = 0
    history: list[str] = field(default_factory=list)
    browsing: int | None = None  # index into history while up/down are used
    pending: str = ""  # an escape sequence not complete yet
    after_cr: bool = False  # a LF right after CR is the same Enter

    def redraw(self, shown_prompt: str) -> str:
        back = len(self.text) - self.cursor
        return "\r" + shown_prompt + self.text + "\x1b[K" + (f"\x1b[{back}D" if back else "")

    def recall(self, step: int, shown_prompt: str) -> str:
        if not self.history:
            return ""
        index = len(self.history) if self.browsing is None else self.browsing
        index = max(0, min(len(self.history), index + step))
        self.browsing = index
        self.text = self.history[index] if index < len(self.history) else ""
        self.cursor = len(self.text)
        return self.redraw(shown_prompt)

    def remember(self, entry: str) -> None:
        if entry.strip() and (not self.history or self.history[-1] != entry):
            self.history.append(entry)
            del self.history[:-MAX_HISTORY]
        self.browsing = None


def one_line(lines: list[str]) -> str:
    """A multi-line entry as the single line the history recalls (lines joined by ``;``, a
    continuation ``\\`` by a space), which runs the same."""
    out = ""
    for index, line in enumerate(lines):
        if index == 0:
            out = line
        elif out.rstrip().endswith("\\"):
            out = out.rstrip()[:-1] + " " + line.lstrip()
        else:
            out += "; " + line.lstrip()
    return out


class Terminal:
    """One interactive session. ``start()`` then ``feed(keys)`` repeatedly; each returns what to
    send. ``closed`` is set once the person quit. ``run(entry)`` returns the entry's output lines."""

    def __init__(
        self,
        run: Callable[[str], list[str]],
        prompt_of: Callable[[], str],
        *,
        version: str,
        options: LoginOptions = LoginOptions(),
    ):
        self.run = run
        self.prompt_of = prompt_of
        self.version = version
        self.options = options
        self.editor = LineEditor()
        self.lines: list[str] = []  # the earlier lines of an entry still open
        self.closed = False

    # -- what is shown ------------------------------------------------------------------------
    def shown_prompt(self) -> str:
        if self.lines:
            return open_brackets("\n".join(self.lines)) + "... "
        return self.prompt_of()

    def start(self) -> str:
        return "\r\n".join(banner(self.version)) + "\r\n" + self.shown_prompt()

    # -- keys -----------------------------------------------------------------------------------
    def feed(self, keys: str) -> str:
        out: list[str] = []
        data = self.editor.pending + keys
        self.editor.pending = ""
        i = 0
        while i < len(data) and not self.closed:
            ch = data[i]
            if ch == "\x1b":
                used = self.escape(data[i:], out)
                if used == 0:
                    self.editor.pending = data[i:]
                    break
                i += used
                continue
            if self.editor.after_cr and ch == "\n":
                self.editor.after_cr = False
                i += 1
                continue
            self.editor.after_cr = ch == "\r"
            out.append(self.key(ch))
            i += 1
        return "".join(out)

    def escape(self, data: str, out: list[str]) -> int:
        """Consume one escape sequence at the start of ``data``; 0 if it is not complete yet."""
        answer = _ANSWER.match(data)
        if answer:  # a late answer to the detection: nothing to show
            return answer.end()
        if len(data) < 2:
            return 0
        if data[1] not in "[O/":
            return 1  # a lone Esc: ignored, the key after it is typed as usual
        match = re.match(r"\x1b[\[O]([0-9;?]*)([A-Za-z~])", data)
        if match is None:
            return 0 if len(data) < 8 else 2
        code = match.group(1) + match.group(2)
        editor, shown = self.editor, self.shown_prompt()
        if code == "A":
            out.append(editor.recall(-1, shown))
        elif code == "B":
            out.append(editor.recall(+1, shown))
        elif code == "C" and editor.cursor < len(editor.text):
            editor.cursor += 1
            out.append("\x1b[C")
        elif code == "D" and editor.cursor > 0:
            editor.cursor -= 1
            out.append("\x1b[D")
        elif code in ("H", "1~"):
            out.append(self.key("\x01"))
        elif code in ("F", "4~"):
            out.append(self.key("\x05"))
        elif code == "3~":
            out.append(self.delete_under_cursor(shown))
        return match.end()

    def key(self, ch: str) -> str:
        editor, shown = self.editor, self.shown_prompt()
        if ch in "\r\n":
            return self.enter()
        if ch == "\x03":  # Ctrl-C: the line (and an open multi-line entry) is dropped
            editor.text, editor.cursor, self.lines = "", 0, []
            editor.browsing = None
            return "\r\n" + self.shown_prompt()
        if ch == "\x04":  # Ctrl-D: leave on an empty line, else delete under the cursor
            if not editor.text and not self.lines:
                self.closed = True
                return "\r\n"
            return self.delete_under_cursor(shown)
        if ch in "\x7f\x08":
            if editor.cursor == 0:
                return "\x07"
            editor.text = editor.text[: editor.cursor - 1] + editor.text[editor.cursor :]
            editor.cursor -= 1
            if editor.cursor == len(editor.text):
                return "\b \b"
            return editor.redraw(shown)
        if ch == "\x01":
            editor.cursor = 0
            return editor.redraw(shown)
        if ch == "\x05":
            editor.cursor = len(editor.text)
            return editor.redraw(shown)
        if ch == "\x15":  # Ctrl-U: everything before the cursor
            editor.text, editor.cursor = editor.text[editor.cursor :], 0
            return editor.redraw(shown)
        if ch == "\x0b":  # Ctrl-K: everything from the cursor on
            editor.text = editor.text[: editor.cursor]
            return editor.redraw(shown)
        if ch == "\t" or ch < " ":
            return ""  # no completion; other control keys do nothing
        if len(editor.text) + sum(map(len, self.lines)) >= MAX_ENTRY:
            return "\x07"
        editor.text = editor.text[: editor.cursor] + ch + editor.text[editor.cursor :]
        editor.cursor += 1
        if editor.cursor == len(editor.text):
            return ch
        return editor.redraw(shown)

    def delete_under_cursor(self, shown: str) -> str:
        editor = self.editor
        if editor.cursor < len(editor.text):
            editor.text = editor.text[: editor.cursor] + editor.text[editor.cursor + 1 :]
            return editor.redraw(shown)
        return ""

    def enter(self) -> str:
        editor = self.editor
        line, editor.text, editor.cursor = editor.text, "", 0
        entry = "\n".join([*self.lines, line])
        if open_brackets(entry):
            self.lines.append(line)
            return "\r\n" + self.shown_prompt()
        editor.remember(one_line(self.lines + [line]))
        self.lines = []
        if entry.strip() in ("/quit", "quit"):
            self.closed = True
            return "\r\n"
        output = self.run(entry) if entry.strip() else []
        return "\r\n" + "".join(text + "\r\n" for text in output) + self.shown_prompt()


__all__ = ["DETECT", "LoginOptions", "Terminal", "banner", "parse_login_options", "prompt"]
