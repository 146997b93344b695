"""``python bench/serve_standin.py tgi --port …``: ``tests.faults.serve_standin`` run as a script,
after ``repo_tests`` made ``tests`` this repository's folder (``python -m tests.…`` would find
ppi-python's ``tests`` package first)."""

from __future__ import annotations

import repo_tests

if __name__ == "__main__":
    assert repo_tests.ROOT.is_dir()  # imported above for its effect on ``tests``
    from tests.faults.serve_standin import main

    main()
