"""Following alert files as they are written: bytes in, whole lines out, nothing lost or repeated.

Layers, innermost first: ``lines`` (bytes to lines, pure), ``readers`` (plain and compressed
files), ``rotation`` (a rotated file's chain), ``positions`` (where each file was left, on disk),
``tail`` (one path walking its rotation chain), ``watches`` (inotify wake-ups), ``follower``
(the followed paths, globs and the consumer API).

May import: ``bridge.events``, the standard library and watchdog. Never ``bridge.service``,
``bridge.watching`` or the CLI: they call this package, not the other way round.
"""
