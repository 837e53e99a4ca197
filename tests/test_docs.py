"""The documents that describe the code are current: INTERFACES.md and each package README."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_interfaces_md_is_generated_from_the_code() -> None:
    gen = runpy.run_path(str(ROOT / "docs" / "gen_interfaces.py"))
    assert (ROOT / "docs" / "INTERFACES.md").read_text() == gen["render"](), (
        "docs/INTERFACES.md is out of date: run python docs/gen_interfaces.py"
    )


def test_every_package_readme_lists_every_module() -> None:
    missing = []
    for pkg in sorted(p for p in (ROOT / "audioclr").iterdir() if (p / "__init__.py").is_file()):
        readme = pkg / "README.md"
        text = readme.read_text() if readme.is_file() else ""
        for mod in sorted(pkg.glob("*.py")) + sorted(pkg.glob("*/__init__.py")):
            name = (
                mod.parent.name + "/"
                if mod.name == "__init__.py" and mod.parent != pkg
                else mod.name
            )
            if name == "__init__.py":
                continue
            if not re.search(rf"`{re.escape(name)}", text):
                missing.append(f"{readme.relative_to(ROOT)}: {name}")
    assert not missing, missing
