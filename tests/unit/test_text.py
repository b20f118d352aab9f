"""healthcheck/text.py in-process: outside text made safe to print, and secrets masked."""

import base64
import sys
from urllib.parse import quote

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT))
from healthcheck.constants import MAX_QUOTE_CHARS
from healthcheck.text import (
    Redactor,
    _fit,
    channel_key,
    clean_text,
    display_url,
    quote_untrusted,
    series_names,
)

TOKEN = "Sup3rS3cretValue99"


# -- Redactor -------------------------------------------------------------------------------------

def test_a_secret_is_hidden_whole_whatever_its_case():
    redact = Redactor([TOKEN])
    assert redact(f"got {TOKEN}!") == "got ***!"
    assert redact(TOKEN.upper()) == "***"  # a gateway may echo it upper-cased
    assert redact("nothing to hide") == "nothing to hide"


def test_a_secret_is_hidden_in_its_url_and_base64_forms():
    secret = "p@ss/w0rd+key=42"
    redact = Redactor([secret])
    assert quote(secret, safe="") not in redact(f"https://h/?k={quote(secret, safe='')}")
    encoded = base64.b64encode(b"user:" + secret.encode()).decode()
    assert "***" in redact(f"Authorization: Basic {encoded}")
    assert encoded not in redact(f"Authorization: Basic {encoded}")


def test_any_run_of_eight_characters_of_a_token_is_hidden():
    redact = Redactor([TOKEN])
    assert redact("..3cretVal..") == "..***.."
    assert redact("3cretVa") == "3cretVa"  # seven characters are not a leak


def test_secrets_of_under_four_characters_are_not_masked():
    """Masking "abc" would mask every word holding it; such a password protects nothing."""
    assert Redactor(["abc"])("abc def") == "abc def"


def test_a_word_secret_hides_itself_but_not_the_longer_words_that_hold_it():
    redact = Redactor(["test"])
    assert redact("testing the test; Test!") == "testing the ***; ***!"
    assert redact("attest") == "attest"
    # A %XX escape is a separator: user%3Atest%40host leaks it as much as user:test@host.
    assert redact("user%3Atest%40host") == "user%3A***%40host"


def test_a_long_letters_only_secret_is_no_word_and_is_hidden_inside_others():
    redact = Redactor(["correcthorsebatterystaple"])  # 16 characters or more: a passphrase
    assert redact("xxcorrecthorsebatterystaplexx") == "xx***xx"
    assert redact("staplecorrecthorse") == "staple***"  # a run of it, inside a word


def test_urls_given_whole_only_are_hidden_whole_not_by_their_pieces():
    redact = Redactor([], ["https://hooks.example/T0K3N-abcdef"])
    assert redact("sent to https://hooks.example/T0K3N-abcdef ok") == "sent to *** ok"
    assert redact("https://hooks.example/") == "https://hooks.example/"


def test_a_token_added_during_the_run_is_hidden_with_its_runs():
    redact = Redactor()
    redact.add("tok-1234567890abcdef")
    assert redact("Bearer tok-1234567890abcdef") == "Bearer ***"
    assert redact("id 1234567890") == "id ***"
    redact.add("ab")  # too short to mask anything
    assert redact("ab cd") == "ab cd"


# -- quote_untrusted and clean_text ---------------------------------------------------------------

def test_quote_is_one_line_and_cut_with_an_ellipsis():
    quoted = quote_untrusted("a\nb\r\x1b[31m" + "x" * 500)
    assert "\n" not in quoted and "\r" not in quoted and "\x1b" not in quoted
    assert quoted.endswith("...") and len(quoted) == MAX_QUOTE_CHARS + 3
    assert quote_untrusted("x" * 10, 5) == "xxxxx..."
    assert quote_untrusted("short") == "short"


def test_quote_of_data_is_its_json_and_of_an_object_its_type():
    assert quote_untrusted({"a": [1, "é"]}) == '{"a": [1, "é"]}'
    assert quote_untrusted(None) == "null"
    assert quote_untrusted(object()) == "<object>"
    assert quote_untrusted(b"bytes") == "<bytes>"


def test_quote_masks_the_runs_secrets_before_cutting():
    redact = Redactor([TOKEN])
    # The secret straddles the cut: masked whole first, so no fragment is left behind.
    assert quote_untrusted("x" * 10 + TOKEN, 20, redact) == "x" * 10 + "***"
    assert quote_untrusted("x" * 18 + TOKEN, 20, redact) == "x" * 18 + "**..."
    # Without the redactor (text the run has masked already) nothing is hidden.
    assert quote_untrusted("x" * 10 + TOKEN, 40) == "x" * 10 + TOKEN


@pytest.mark.parametrize("unsafe", ["\u202e", "\u200b", "\ud800", "\u2028", "\u2029", "\x7f",
                                    "\x00", "\t"])
def test_unsafe_unicode_becomes_a_question_mark(unsafe):
    assert clean_text(f"a{unsafe}b") == "a?b"
    assert clean_text(f"é{unsafe}b") == "é?b"  # the non-ASCII path too


def test_printable_text_is_kept_as_it_is():
    assert clean_text("Imobiliária 😀 ok") == "Imobiliária 😀 ok"


# -- names and addresses --------------------------------------------------------------------------

def test_channel_key_ignores_case_and_every_kind_of_space():
    assert channel_key(" Imob\tSites\n") == "imobsites"


def test_display_url_keeps_scheme_host_and_port_only():
    assert display_url("https://user:pw@gw.example:8443/api?x=1") == "https://gw.example:8443"
    assert display_url("http://[::1]:80/x") == "http://[::1]:80"
    assert display_url("http://h:99999/") == "an address that cannot be parsed"


def test_series_names_tell_apart_ids_that_clean_to_the_same_text():
    names = series_names(["abc\u200b", "abc\u200c", "abc?"])
    assert names["abc?"] == "abc?"  # an id that cleaning keeps keeps its name
    assert names["abc\u200b"].startswith("abc?~") and names["abc\u200c"].startswith("abc?~")
    assert len(set(names.values())) == 3


def test_fit_cuts_a_list_with_and_n_more():
    assert _fit("h: ", ["a", "b", "c"], 0) == "h: a, b, c"
    assert _fit("h: ", ["a"] * 12, 0) == "h: " + ", ".join(["a"] * 10) + " and 2 more"
    assert _fit("h: ", ["aaaa", "bbbb", "cccc", "dddd"], 14) == "h: aaaa and 3 more"
    assert _fit("h: ", ["aaaa"], 10, total=5) == "h: aaaa and 4 more"
