"""The package version: the project's one, project(afmt VERSION X.Y.Z) in the top-level
CMakeLists.txt of the source tree this package lives in (python/afmt/ of it), read at
import, so that the version is written in one place only. "0+unknown" when the package
was copied out of its source tree (the file is missing or has no such line)."""

import os
import re


def _from_cmake():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"^\s*project\(\s*afmt\s+VERSION\s+(\d+\.\d+\.\d+)\b", text, re.M)
    return m.group(1) if m else None


__version__ = _from_cmake() or "0+unknown"
