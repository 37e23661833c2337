#!/usr/bin/python3
"""Checks docs/protocol.md against the code it describes.

    /usr/bin/python3 test/python/check_protocol_doc.py [SOURCE_DIR]

What a third party writes a client from must match what the node speaks:
  - every documented field list ("**Name** (tag) -- `[a, b, ...]`", and
    "Name [a, b, ...]" in the membership section) is the MSGPACK_DEFINE of
    that struct in messages/*.hpp, in order;
  - the table of client-facing tags, and the range of peer and internal
    tags, are messages.hpp's MessageType;
  - every enum value listed under "Enums" is the enum's;
  - every "`kName` = N" names a constant of messages/*.hpp whose value is N;
  - every worked example of section 11 is one msgpack body [tag, 1, fields] with the
    field count of its struct (a request: with or without `member`), and, where the page
    shows its decoded list, decodes to that list.
Prints each mismatch and exits 1; exits 0 when the page and the code agree.
"""
import ast
import os
import re
import sys

import msgpack


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def strip_comments(code):
    return re.sub(r"//[^\n]*", "", code)


def msgpack_defines(code):
    """struct name -> its MSGPACK_DEFINE field list."""
    out = {}
    for m in re.finditer(r"\bstruct\s+(\w+)\s*\{", code):
        depth, i = 1, m.end()
        while depth and i < len(code):
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        body = code[m.end():i]
        d = re.search(r"MSGPACK_DEFINE\(([^)]*)\)", body)
        if d:
            out[m.group(1)] = [f.strip() for f in d.group(1).split(",") if f.strip()]
    return out


def enums(code):
    """enum name -> {value name: number}."""
    out = {}
    for m in re.finditer(r"enum class (\w+)\s*:\s*[\w:]+\s*\{([^}]*)\}", code):
        values = {}
        for item in m.group(2).split(","):
            item = item.strip()
            if "=" in item:
                name, number = (x.strip() for x in item.split("=", 1))
                values[name] = int(number, 0)
        out[m.group(1)] = values
    return out


def constants(code):
    """kName -> value, for the integer constants whose expressions Python can evaluate."""
    out = {}
    for m in re.finditer(r"inline constexpr [\w:]+ (k\w+) = ([^;]+);", code):
        expr = m.group(2).replace("'", "")
        for name, value in out.items():
            expr = re.sub(r"\b%s\b" % name, str(value), expr)
        if re.fullmatch(r"[\d\s+*<()-]+", expr):
            out[m.group(1)] = eval(expr)  # digits and operators only
    return out


def field_lists(doc):
    """(struct, [fields], line) for every documented field list."""
    out = []
    flat = doc.replace("\n", " ")
    for m in re.finditer(r"\*\*(\w+)\*\*(?: \(\d+\))? — `\[([^\]]*)\]`", flat):
        out.append((m.group(1), m.group(2)))
    membership = r"`?(?:\w+ = )?(MemberChange|MemberResult|Config|MemberEntry) \[([^\]]*)\]"
    for m in re.finditer(membership, flat):
        out.append((m.group(1), m.group(2)))
    return [(name, [f.strip() for f in fields.split(",") if f.strip()]) for name, fields in out]


HEX_LINE = re.compile(r"^((?:[0-9a-f]{2} )*[0-9a-f]{2})(?:\s{2,}|$)")
HEX_INLINE = re.compile(r"`(93(?: [0-9a-f]{2})+)`")
EXAMPLE_CLIENT = 0x0123456789ABCDEF


def examples(section):
    """(hex bytes, decoded list as the page writes it or None) for each example body."""
    out = []
    blocks = re.split(r"^```[a-z]*\n", section, flags=re.M)
    for i, block in enumerate(blocks):
        if i % 2 == 1:  # inside a fence
            lines = [HEX_LINE.match(line.strip()) for line in block.splitlines()]
            hex_text = " ".join(m.group(1) for m in lines if m)
            if hex_text.startswith("93"):
                after = blocks[i + 1] if i + 1 < len(blocks) else ""
                listed = re.match(r"\s*`(\[[^`]*\])`", after)
                out.append((hex_text, listed.group(1) if listed else None))
        else:
            for m in HEX_INLINE.finditer(block):
                listed = re.match(r"\s*(?:\(|,)\s*`(\[[^`]*\])`", block[m.end():])
                out.append((m.group(1), listed.group(1) if listed else None))
    return out


def page_list(text):
    """The page's decoded form, `[101, 1, [client, ..., true]]`, as a Python value."""
    text = re.sub(r"\bclient\b", str(EXAMPLE_CLIENT), text.replace("\n", " "))
    text = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", text))
    return ast.literal_eval(text)


def check_examples(doc, defines, by_tag):
    problems = []
    section = doc.split("## 11.", 1)[1].split("## 12.", 1)[0]
    found = examples(section)
    for hex_text, listed in found:
        body = bytes.fromhex(hex_text)
        try:
            tag, version, fields = msgpack.unpackb(body, raw=False)
        except Exception as e:  # noqa: BLE001 -- any decode failure is the finding
            problems.append("example %s...: not one msgpack [type, version, fields] (%s)"
                            % (hex_text[:23], e))
            continue
        name = by_tag.get(tag, "tag %d" % tag)
        want = len(defines.get(name, []))
        counts = (want - 1, want) if name == "ClientRequest" else (want,)
        if version != 1 or len(fields) not in counts:
            problems.append("example %s...: %s with version %d and %d fields; its struct has %s"
                            % (hex_text[:23], name, version, len(fields),
                               " or ".join(map(str, counts))))
        if listed is not None and page_list(listed) != [tag, version, fields]:
            problems.append("example %s...: decodes to %r, the page says %s"
                            % (hex_text[:23], [tag, version, fields], listed))
    if len(found) < 15:
        problems.append("only %d worked examples found in section 11: has their form changed?"
                        % len(found))
    return problems, len(found)


def number(text, unit):
    return int(re.sub(r"[\s,]", "", text)) * {"": 1, "KiB": 1 << 10, "MiB": 1 << 20}[unit]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    doc = read(os.path.join(root, "docs", "protocol.md"))
    code = "".join(strip_comments(read(os.path.join(root, "messages", f)))
                   for f in sorted(os.listdir(os.path.join(root, "messages")))
                   if f.endswith(".hpp"))
    defines, enum_values, consts = msgpack_defines(code), enums(code), constants(code)
    problems = []

    documented = field_lists(doc)
    for name, fields in documented:
        if name not in defines:
            problems.append("%s: documented, but no struct of that name has a MSGPACK_DEFINE"
                            % name)
        elif fields != defines[name]:
            problems.append("%s: the page says [%s], MSGPACK_DEFINE is [%s]"
                            % (name, ", ".join(fields), ", ".join(defines[name])))
    if len(documented) < 20:
        problems.append("only %d field lists found on the page: has their form changed?"
                        % len(documented))

    # The client-facing tag table, against MessageType and the message table.
    tags = enum_values["MessageType"]
    rows = dict(re.findall(r"^\| (\d+) \| `(\w+)` \|", doc, re.M))
    table = dict(re.findall(r"Tagged<MessageType::(\w+), (\w+)>", code))
    by_tag = {n: table[t] for t, n in tags.items() if t in table}
    for n in sorted(x for x in by_tag if x >= 100):
        if rows.get(str(n)) != by_tag[n]:
            problems.append("tag %d: the page says %s, the code %s"
                            % (n, rows.get(str(n)), by_tag[n]))
    internal = sorted(n for n in tags.values() if n < 100)
    peer = [n for n in internal if n < 20]
    inproc = [n for n in internal if n >= 20]
    ranges = "Tags %d–%d" % (peer[0], peer[-1])
    if ranges not in doc or ("and %d–%d" % (inproc[0], inproc[-1])) not in doc:
        problems.append("peer and internal tags are %d-%d and %d-%d; the page says otherwise"
                        % (peer[0], peer[-1], inproc[0], inproc[-1]))

    # "- `OpKind`: `get = 1`, `put = 2`, ..." and the like, under "### Enums".
    section = doc.split("### Enums", 1)[1].split("###", 1)[0]
    for m in re.finditer(r"`(\w+)`: ((?:`\w+ = \d+`[,.]?\s*(?:and\s*)?)+)", section):
        enum = m.group(1)
        for value, n in re.findall(r"`(\w+) = (\d+)`", m.group(2)):
            if enum not in enum_values:
                problems.append("enum %s: not in messages/*.hpp" % enum)
                break
            if enum_values[enum].get(value) != int(n):
                problems.append("%s::%s: the page says %s, the code %s"
                                % (enum, value, n, enum_values[enum].get(value)))
        documented_values = set(re.findall(r"`(\w+) = \d+`", m.group(2)))
        missing = set(enum_values.get(enum, {})) - documented_values
        if missing:
            problems.append("%s: the page leaves out %s" % (enum, ", ".join(sorted(missing))))

    for name, text, unit in re.findall(r"`(k[A-Z]\w+)` = (\d[\d ,]*\d|\d)(?: (KiB|MiB)\b)?", doc):
        if name not in consts:
            problems.append("%s: the page gives it a value, the code has no such constant" % name)
        elif consts[name] != number(text, unit):
            problems.append("%s: the page says %s, the code %d" % (name, text, consts[name]))

    example_problems, nexamples = check_examples(doc, defines, by_tag)
    problems += example_problems

    for p in problems:
        print("docs/protocol.md: " + p)
    if problems:
        print("%d mismatches; fix the page (or the code)" % len(problems))
        return 1
    print("docs/protocol.md agrees with messages/*.hpp: %d field lists, %d client tags, "
          "enums, constants and %d worked examples"
          % (len(documented), len([n for n in by_tag if n >= 100]), nexamples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
