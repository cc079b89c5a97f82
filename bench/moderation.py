"""Measure the moderation policy: precision and recall per category, false positives, latency.

Run: ``.venv/bin/python -m bench.moderation`` (``--split`` tune, dev, dev2, heldout, blind2,
blind3, blind4, blind5 or all; ``--language``, ``--errors`` to list the misses of the splits
tuned on, ``--cross`` for the classifier's leave-one-file-out table). The prompts:

- ``tune`` (tests/data/prompts.tsv): written with the policy and tuned on; also
  config/training/probes.tsv, the lexicon authors' own probes;
- ``heldout`` (tests/data/prompts.tsv): written by the policy's authors, never tuned on row by row;
- ``dev`` (config/training/dev.tsv): written by someone who had not seen the lexicon, the
  exemplars or the other prompts; measured once as written, then tuned and trained on;
- ``dev2`` (config/training/dev2.tsv): written the same way, independently; it was the first
  blind split, measured without its misses shown, then opened, tuned and trained on;
- ``blind2`` (tests/data/prompts_blind2.tsv): written the same way, by six other writers, and
  never tuned or trained on; read in aggregate four times while the classifier was built,
  four more while later rounds went in;
- ``blind3`` (tests/data/prompts_blind3.tsv): written the same way, by six more writers who saw
  only the label definitions, and never tuned or trained on; read in aggregate five times
  while the fifth to seventh training rounds went in;
- ``blind4`` (tests/data/prompts_blind4.tsv): written the same way, by six more writers, and
  read first after the fifth and sixth rounds and the sexual level were chosen, again after
  the seventh round;
- ``blind5`` (tests/data/prompts_blind5.tsv): written the same way, by six more writers, and
  read once, after everything it measures was chosen.

The classifier is trained on config/training/*.tsv, so its figures on ``tune``, ``dev`` and
``dev2`` are fits, not measurements; ``--cross`` trains it once per training file without that
file and measures the whole chain on the file left out. Misses of ``heldout`` and the
blind splits are never printed, so tuning cannot peek at them. The checks are the production
chain of ``core.services.moderation_checks`` on ``config/policy.toml``. Latency is measured
after every model is loaded, with ``jobs.threads_per_job`` threads (1 by default).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.ports import PhotoCheck, PromptCheck
from core.settings import load_settings
from core.types import Verdict

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TRAINING = ROOT / "config" / "training"
FILES = (
    DATA / "prompts.tsv",
    TRAINING / "probes.tsv",
    TRAINING / "dev.tsv",
    TRAINING / "dev2.tsv",
    DATA / "prompts_blind2.tsv",
    DATA / "prompts_blind3.tsv",
    DATA / "prompts_blind4.tsv",
    DATA / "prompts_blind5.tsv",
)
SPLITS = ("tune", "dev", "dev2", "heldout", "blind2", "blind3", "blind4", "blind5")
TUNED_ON = ("tune", "dev", "dev2")
BENIGN = "benign"


@dataclass(frozen=True, slots=True)
class Case:
    """One row of the evaluation set."""

    text: str
    category: str
    language: str
    kind: str
    split: str


def load_cases(paths: Sequence[Path] = FILES, split: str = "all") -> list[Case]:
    """Read the evaluation set (``#`` lines are comments, the first other line the header)."""
    cases = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if line[:1] != "#"]
        rows = csv.DictReader(io.StringIO("\n".join(lines)), delimiter="\t", quoting=csv.QUOTE_NONE)
        cases += [Case(**row) for row in rows]
    return [c for c in cases if split in ("all", c.split)]


def decide(checks: Sequence[PromptCheck], text: str) -> Verdict:
    """Run the chain like the pipeline does: the first rejection decides."""
    for check in checks:
        verdict = check.check(text)
        if not verdict.allowed:
            return verdict
    return Verdict.ok(verdict.stage, "all")


@dataclass(frozen=True, slots=True)
class Report:
    """Precision and recall per category, overall recall and the benign false-positive rate."""

    # code -> (precision, recall, recall under any code, support)
    rows: dict[str, tuple[float, float, float, int]]
    recall_all: float
    fp_rate: float
    benign: int
    errors: list[tuple[Case, str]]


def evaluate(checks: Sequence[PromptCheck], cases: Sequence[Case]) -> Report:
    """Score the checks on the cases.

    Recall counts a disallowed prompt refused with its own code; "any code" counts it refused at
    all (a sexual prompt refused as undressing is still never animated).
    """
    predicted = [decide(checks, c.text).code for c in cases]
    codes = sorted({c.category for c in cases} - {BENIGN})
    rows = {}
    for code in codes:
        mine = [p for c, p in zip(cases, predicted, strict=True) if c.category == code]
        hits = sum(p == code for p in mine)
        said = sum(p == code for p in predicted)
        blocked = sum(p != "ok" for p in mine)
        support = len(mine)
        rows[code] = (
            hits / said if said else 1.0,
            hits / support if support else 1.0,
            blocked / support if support else 1.0,
            support,
        )
    bad = [(c, p) for c, p in zip(cases, predicted, strict=True) if c.category != BENIGN]
    benign = [(c, p) for c, p in zip(cases, predicted, strict=True) if c.category == BENIGN]
    recall_all = sum(p != "ok" for _, p in bad) / len(bad) if bad else 1.0
    fp_rate = sum(p != "ok" for _, p in benign) / len(benign) if benign else 0.0
    errors = [(c, p) for c, p in zip(cases, predicted, strict=True) if p != _expected(c)]
    return Report(rows, recall_all, fp_rate, len(benign), errors)


def _language(cases: list[Case], language: str | None) -> list[Case]:
    return [c for c in cases if language in (None, c.language)]


def _expected(case: Case) -> str:
    return "ok" if case.category == BENIGN else case.category


def print_report(title: str, report: Report) -> None:
    """Print one table."""
    print(f"\n{title}")
    print(f"{'category':<24}{'precision':>10}{'recall':>8}{'any code':>10}{'n':>5}")
    for code, (precision, recall, blocked, support) in report.rows.items():
        print(f"{code:<24}{precision:>10.3f}{recall:>8.3f}{blocked:>10.3f}{support:>5}")
    print(f"{'all disallowed (recall)':<34}{report.recall_all:>8.3f}")
    print(f"{'benign false positives':<34}{report.fp_rate:>8.3f}{report.benign:>5}")


def _percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):6.1f} ms   p99 {p99:6.1f} ms   (n={len(ms)})"


def time_prompts(checks: Sequence[PromptCheck], cases: Sequence[Case]) -> list[float]:
    """Seconds per prompt through the whole chain (no short-cut, the worst case)."""
    samples = []
    for case in cases:
        start = time.perf_counter()
        for check in checks:
            check.check(case.text)
        samples.append(time.perf_counter() - start)
    return samples


def time_photos(settings: object, checks: Sequence[PhotoCheck], runs: int) -> list[float]:
    """Seconds per photo for decoding limits plus every photo check, on 1024x768 JPEGs."""
    from bench.photos import landscape
    from core.moderation.limits import decode_photo
    from core.settings import Settings
    from core.types import Photo

    assert isinstance(settings, Settings)
    photos = [Photo(landscape(1024, 768, seed=i)) for i in range(runs)]
    samples = []
    for photo in photos:
        start = time.perf_counter()
        image = decode_photo(photo, settings.limits)
        for check in checks:
            check.check(image)
        samples.append(time.perf_counter() - start)
    return samples


def cross(settings: object, threshold: float | None, language: str | None) -> None:
    """Leave one training file out: train without it, measure the whole chain on it."""
    from core.moderation.classifier import PromptClassifierCheck
    from core.moderation.policy import load_policy
    from core.moderation.prompt import emoji_reader, minor_matcher
    from core.services import prompt_chain
    from core.settings import Settings

    assert isinstance(settings, Settings)
    policy = load_policy(settings.moderation.policy_path)
    exemplars = [(t, g) for g, texts in policy.exemplar_texts.items() for t in texts]
    minor, read = minor_matcher(policy.lexicon), emoji_reader(policy.lexicon.emoji)
    limit = policy.classifier.threshold if threshold is None else threshold
    for index, path in enumerate(policy.classifier.training):
        rows = [r for i, f in enumerate(policy.training_rows) if i != index for r in f]
        limits = policy.classifier
        left_out = PromptClassifierCheck(
            rows + exemplars, policy.codes, limit, limits.minor, minor, read, limits.sexual
        )
        checks = prompt_chain(policy, left_out, settings.jobs.threads_per_job)
        cases = _language(load_cases([policy.source.parent / path]), language)
        print_report(f"{path} left out ({len(cases)} prompts)", evaluate(checks, cases))
        print_report("  the classifier alone", evaluate([left_out], cases))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    parser.add_argument("--errors", action="store_true", help="list misses of tune and dev")
    parser.add_argument("--language", help="only prompts in this language (en, it, ...)")
    parser.add_argument("--photos", type=int, default=30, help="photos to time")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency tables")
    parser.add_argument(
        "--lexicon-only", action="store_true", help="only the length and lexicon checks (fast)"
    )
    parser.add_argument("--cross", action="store_true", help="leave each training file out")
    parser.add_argument("--threshold", type=float, help="the classifier's threshold, for --cross")
    args = parser.parse_args()
    os.environ.pop("ALIVE_CONFIG", None)
    settings = load_settings()
    if args.cross:
        cross(settings, args.threshold, args.language)
        return
    from core.services import moderation_checks

    start = time.perf_counter()
    prompt_checks, photo_checks, _ = moderation_checks(settings)
    if args.lexicon_only:
        prompt_checks = [c for c in prompt_checks if c.name in ("prompt-length", "prompt-lexicon")]
        args.no_latency = True
    for check in prompt_checks:
        check.check("warm up")  # loads MiniLM and embeds the exemplars
    print(f"load: {time.perf_counter() - start:.1f} s, threads {settings.jobs.threads_per_job}")
    splits = list(SPLITS) if args.split == "all" else [args.split]
    for split in splits:
        cases = _language(load_cases(split=split), args.language)
        report = evaluate(prompt_checks, cases)
        print_report(f"{split} split ({len(cases)} prompts)", report)
        if args.errors and split in TUNED_ON:
            for case, got in report.errors:
                print(f"  {case.category:<22} got {got:<22} [{case.kind}] {case.text!r}")
    if args.split == "all":
        print_report("all", evaluate(prompt_checks, _language(load_cases(), args.language)))
    if args.no_latency:
        return
    cases = load_cases()
    print(f"\nprompt latency: {_percentiles(time_prompts(prompt_checks, cases))}")
    time_photos(settings, photo_checks, 2)  # warm up
    print(f"photo latency:  {_percentiles(time_photos(settings, photo_checks, args.photos))}")


if __name__ == "__main__":
    main()
