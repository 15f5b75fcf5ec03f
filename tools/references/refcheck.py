"""Shared helper of the reference generators in tools/references/.

Each generator recomputes the expected values that a Rust test hard-codes, with
the canonical Python call, and registers them with `Refs.add(...)`:

* `test`: the test file (path from the repository root) that holds the value;
* `name`: what the value is (as the test's message says);
* `computed`: the value just recomputed;
* `literal`: the value exactly as written in the test source (e.g.
  "0.4448568614280395" or "90_124_324"): `--check` verifies that this text
  occurs in the test file, so a test edited without its script is noticed;
* `rel`, `abs`: the tolerance of the test's own `assert_close` (0, 0 for an
  `assert_eq!`), the same rule: |computed − literal| <= max(rel·|literal|, abs).

`Refs.add_text(test, name, computed_text, literal_text)` compares a value as
text (an integer list, say); it must equal the literal, which must occur in the test.

Without arguments a generator prints every value (name, recomputed value with
17 significant digits, the hard-coded literal, and whether they are identical)
so that a test can be updated by hand. With `--check` it prints only
mismatches and exits 1 if any value is outside the test's tolerance or a
literal is missing from its test file.
"""
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Refs:
    def __init__(self, script):
        self.script = script
        self.items = []
        self.texts = []
        self._texts = {}

    def add(self, test, name, computed, literal, rel=0.0, abs=0.0):
        self.items.append((test, name, computed, literal, rel, abs))

    def add_text(self, test, name, computed_text, literal_text):
        """A value compared as text (e.g. an integer list): must equal `literal_text`,
        which must occur in the test file."""
        self.texts.append((test, name, computed_text, literal_text))

    def _text(self, test):
        if test not in self._texts:
            with open(os.path.join(REPO, test), encoding="utf-8") as f:
                self._texts[test] = f.read()
        return self._texts[test]

    def run(self, argv=None):
        argv = sys.argv[1:] if argv is None else argv
        check = "--check" in argv
        bad = 0
        identical = 0
        for test, name, computed, literal, rel, abs_ in self.items:
            want = float(re.sub(r"(u64|usize|u32|f64|f32)$", "", literal.replace("_", "")))
            got = float(computed)
            tol = max(rel * abs(want), abs_)
            ok_value = abs(got - want) <= tol
            present = literal in self._text(test)
            same = got == want
            if not (ok_value and present):
                bad += 1
            elif same:
                identical += 1
            if check and ok_value and present:
                continue
            flag = "same" if same else ("ok" if ok_value else "MISMATCH")
            if not present:
                flag += " LITERAL-NOT-IN-TEST"
            print(f"{flag:8} {test} :: {name}: computed {got!r} vs test {literal} "
                  f"(|diff| {abs(got - want):.3e}, tol {tol:.1e})")
        for test, name, computed, literal in self.texts:
            present = literal in self._text(test)
            same = computed == literal
            if not (same and present):
                bad += 1
            else:
                identical += 1
            if check and same and present:
                continue
            flag = ("same" if same else "MISMATCH") + ("" if present else " LITERAL-NOT-IN-TEST")
            print(f"{flag:8} {test} :: {name}: computed [{computed}] vs test [{literal}]")
        total = len(self.items) + len(self.texts)
        print(f"{self.script}: {total} values, {identical} identical to the test's, "
              f"{total - identical - bad} within its tolerance, {bad} mismatched")
        return 1 if bad else 0
