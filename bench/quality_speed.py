"""Cost of the cascade's quality check: ``python -m bench.quality_speed``.

``routing.quality.assess`` runs on every cheap answer the cascade considers; this
prints its mean time per call on a long code answer (the check used to be a
``< 5 ms`` assertion in the tests, where a busy machine made it flaky). Timing
belongs here, not in the suite.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_platform.settings")


def main() -> None:
    import django

    django.setup()
    from routing.quality import Answer, Question, assess

    question = Question(text="Write a Python function that parses ISO dates.", wants_code=True, complexity=0.3)
    code = "Here it is:\n```python\ndef parse(value: str) -> date:\n    return date.fromisoformat(value)\n```\n"
    answer = Answer(code * 20, "stop")
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(200):
            assess(question, answer)
        runs.append((time.perf_counter() - started) / 200 * 1000)
    print(f"assess(): median {statistics.median(runs):.3f} ms per call over 5 x 200 calls (min {min(runs):.3f} ms)")


if __name__ == "__main__":
    main()
