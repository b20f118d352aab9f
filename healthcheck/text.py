"""Text that came from outside made safe to print, and secrets masked (pure)."""

import json
import re
import threading
from collections.abc import Callable, Sequence
from typing import Optional
from urllib.parse import quote, urlsplit

from .constants import MAX_CHANNEL_ID_CHARS, MAX_QUOTE_CHARS

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATES = re.compile("[\ud800-\udfff]")
#: Unicode categories replaced in gateway text: control and format characters (U+202E reverses
#: text, U+200B hides in a name), lone surrogates (half an emoji, which no encoder accepts) and
#: line and paragraph separators.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def clean_text(text: str) -> str:
    """Return gateway text with every character of an unsafe Unicode category as "?"."""
    if text.isascii():
        return _CONTROL_CHARS.sub("?", text)
    import unicodedata
    return "".join("?" if unicodedata.category(char) in UNSAFE_CATEGORIES else char
                   for char in text)


def quote_untrusted(value, limit: int = MAX_QUOTE_CHARS,
                    redact: Optional[Callable[[str], str]] = None) -> str:
    """Return text from outside as one printable line of bounded length.

    `redact` is the run's Redactor, for text that may echo a secret (what a gateway, a database
    or a mail server said). Text the run has already redacted (a listed channel's status, an
    error line) is quoted without it.
    """
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (ValueError, TypeError, RecursionError):
            text = f"<{type(value).__name__}>"
    # Redacted before the cut: a cut through an echoed secret would leave a fragment too
    # short for the redaction applied to the output.
    text = text[:limit * 4]
    if redact is not None:
        text = redact(text)
    cut = len(text) > limit
    text = clean_text(text[:limit])
    return text + "..." if cut else text


#: Shorter secrets are not masked (see Redactor).
MIN_MASKED_SECRET = 4
_REDACTOR_LOCK = threading.Lock()


class Redactor:
    """Removes the secrets from any text before it leaves the process.

    A secret is hidden whole, in its percent-encoded and base64 forms, and any run of
    MIN_LEAK of its characters is hidden too, whatever the case (a gateway may echo a hex
    secret upper-cased).

    A secret that is also a word ("test", "Welcome") must not hide the longer words that hold
    it ("testing" in an error message), so the secret itself is hidden wherever it stands,
    except where it continues a longer word: a letter or digit touches it on a side where it
    has a letter or digit too. A `%XX` escape before it is a separator, not part of a word, so
    `user%3Atest%40host` is hidden as much as `user:test@host`. Its encoded forms and the URLs
    are not words: they are hidden wherever they are, and so are the runs of a secret that holds
    a digit or a symbol (a token); the runs of a secret made of letters only follow the word
    rule, as they may be ordinary words too. A secret of MAX_WORD characters or more is no word:
    it and its runs are hidden wherever they are.
    """

    #: A run of this many characters of a secret counts as leaking it.
    MIN_LEAK = 8
    #: A secret this long is no word (a passphrase, a token): hidden even inside a longer one.
    MAX_WORD = 16

    def __init__(self, secrets: Sequence[str] = (), whole_only: Sequence[str] = ()):
        # A secret of 1 to 3 characters cannot be masked without masking every word that
        # holds those letters; such a password protects nothing anyway.
        secrets = [s for s in secrets if s and len(s) >= MIN_MASKED_SECRET]
        wholes = {s for s in whole_only if s}
        for secret in [s for s in secrets if s]:
            wholes.update(_encoded_forms(secret))
        words = {s for s in secrets if len(s) < self.MAX_WORD}
        wholes.update(s for s in secrets if s not in words)
        wholes.difference_update(words)
        # Longest first, so a secret that contains another is hidden whole.
        self._pattern = _alternatives(wholes)
        self._word_pattern = _alternatives(words)
        self._pieces = set()
        #: Runs of the secrets made of letters only: hidden, except inside a longer word.
        self._word_pieces = set()
        self._added: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= self.MIN_LEAK:
                lowered = secret.lower()
                runs = self._word_pieces if secret in words and secret.isalpha() \
                    else self._pieces
                runs.update(lowered[i:i + self.MIN_LEAK]
                            for i in range(len(lowered) - self.MIN_LEAK + 1))

    def add(self, secret: str) -> None:
        """Hide one more secret from now on (a token minted during the run).

        Cheap, because a run may mint hundreds: the token is replaced as it is, and its runs
        of MIN_LEAK characters join the pieces; the compiled pattern is left as it is.
        """
        if secret and len(secret) >= MIN_MASKED_SECRET:
            with _REDACTOR_LOCK:
                self._added.add(secret)
                lowered = secret.lower()
                self._pieces.update(lowered[i:i + self.MIN_LEAK]
                                    for i in range(len(lowered) - self.MIN_LEAK + 1))

    def __call__(self, text: str) -> str:
        for secret in tuple(self._added):  # a worker thread may be adding one
            text = text.replace(secret, "***")
        if (self._pattern is None and self._word_pattern is None and not self._pieces
                and not self._word_pieces):
            return text
        if self._pattern is not None:
            text = self._pattern.sub("***", text)
        if self._word_pattern is not None:
            text = self._word_pattern.sub(
                lambda m: m.group() if _continues_a_word(m.string, m.start(), m.end())
                else "***", text)
        if not self._pieces and not self._word_pieces:
            return text
        lowered = text.lower()
        if len(lowered) != len(text):  # a few characters change length when lower-cased
            lowered = "".join(c.lower()[:1] or c for c in text)
        hidden = self._runs(lowered, self._pieces)
        if self._word_pieces:
            in_words = self._runs(lowered, self._word_pieces)
            start = 0
            while start < len(text):
                if not in_words[start]:
                    start += 1
                    continue
                end = start
                while end < len(text) and in_words[end]:
                    end += 1
                if not _continues_a_word(text, start, end):
                    hidden[start:end] = [True] * (end - start)
                start = end
        if not any(hidden):
            return text
        out, previous = [], False
        for char, is_hidden in zip(text, hidden):
            if is_hidden and not previous:
                out.append("***")
            elif not is_hidden:
                out.append(char)
            previous = is_hidden
        return "".join(out)

    def _runs(self, lowered: str, pieces: set) -> list[bool]:
        """Mark each character of `lowered` that is part of one of `pieces`."""
        marked = [False] * len(lowered)
        if pieces:
            for i in range(len(lowered) - self.MIN_LEAK + 1):
                if lowered[i:i + self.MIN_LEAK] in pieces:
                    marked[i:i + self.MIN_LEAK] = [True] * self.MIN_LEAK
        return marked


def _alternatives(texts: set) -> Optional["re.Pattern[str]"]:
    """Return a pattern matching any of `texts` in any case, longest first; None for none."""
    ordered = sorted((t for t in texts if t), key=len, reverse=True)
    return re.compile("|".join(re.escape(t) for t in ordered), re.IGNORECASE) if ordered \
        else None


_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}\Z")


def _continues_a_word(text: str, start: int, end: int) -> bool:
    """True when text[start:end] is part of a longer word (see Redactor)."""
    joined_before = (start > 0 and text[start - 1].isalnum() and text[start].isalnum()
                     and not _PERCENT_ESCAPE.search(text, max(start - 3, 0), start))
    joined_after = end < len(text) and text[end].isalnum() and text[end - 1].isalnum()
    return joined_before or joined_after


def _encoded_forms(secret: str) -> list[str]:
    """Return the forms a secret takes in a URL or a base64 blob, to be hidden as well."""
    import base64
    raw = secret.encode("utf-8")
    forms = [quote(secret, safe=""), quote(secret)]
    for shift in range(3):  # base64 of the secret at each alignment within a longer value
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw).decode("ascii")
            # The first block mixes in what came before, the last what comes after.
            middle = encoded[4 if shift else 0:-4]
            if len(middle) >= Redactor.MIN_LEAK:
                forms.append(middle)
    return [f for f in forms if f != secret]


def display_url(url: str) -> str:
    """Return scheme://host:port of a URL: no credentials, path or query."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "?", parts.port
    except ValueError:  # a port over 65535, an unclosed [, characters NFKC turns into / or ?
        return "an address that cannot be parsed"
    if ":" in host:
        host = f"[{host}]"
    return quote_untrusted(f"{parts.scheme}://{host}" + (f":{port}" if port else ""), 120)


def channel_key(name: str) -> str:
    """Return a channel name as the panel matches it: case and spaces ignored."""
    return re.sub(r"\s+", "", name).lower()


def _fit_cap(limit: int) -> int:
    """How many items `_fit` can ever show: only those are worth quoting (of 200,000)."""
    return limit // 2 + 1 if limit else 11


def _fit(head: str, items: list[str], limit: int, total: Optional[int] = None) -> str:
    """Return head + items joined, cut with "and N more" to stay within `limit` (0: 10 items).

    `items` may be the first few of `total`.
    """
    total = len(items) if total is None else total
    if not limit:
        more = f" and {total - 10} more" if total > 10 else ""
        return head + ", ".join(items[:10]) + more
    text = head
    for index, item in enumerate(items):
        left = total - index - 1
        candidate = text + (", " if index else "") + item
        if index and len(candidate) + (len(f" and {left} more") if left else 0) > limit:
            return text + f" and {total - index} more"
        text = candidate
    return text + (f" and {total - len(items)} more" if total > len(items) else "")


def _label(value: str) -> str:
    """Return a label value escaped as the Prometheus text format requires."""
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def series_names(ids: Sequence[str]) -> dict[str, str]:
    """Return each channel id as its metrics label: cleaned, and never the same as another's.

    Cleaning turns invisible characters into "?", so "abc<U+200B>" and "abc<U+200C>" both come
    out "abc?", and node_exporter would drop one of the two series on every scrape. Those are
    told apart by a digest of the raw id ("abc?~1a2b3c4d"); an id that cleaning leaves as it is
    keeps its name, so a gateway cannot take another channel's name by listing it.
    """
    import hashlib
    cleaned = {raw: quote_untrusted(raw, MAX_CHANNEL_ID_CHARS) for raw in ids}
    uses: dict[str, int] = {}
    for name in cleaned.values():
        uses[name] = uses.get(name, 0) + 1
    names = {raw: name for raw, name in cleaned.items() if uses[name] == 1 or name == raw}
    taken = set(names.values())
    for raw in sorted(raw for raw in cleaned if raw not in names):
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
        # Longer digests, then a counter: an id listed to look like a digested name cannot
        # make two series the same either.
        candidates = [f"{cleaned[raw]}~{digest[:width]}" for width in (8, 16, 64)]
        name = next((c for c in candidates if c not in taken), "")
        number = 2
        while not name or name in taken:
            name, number = f"{candidates[-1]}~{number}", number + 1
        names[raw] = name
        taken.add(name)
    return names


def describe_told_apart(names: dict[str, str]) -> Optional[str]:
    """Say which channel ids came out the same once cleaned, and what their series are called."""
    told = sorted(name for raw, name in names.items()
                  if name != quote_untrusted(raw, MAX_CHANNEL_ID_CHARS))
    if not told:
        return None
    return _fit(f"{_plural(len(told), 'channel id')} differ from another only by invisible "
                f"characters; their metrics series are told apart by a digest of the raw id: ",
                told, 0)


def _count(value) -> int:
    """Return a count kept in the state file, 0 when it is not one (a hand-edited file)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _redact_tree(value, redact: Redactor, done: Optional[dict] = None):
    """Return a JSON-ready value with every string, keys included, cleaned and redacted.

    A string met again (a field name, a status: the same in every one of 200,000 channels) is
    cleaned and redacted once, so the JSON of a huge listing still fits in the deadline.
    """
    done = {} if done is None else done
    if isinstance(value, str):
        text = done.get(value)
        if text is None:
            text = done[value] = redact(clean_text(value))
        return text
    if isinstance(value, list):
        return [_redact_tree(v, redact, done) for v in value]
    if isinstance(value, dict):
        return {_redact_tree(k, redact, done): _redact_tree(v, redact, done)
                for k, v in value.items()}
    return value
