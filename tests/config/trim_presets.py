"""Drop every key of the conf/task, conf/method and conf/model presets that repeats its dataclass
default (what tests/config/test_defaults_once.py refuses); a dropped key's inline comment (the why
of the value) stays as a comment line. For merging presets written before the defaults moved:

    .venv/bin/python tests/config/trim_presets.py        # then: git diff conf/

Handles flat presets and the `# @package _global_` task presets' sections (two levels deep);
anything deeper that repeats a default is listed by the test for a hand edit.
"""

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "fixtures")]

import test_defaults_once as T  # noqa: E402

from celine import configs, paths  # noqa: E402


def main() -> None:

    report = []
    for group, stem in T._presets():
        probs = T.problems_of(group, stem)
        drop = set()
        for p in probs:
            key = p.split(":", 1)[0]
            if "repeats" in p:
                drop.add(key)
        if not drop:
            continue
        path = paths.config_dir() / group / f"{stem}.yaml"
        text = path.read_text()
        glob = configs.is_global(text)
        lines = text.splitlines()
        out, i, section = [], 0, None
        while i < len(lines):
            line = lines[i]
            m = re.match(r"^( *)([A-Za-z_][\w]*):(.*)$", line)
            if m:
                indent, key, rest = len(m.group(1)), m.group(2), m.group(3)
                if indent == 0:
                    section = key
                    dotted = f"{group}.{key}" if not glob else None
                else:
                    dotted = f"{section}.{key}" if glob and indent == 2 else None
                if dotted in drop:
                    # inline comment
                    cm = re.search(r"\s#\s?(.*)$", rest)
                    j = i + 1
                    conts = []
                    while (
                        j < len(lines)
                        and lines[j].strip()
                        and (len(lines[j]) - len(lines[j].lstrip())) > indent
                    ):
                        if lines[j].strip().startswith("#"):
                            conts.append(lines[j].strip().lstrip("#").strip())
                        j += 1
                    if cm and not dotted.endswith(".name"):
                        label = dotted if glob else key
                        out.append(f"# {label}: {cm.group(1).strip()}")
                        out += [f"#   {c}" for c in conts]
                    report.append(f"{path}: dropped {dotted}")
                    i = j
                    continue
            out.append(line)
            i += 1
        # drop a _global_ section header left empty
        cleaned = []
        for k, line in enumerate(out):
            if glob and re.match(r"^[a-z_]+:\s*(#.*)?$", line) and not line.startswith("defaults"):
                nxt = [ln for ln in out[k + 1 :] if ln.strip() and not ln.strip().startswith("#")]
                if not nxt or not nxt[0].startswith(" "):
                    report.append(f"{path}: empty section {line}")
                    continue
            cleaned.append(line)
        path.write_text("\n".join(cleaned).rstrip() + "\n")
    print("\n".join(report))
    print(len(report), "keys dropped")


if __name__ == "__main__":
    main()
