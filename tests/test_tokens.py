"""One-letter codes: unique per token, fixed letters never stolen, independent of the order tokens are met."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsim import tokens as T
from archsim.tokens import KNOWN, LETTERS, LayerSeq, letter, letters, tokens_from_letters

FIXED = set(LETTERS.values())
GOLDEN = Path(__file__).parent / "golden"

# Token names: canonical layers, known rare ones, one-character names (fixed letters among
# them, like a class named M), pool characters, and arbitrary identifiers.
names = st.one_of(
    st.sampled_from(sorted(LETTERS)),
    st.sampled_from(sorted(KNOWN)),
    st.sampled_from(sorted(FIXED)),
    st.characters(exclude_categories=("Cs",)),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=0, max_size=12),
)


def _home(token: str, alphabet) -> str:
    """The letter a token gets in a fresh alphabet when no other new token competes for it."""
    if token in alphabet.code:
        return alphabet.code[token]
    if T._shows_itself(token):
        return token
    return next(c for c in T._probes(token) if c not in alphabet.owner)


def test_class_named_m_does_not_take_maxpool_letter():
    """Issue #9 item 10: a layer class named `M` got `M`, MaxPool2d's letter."""
    assert letter("MaxPool2d") == "M"
    assert letter("M") != "M" and letter("M") not in FIXED
    s = letters(["Conv2d", "M", "MaxPool2d"])
    assert s[0] == "C" and s[2] == "M" and len(set(s)) == 3


def test_no_one_character_token_steals_a_fixed_letter():
    for ch in sorted(FIXED):
        assert letter(ch) != ch and letter(ch) not in FIXED
    assert letter("-") != "-"  # the gap column of a formatted alignment


def test_extracted_user_class_named_m():
    """The issue's case end to end: tracing a model with a custom layer class called M."""
    import torch.nn as nn

    from archsim.tracing import extract
    M = type("M", (nn.Module,), {"forward": lambda self, x: x})
    seq = extract(nn.Sequential(nn.Conv2d(3, 4, 3), M(), nn.MaxPool2d(2)), input_size=16)
    assert seq.tokens == ("Conv2d", "M", "MaxPool2d")
    s = str(seq)
    assert s[0] == "C" and s[2] == "M" and s[1] not in FIXED
    assert LayerSeq.from_letters(s).tokens == seq.tokens


def test_letter_strings_map_to_fixed_tokens_and_round_trip():
    seq = LayerSeq.from_letters("CCMCCML")
    assert seq.tokens == ("Conv2d", "Conv2d", "MaxPool2d", "Conv2d", "Conv2d", "MaxPool2d", "Linear")
    assert str(seq) == "CCMCCML" and seq.source == "letters"
    assert tokens_from_letters("C?") == ("Conv2d", "?") and str(LayerSeq.from_letters("C?")) == "C?"
    from archsim.figures import PAPER_TOKENS
    for s in PAPER_TOKENS.values():
        assert str(LayerSeq.from_letters(s)) == s


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.txt")), ids=lambda p: p.name)
def test_golden_letter_strings_unchanged(path):
    """Each golden file's letter line is still what its tokens spell."""
    lines = path.read_text(encoding="utf-8").splitlines()
    toks = [line.split(" ", 1)[0] for line in lines[2:]]
    assert letters(toks) == lines[0]


def test_every_zoo_token_has_a_fixed_or_known_letter():
    """Letters of the shipped zoo's tokens are assigned at import, so never depend on order."""
    from archsim.zoo.store import PACKAGED
    vocab = json.loads(gzip.decompress(PACKAGED.read_bytes()))["vocab"]
    missing = sorted(set(vocab) - set(LETTERS) - set(KNOWN) - set(T.KNOWN_LATER))
    assert not missing, f"add these to tokens.KNOWN_LATER: {missing}"


def test_later_known_tokens_move_no_earlier_letter(monkeypatch):
    """KNOWN_LATER (the hf: zoo's classes) is assigned after KNOWN: merged into it, one of them
    would take Keras's Reshape's letter."""
    full = T._Alphabet()
    monkeypatch.setattr(T, "KNOWN_LATER", ())
    first = T._Alphabet()
    assert {t: full.code[t] for t in first.code} == first.code


@settings(max_examples=300, deadline=None)
@given(st.lists(names, max_size=40))
def test_letters_are_unique_and_stable(tokens):
    """Distinct tokens never share a letter; a token keeps its letter; letters invert."""
    s = letters(tokens)
    assert len(s) == len(tokens)
    code = {t: letter(t) for t in tokens}
    assert len(set(code.values())) == len(code)
    assert letters(tokens) == s
    assert tokens_from_letters(s) == tuple(tokens)
    assert all(letter(t) == LETTERS[t] for t in tokens if t in LETTERS)


@settings(max_examples=200, deadline=None)
@given(st.lists(names, max_size=30, unique=True), st.randoms(use_true_random=False))
def test_letters_do_not_depend_on_order(tokens, rnd):
    """Fresh processes (alphabets) meeting the same tokens in any order give the same letters.

    Token by token, each gets its pure "home" letter unless two new tokens share one (then
    uniqueness wins); a whole sequence (``letters``) is assigned in sorted order, so even
    that case does not depend on the order of the sequence.
    """
    shuffled = tokens[:]
    rnd.shuffle(shuffled)
    one, two, three = T._Alphabet(), T._Alphabet(), T._Alphabet()
    one.assign(tokens)
    two.assign(shuffled)
    assert {t: one.code[t] for t in tokens} == {t: two.code[t] for t in tokens}
    for t in shuffled:
        three.letter(t)
    homes = {t: _home(t, T._Alphabet()) for t in tokens}
    clash = {h for h in homes.values() if list(homes.values()).count(h) > 1}
    for t in tokens:
        if homes[t] not in clash:
            assert three.code[t] == one.code[t] == homes[t]


_SCRIPT = """
import json, sys
from archsim.tokens import KNOWN, letter
order = json.loads(sys.argv[1])
got = {t: letter(t) for t in order}
print(json.dumps({**got, **{k: letter(k) for k in KNOWN}}, sort_keys=True))
"""


def test_letters_equal_across_processes_in_any_order():
    """Separate interpreters meeting tokens in different orders print the same letters,
    including a user token whose hash lands on a known token's letter."""
    fresh = T._Alphabet()
    known_home = {fresh.code[k]: k for k in KNOWN}
    rival = next(f"UserBlock{i}" for i in range(10**6)
                 if next(T._probes(f"UserBlock{i}")) in known_home)  # collides with a KNOWN token
    victim = known_home[next(T._probes(rival))]
    tokens = ["M", "FancyBlockA", rival, "Conv2d", "?", "x", victim, "FancyBlockB", "ChannelShuffle"]
    outs = []
    for order in (tokens, tokens[::-1], sorted(tokens)):
        r = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(order)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        outs.append(json.loads(r.stdout))
    assert outs[0] == outs[1] == outs[2]
    assert outs[0]["M"] != "M" and outs[0]["x"] != "x" and outs[0]["ChannelShuffle"] == "x" and outs[0]["?"] == "?"
    assert outs[0][victim] == fresh.code[victim] != outs[0][rival]  # the known token keeps its letter
    assert outs[0] == {t: letter(t) for t in outs[0]}  # and equal to this process
