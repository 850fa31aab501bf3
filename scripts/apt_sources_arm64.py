"""Print this machine's Debian apt sources as one-line entries restricted to arm64.

Used by scripts/arm64_check.sh to download arm64 packages from the same mirrors the host already uses
(deb822 `.sources` files and classic `sources.list` lines are both understood).
"""

import glob
import re
import sys

DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def deb822_entries(text):
    for block in re.split(r"\n\s*\n", text):
        fields = {}
        for line in block.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                yield uri, suite, fields.get("components", "main"), fields.get("signed-by", DEFAULT_KEYRING)


def one_line_entries(text):
    for line in text.splitlines():
        m = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)", line)
        if m:
            opts = m.group(1) or ""
            key = re.search(r"signed-by=(\S+?)[\s\]]", opts)
            yield m.group(2), m.group(3), m.group(4).strip(), key.group(1) if key else DEFAULT_KEYRING


entries = []
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    entries += deb822_entries(open(path).read())
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        entries += one_line_entries(open(path).read())
    except OSError:
        pass
entries = [e for e in entries if e[1].startswith("bookworm")]
if not entries:
    sys.exit("no Debian bookworm apt sources found on this machine; the arm64 sysroot needs them")
for uri, suite, components, keyring in dict.fromkeys(entries):
    print(f"deb [arch=arm64 signed-by={keyring}] {uri} {suite} {components}")
