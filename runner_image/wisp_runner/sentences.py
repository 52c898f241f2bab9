"""Where a sentence ends: the rule that decides where segments and subtitle cues may be cut.

A dot ends a sentence unless it belongs to an abbreviation that is followed by more of the
sentence: a title before a name ("Dr. Smith"), a short form in running text ("e.g.", "etc.",
"vs."), a number label before its number ("No. 5"), a dotted short form ("U.S.", "a.m.") or a
name's initial ("John F. Kennedy").
"""

from __future__ import annotations

import re

SENTENCE_END = (".", "?", "!", "。", "？", "！")

# A word ending in one of these (case-insensitive, without its final dot) never ends a sentence:
# titles before a name, and Latin/English short forms that are followed by more of the sentence.
ABBREVIATIONS = frozenset(
    # titles and ranks
    "mr mrs ms mx messrs mmes dr drs prof profs rev hon st sr jr sen rep gov gen col capt cpt lt sgt "
    "cmdr adm maj pres supt insp mme mlle sra srta dra "
    # short forms in running text
    "vs etc cf approx ca incl esp viz dept univ bros mt ave blvd "
    # German short forms Whisper writes often
    "bzw usw vgl ggf evtl".split()
)
# Only before a number ("No. 5", "Fig. 3", "p. 12"): "no." and "p." also end sentences.
NUMBER_ABBREVIATIONS = frozenset("no nos nr fig figs p pp vol vols ch chap sec art eq op ref tel".split())
# End a sentence only before a capitalised word.
TIMES_OF_DAY = frozenset({"a.m", "p.m"})
_OPENERS = "\"'“‘«([{¿¡"
_DOTTED = re.compile(r"[^\W\d_]{1,3}(?:\.[^\W\d_]{1,3})+")  # e.g, i.e, a.m, U.S, Ph.D, z.B


def _initial(word: str | None) -> bool:
    core = (word or "").strip().lstrip(_OPENERS)
    return len(core) == 2 and core[0].isupper() and core[1] == "."


def ends_sentence(word: str, next_word: str | None = None, previous_word: str | None = None) -> bool:
    """Whether a sentence (so a segment or a cue) may end after `word`, given the words around it.

    A dot after an abbreviation (ABBREVIATIONS; "No."-style ones only before a number), after a
    dotted short form ("e.g.", "U.S."; "a.m."/"p.m." only before a lower-case word) or after a
    name's initial ("John F. Kennedy", "J. R. R. Tolkien") does not end a sentence."""
    text = word.strip()
    if not text.endswith(SENTENCE_END):
        return False
    if not text.endswith(".") or text.endswith("..") or next_word is None:
        return True
    core = text.lstrip(_OPENERS)[:-1]
    following = next_word.strip().lstrip(_OPENERS)
    if core.lower() in TIMES_OF_DAY:
        return following[:1].isupper()  # "at 3 p.m. Everyone" / "at 3 p.m. on Monday"
    if core.lower() in ABBREVIATIONS or _DOTTED.fullmatch(core):
        return False
    if core.lower() in NUMBER_ABBREVIATIONS and following[:1].isdigit():
        return False
    if _initial(text) and following[:1].isupper():
        # "plan B. Then" ends a sentence; an initial follows a name or another initial
        before = (previous_word or "").strip().lstrip(_OPENERS)
        if _initial(following) or _initial(before) or (before[:1].isupper() and not before.endswith(SENTENCE_END)):
            return False
    return True
