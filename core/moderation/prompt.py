"""Step 2 of the pipeline, prompt side: refuse prompts that ask for harmful clips, by lexicon.

The prompt is normalised first so that common evasions read like the plain word:
NFKC, casefold, accents and zero-width/control characters removed, Cyrillic and Greek
look-alikes mapped to Latin, leetspeak undone (``s3x``, ``p0rn``, ``@``), letters split by
spaces or punctuation joined (``n.u.d.e``, ``n u d e``) and runs of three or more equal
letters squeezed (``nuuuude``). Several normalised variants are matched (with and without
leetspeak, ``1`` read as ``i`` or ``l``, punctuation as a space or removed), each against
a small per-category lexicon in English, Italian, Spanish, French, German and Portuguese.

Terms are whole words or explicit stems, written in normalised form (lowercase ASCII, no
accents), so ``Sussex``, ``therapist``, ``grape`` and ``class`` do not match. The lexicon is
module-level data until it moves to ``config/policy.toml``. Nothing here prints or logs a
prompt, and a verdict never carries the matched term.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from core.types import Stage, Verdict

MINORS: Final = "prompt_sexual_minors"
CATEGORIES: Final = (
    MINORS,
    "prompt_sexual",
    "prompt_undress",
    "prompt_violence",
    "prompt_self_harm",
    "prompt_hate",
    "prompt_impersonation",
    "prompt_illegal",
)
"""Reason codes in the order they are checked (after ``prompt_too_long``)."""

# The lexicon: code -> language -> regex fragments over normalised text. Each fragment is
# matched as a whole word; a stem says so explicitly with ``\w*``.
LEXICON: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    MINORS: {
        "en": (
            r"lolicon",
            r"loli",
            r"shotacon",
            r"shota",
            r"p(?:a|ae|e)dophil\w*",
            r"child porn\w*",
            r"kiddie porn\w*",
            r"jailbait",
            r"cp porn",
        ),
        "it": (r"pedofil\w*", r"pedopornogra\w*", r"porno (?:con )?minorenni"),
        "es": (r"pedofil\w*", r"pornografia infantil", r"porno infantil"),
        "fr": (r"pedophil\w*", r"pedopornogra\w*", r"pornographie infantile"),
        "de": (r"padophil\w*", r"kinderporn\w*", r"kinderpornografie"),
        "pt": (r"pedofil\w*", r"pornografia infantil", r"porno infantil"),
    },
    "prompt_sexual": {
        "en": (
            r"sex",
            r"sexual\w*",
            r"porn\w*",
            r"nudes?",
            r"nudity",
            r"nsfw",
            r"hentai",
            r"naked(?! (?:eye|mole|flame|truth))",
            r"erotic\w*",
            r"blowjobs?",
            r"topless",
            r"genitals?",
            r"penis",
            r"vagina",
            r"boobs",
            r"nipples?",
            r"masturbat\w*",
            r"orgasm\w*",
        ),
        "it": (
            r"sesso",
            r"sessual[ei]",
            r"nuda",
            r"nudi",
            r"senza veli",
            r"tette",
            r"scopare",
            r"erotic[oaie]",
        ),
        "es": (r"sexo", r"desnud[oa]s?", r"tetas", r"follar", r"eroticas?", r"eroticos?"),
        "fr": (r"sexe", r"sexuel\w*", r"nues?", r"tout nu", r"seins nus", r"erotique\w*"),
        "de": (r"nackt(?:e|en|er|es)?", r"sexuell\w*", r"titten", r"ficken", r"erotisch\w*"),
        "pt": (r"sexo", r"nuas?", r"transar", r"peitos", r"mamilos?"),
    },
    "prompt_undress": {
        "en": (
            r"undress\w*",
            r"nudif\w*",
            r"deepnude\w*",
            r"(?:take|takes|taking|took) off (?:her|his|their|the) (?:clothes|clothing|dress|"
            r"shirt|top|bra|bikini|underwear|pants)",
            r"(?:remove|removes|removing|without|no) (?:her |his |their |the )?(?:clothes|"
            r"clothing|bra|underwear|bikini)",
            r"strip(?:s|ped|ping)? (?:her|him|them)",
            r"x ?ray (?:her|his) (?:clothes|body)",
        ),
        "it": (
            r"spogli(?:a|are|ala|alo|ata|ato|arsi|arla|arlo|ati)",
            r"svestir\w*",
            r"senza vestiti",
            r"togli(?:ere|le|gli)? (?:i )?vestiti",
        ),
        "es": (
            r"desnudar\w*",
            r"desnudal[oa]s?",
            r"desvist\w*",
            r"sin ropa",
            r"quita(?:le|r|rle)? la ropa",
        ),
        "fr": (r"deshabill\w*", r"sans vetements", r"enleve(?:r|z)? (?:ses|les|sa) vetements?"),
        "de": (
            r"entkleid\w*",
            r"ohne kleidung",
            r"ohne kleider",
            r"zieh (?:sie|ihn|ihr die kleider) aus",
        ),
        "pt": (r"despir\w*", r"despe (?:la|lo)", r"sem roupas?", r"tir(?:e|ar|a) a roupa"),
    },
    "prompt_violence": {
        "en": (
            r"kill(?:s|ed|ing)?(?! (?:myself|yourself|himself|herself|themselves))",
            r"murder\w*",
            r"behead\w*",
            r"decapitat\w*",
            r"stabbing",
            r"stab(?:s|bed)? (?:him|her|them|someone|people)",
            r"massacre\w*",
            r"tortur\w*",
            r"mutilat\w*",
            r"dismember\w*",
            r"rap(?:e|ed|es|ing|ist|ists)",
            r"bloodbath",
        ),
        "it": (r"uccid\w*", r"ammazz\w*", r"decapit\w*", r"sgozz\w*", r"massacr\w*", r"stupr\w*"),
        "es": (
            r"(?<!se )matar(?:lo|la|los|las)?",
            r"asesin\w*",
            r"decapit\w*",
            r"masacre\w*",
            r"violarl[ao]",
        ),
        "fr": (r"(?<!se )tuer", r"egorg\w*", r"decapit\w*", r"massacr\w*", r"violer", r"violee"),
        "de": (
            r"(?<!sich )umbring\w*",
            r"ermord\w*",
            r"enthaupt\w*",
            r"folter\w*",
            r"vergewaltig\w*",
            r"abschlachten",
        ),
        "pt": (
            r"(?<!se )matar(?:lo|la)?",
            r"assassin\w*",
            r"esfaque\w*",
            r"estupr\w*",
            r"massacr\w*",
        ),
    },
    "prompt_self_harm": {
        "en": (
            r"suicid\w*",
            r"self ?harm\w*",
            r"kill(?:s|ed|ing)? (?:myself|yourself|himself|herself|themselves)",
            r"cut(?:s|ting)? (?:my|your|her|his|their) wrists?",
            r"hang(?:s|ing)? (?:myself|yourself|himself|herself)",
        ),
        "it": (r"suicid\w*", r"autolesion\w*", r"tagliarsi le vene", r"impiccarsi"),
        "es": (r"suicid\w*", r"autolesion\w*", r"cortarse las venas", r"ahorcarse"),
        "fr": (r"suicid\w*", r"automutil\w*", r"se pendre", r"se tuer", r"taillader les veines"),
        "de": (r"selbstmord\w*", r"suizid\w*", r"selbstverletz\w*", r"sich umbringen"),
        "pt": (r"suicid\w*", r"automutil\w*", r"se matar", r"cortar os pulsos", r"se enforcar"),
    },
    "prompt_hate": {
        "en": (
            r"nigg(?:er|ers|a|as)",
            r"faggots?",
            r"kikes?",
            r"heil hitler",
            r"sieg heil",
            r"white power",
            r"gas the jews",
        ),
        "it": (r"froci[o]?", r"ricchion[ei]", r"sporco negro", r"sporchi ebrei"),
        "es": (r"maricon(?:es)?", r"sudacas?", r"judios de mierda"),
        "fr": (r"bougnoules?", r"sale (?:juif|arabe|negre)s?", r"youpins?"),
        "de": (r"kanaken?", r"judensau", r"schwuchtel\w*", r"untermensch\w*"),
        "pt": (r"sapatao", r"macaco imundo", r"judeu imundo"),
    },
    "prompt_impersonation": {
        "en": (
            r"deepfake\w*",
            r"make (?:the )?(?:president|pope|prime minister|king|queen|chancellor|"
            r"mayor|governor|senator) say\w*",
            r"fake (?:police|cop|cops|officer|official|news anchor|government)",
            r"pretend(?:ing)? to be (?:the )?(?:police|president|pope|a police officer)",
        ),
        "it": (
            r"fai dire al (?:presidente|papa|premier)",
            r"finta polizia",
            r"falso poliziotto",
            r"finto carabiniere",
        ),
        "es": (r"haz que el (?:presidente|papa|rey) diga", r"policia falsa", r"falso policia"),
        "fr": (r"fais dire au (?:president|pape|roi)", r"fausse police", r"faux policier"),
        "de": (
            r"lass den (?:prasidenten|kanzler|papst) sagen",
            r"falsche polizei",
            r"falscher polizist",
        ),
        "pt": (r"faca o (?:presidente|papa) dizer", r"policia falsa", r"falso policial"),
    },
    "prompt_illegal": {
        "en": (
            r"cocain\w*",
            r"heroin",
            r"meth(?:amphetamine)?",
            r"pipe bombs?",
            r"how to make (?:a )?(?:bomb|explosives?)",
            r"counterfeit\w*",
            r"fake (?:passport|id|money|banknotes?)",
        ),
        "it": (r"cocain\w*", r"bomba fatta in casa", r"banconote false", r"documenti falsi"),
        "es": (r"cocain\w*", r"bomba casera", r"billetes falsos", r"pasaporte falso"),
        "fr": (r"cocain\w*", r"bombe artisanale", r"faux billets", r"faux passeport"),
        "de": (r"kokain\w*", r"rohrbomben?", r"falschgeld", r"gefalschter pass"),
        "pt": (r"cocain\w*", r"bomba caseira", r"dinheiro falso", r"passaporte falso"),
    },
}

# Words that name a child or a young age; with any sexual or undressing term they make
# the prompt ``prompt_sexual_minors``. Ages are matched before leetspeak undoes digits.
MINOR_TERMS: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        r"child\w*",
        r"kids?",
        r"minors?",
        r"underage\w*",
        r"toddlers?",
        r"preteens?",
        r"teen\w*",
        r"schoolgirls?",
        r"schoolboys?",
        r"little (?:girl|boy)s?",
        r"(?:[1-9]|1[0-7]) ?(?:yo|y o|years? old|yr old)",
    ),
    "it": (r"bambin[oaie]", r"ragazzin[oaie]", r"minorenn[ei]", r"(?:[1-9]|1[0-7]) anni"),
    "es": (r"nin[oa]s?", r"menor(?:es)? de edad", r"nenas?", r"(?:[1-9]|1[0-7]) anos"),
    "fr": (
        r"enfants?",
        r"mineur(?:e|s|es)?",
        r"fillettes?",
        r"gamin(?:e|s|es)?",
        r"(?:[1-9]|1[0-7]) ans",
    ),
    "de": (r"kinder", r"(?:ein|das|kleines) kind", r"minderjahrig\w*", r"(?:[1-9]|1[0-7]) jahre"),
    "pt": (r"criancas?", r"menor(?:es)? de idade", r"menin[oa]s?", r"(?:[1-9]|1[0-7]) anos"),
}

# Words that sexualise a person without being explicit; they count only next to a minor term.
SEXUALISING_TERMS: Final[dict[str, tuple[str, ...]]] = {
    "en": (r"sexy", r"seductive\w*", r"lingerie", r"sensual\w*"),
    "it": (r"sexy", r"sensual[ei]", r"seducent[ei]"),
    "es": (r"sexy", r"sensual(?:es)?", r"provocativas?"),
    "fr": (r"sexy", r"sensuel(?:le|s|les)?", r"aguicheuses?"),
    "de": (r"sexy", r"sinnlich\w*", r"verfuhrerisch\w*"),
    "pt": (r"sexy", r"sensua(?:l|is)", r"provocantes?"),
}

# Look-alike letters after casefolding (Cyrillic, then Greek) -> the Latin letter they imitate.
CONFUSABLES: Final = str.maketrans(
    "авеёкмнорстухіїјѕԁһпгь" + "αβγεηικμνορτυχωςπ",
    "abeekmhopctyxiijsdhnrb" + "abyenikuvoptuxwsn",
)
_LEET_COMMON: Final = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
LEET_AS_I: Final = str.maketrans({**_LEET_COMMON, "1": "i", "!": "i", "|": "l"})
LEET_AS_L: Final = str.maketrans({**_LEET_COMMON, "1": "l", "!": "i", "|": "l"})

_PUNCT = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")
# NOTE: three or more lone letters in a row ("n u d e") are a spelled-out word; two are
# too common in ordinary text ("a b") to join.
_LONE_LETTERS = re.compile(r"(?<!\S)(?:[^\W\d_] ){2,}[^\W\d_](?!\S)")
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")


def _compile(terms: tuple[str, ...], whole_word: bool) -> re.Pattern[str]:
    """One alternation; whole-word unless it is used inside joined lone letters."""
    body = "|".join(terms)
    return re.compile(rf"\b(?:{body})\b" if whole_word else f"(?:{body})")


def _flatten(by_language: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """All fragments of one category, every language together."""
    return tuple(term for terms in by_language.values() for term in terms)


_WORDS: Final = {code: _compile(_flatten(LEXICON[code]), True) for code in CATEGORIES}
_INSIDE: Final = {code: _compile(_flatten(LEXICON[code]), False) for code in CATEGORIES}
_MINOR_WORDS: Final = _compile(_flatten(MINOR_TERMS), True)
_SEXUALISING: Final = (
    _WORDS["prompt_sexual"],
    _WORDS["prompt_undress"],
    _compile(_flatten(SEXUALISING_TERMS), True),
)


def normalise(prompt: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the normalised variants of a prompt, and the words it spelled out letter by letter.

    Args:
        prompt: the raw prompt.

    Returns:
        ``(variants, spelled)``: distinct variants without leetspeak and with ``1`` read as
        ``i`` and as ``l``, each with punctuation read as a space and as nothing; and the
        joined runs of lone letters (``n u d e`` -> ``nude``) found in any of them.
    """
    text = unicodedata.normalize("NFKC", prompt).casefold()
    text = "".join(
        " " if ch.isspace() else ch
        for ch in unicodedata.normalize("NFD", text)
        # Mn: accents; Cf: zero-width and bidi marks; Cc: control characters.
        if unicodedata.category(ch) not in ("Mn", "Cf", "Cc") or ch.isspace()
    )
    text = text.translate(CONFUSABLES)
    variants: dict[str, None] = {}
    spelled: dict[str, None] = {}
    for leet in (None, LEET_AS_I, LEET_AS_L):
        spelt = text if leet is None else text.translate(leet)
        for joiner in (" ", ""):
            spaced = _SPACES.sub(" ", _PUNCT.sub(joiner, spelt)).strip()
            for run in _LONE_LETTERS.finditer(spaced):
                spelled[_squeeze(run.group(0).replace(" ", ""))] = None
            joined = _LONE_LETTERS.sub(lambda m: m.group(0).replace(" ", ""), spaced)
            variants[_squeeze(joined)] = None
    return tuple(variants), tuple(spelled)


def _squeeze(text: str) -> str:
    """Squeeze runs of three or more equal letters to one (``nuuude`` -> ``nude``)."""
    return _REPEATS.sub(r"\1", text)


class PromptLexiconCheck:
    """Refuses prompts over the length limit or matching a category of the lexicon.

    Args:
        max_chars: the longest prompt accepted, in characters.
    """

    name = "prompt-lexicon"

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars

    def check(self, prompt: str) -> Verdict:
        """Return an allowing verdict, or a rejecting one with the first matching category."""
        if len(prompt) > self._max_chars:
            return Verdict.reject(
                "prompt_too_long", Stage.PROMPT, self.name, {"length": float(len(prompt))}
            )
        if not prompt.strip():
            return Verdict.ok(Stage.PROMPT, self.name)
        code = first_category(*normalise(prompt))
        if code is None:
            return Verdict.ok(Stage.PROMPT, self.name)
        return Verdict.reject(code, Stage.PROMPT, self.name)


def first_category(variants: tuple[str, ...], spelled: tuple[str, ...] = ()) -> str | None:
    """Return the first category code whose lexicon matches any variant, or None.

    Args:
        variants: normalised variants of the prompt (see :func:`normalise`).
        spelled: letter runs that were joined; matched without word boundaries, so that
            ``a n u d e`` (joined as ``anude``) still shows ``nude``.
    """
    if any(pattern.search(v) for pattern in _SEXUALISING for v in variants) and any(
        _MINOR_WORDS.search(v) for v in variants
    ):
        return MINORS
    for code in CATEGORIES:
        if any(_WORDS[code].search(v) for v in variants):
            return code
        if any(_INSIDE[code].search(run) for run in spelled):
            return code
    return None
